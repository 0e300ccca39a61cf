"""The OneLogin simulator on a real port, and sockets that misbehave, for client tests."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from werkzeug.serving import WSGIRequestHandler, make_server

from dashboard.sandbox.onelogin import OneLoginState
from dashboard.sandbox.onelogin_api import create_app


class _Quiet(WSGIRequestHandler):
    def log_request(self, *args: object) -> None:
        """The simulator's own log (state.log) says what was asked; stderr stays clean."""


@contextmanager
def running(state: OneLoginState) -> Iterator[str]:
    """Serve `state` on 127.0.0.1 in a daemon thread; yields the base URL."""
    server = make_server("127.0.0.1", 0, create_app(state), request_handler=_Quiet)
    # A short poll keeps shutdown quick: serve_forever notices the request to stop at its
    # next poll.
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


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
