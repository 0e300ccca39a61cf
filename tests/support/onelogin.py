"""The OneLogin simulator on a real port, and sockets that misbehave, for client tests."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager

from dashboard.sandbox.onelogin import OneLoginState
from dashboard.sandbox.onelogin_api import create_app
from tests.support.scim_server import serve_wsgi


@contextmanager
def running(state: OneLoginState) -> Iterator[str]:
    """Serve `state` on 127.0.0.1 in a thread; yields the base URL."""
    with serve_wsgi(create_app(state)) as url:
        yield url


@contextmanager
def silent_server() -> Iterator[str]:
    """A base URL whose server accepts connections (the kernel's backlog does) and never
    answers: every read times out."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"


@contextmanager
def refusing_port() -> Iterator[str]:
    """A base URL where nothing listens: the port is held (so nobody else takes it) but
    never listened on, so connecting is refused."""
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{held.getsockname()[1]}"
