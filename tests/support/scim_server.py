"""The real scim2-server, started as a process, as Workato's SCIM stand-in (DESIGN.md §3).

    with ScimServer() as server:            # Workato's schemas, bearer token server.token
        ScimClient(server.base_url, server.token)

`ScimServer(workato=False)` serves RFC 7643's schemas only (no WorkatoRole extension);
`workato_schemas_with(folder, ["workato_role_staging"])` writes a copy of Workato's schema
file declaring extra environment role fields, for `ScimServer(schemas=...)`.

Readiness is the server's own "Serving SCIM on" line, read by a thread that keeps draining
its output (an undrained pipe would block the server once full); nobody sleeps.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

ROOT = Path(__file__).resolve().parents[2]
WORKATO = ROOT / "dashboard" / "sandbox" / "workato"
SCHEMAS = WORKATO / "workato-scim-schemas.json"
RESOURCE_TYPES = WORKATO / "workato-scim-resource-types.json"
WORKATO_ROLE = "urn:ietf:params:scim:schemas:workato:1.0:WorkatoRole"
READY = "Serving SCIM on "
TOKEN = "scim-test-token"


def executable() -> str:
    """scim2-server from the virtualenv running the tests."""
    beside = Path(sys.executable).parent / "scim2-server"
    found = str(beside) if beside.exists() else shutil.which("scim2-server")
    if not found:
        raise RuntimeError("scim2-server is not installed in this environment")
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def workato_schemas_with(folder: Path, extra_role_fields: Iterable[str]) -> Path:
    """A copy of Workato's schema file whose WorkatoRole extension declares more role fields
    (scim2-server refuses undeclared attributes with 400 invalidSyntax)."""
    schemas = json.loads(SCHEMAS.read_text())
    extension = next(s for s in schemas if s["id"] == WORKATO_ROLE)
    template = extension["attributes"][0]
    for name in extra_role_fields:
        extension["attributes"].append(
            {**template, "name": name, "description": f"Role in {name.rsplit('_', 1)[-1]}"}
        )
    path = folder / "workato-scim-schemas-extra.json"
    path.write_text(json.dumps(schemas, indent=1))
    return path


class ScimServer:
    """One scim2-server process on a free port of 127.0.0.1. Data lives in its memory."""

    def __init__(
        self,
        *,
        token: str = TOKEN,
        workato: bool = True,
        schemas: Path | None = None,
        resource_types: Path | None = None,
        service_provider_config: dict[str, Any] | None = None,
        folder: Path | None = None,
        start_timeout: float = 30.0,
    ) -> None:
        self.token = token
        self.start_timeout = start_timeout
        self.args = ["--bearer-token", token]
        if workato or schemas:
            self.args += ["--schema", str(schemas or SCHEMAS)]
            self.args += ["--resource-type", str(resource_types or RESOURCE_TYPES)]
        if service_provider_config is not None:
            if folder is None:
                raise ValueError("a folder is needed to write the service provider config")
            path = folder / "service-provider-config.json"
            path.write_text(json.dumps(service_provider_config))
            self.args += ["--service-provider-config", str(path)]
        self.port = 0
        self.output: deque[str] = deque(maxlen=200)  # the tail, for failure messages
        self._process: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None
        self._settled = threading.Event()

    @property
    def root_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return f"{self.root_url}/v2"

    def __enter__(self) -> ScimServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        # Another process may take the free port before the server binds it: try again.
        for _ in range(3):
            if self._start_once():
                return
            self.stop()
        raise RuntimeError("scim2-server did not start:\n" + "\n".join(self.output))

    def _start_once(self) -> bool:
        self.port = free_port()
        self._settled.clear()
        self._process = subprocess.Popen(
            [executable(), *self.args, "--hostname", "127.0.0.1", "--port", str(self.port)],
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self._reader = threading.Thread(
            target=self._read, args=(self._process,), name="scim2-server-log", daemon=True
        )
        self._reader.start()
        if not self._settled.wait(self.start_timeout):
            self.stop()
            raise RuntimeError("scim2-server did not start in time:\n" + "\n".join(self.output))
        return self._process.poll() is None

    def _read(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            self.output.append(line.rstrip())
            if line.startswith(READY):
                self._settled.set()
        self._settled.set()  # the process ended (or closed its output) before being ready

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            # SIGINT is its KeyboardInterrupt: it closes the listening socket and exits.
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        if self._reader is not None:
            self._reader.join(timeout=10)
        if process.stdout is not None:
            process.stdout.close()


@contextmanager
def serve_wsgi(app: Any) -> Iterator[str]:
    """Serve a WSGI app (the demo's in-process SCIM stand-in, the Workato API simulator) on a
    free port of 127.0.0.1 in a thread; yields its root URL. The socket listens before this
    returns, so no waiting is needed."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    # A short poll interval: shutdown() waits for the loop to notice, 0.5 s by default.
    thread = threading.Thread(
        target=server.serve_forever, args=(0.05,), name="wsgi-server", daemon=True
    )
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


# What a test server answers: a status, a body (serialised as JSON unless bytes; None for
# none), and optionally headers.
Answer = tuple[int, Any] | tuple[int, Any, dict[str, str]]


def json_app(answer: Callable[[Request], Answer]) -> Callable[..., Any]:
    """A WSGI app answering every request with `answer(request)`: for servers that answer
    what no real one would (garbage shapes, echoed secrets, foreign Locations)."""

    @Request.application
    def app(request: Request) -> Response:
        status, body, *rest = answer(request)
        headers = rest[0] if rest else {}
        if body is None:
            return Response(b"", status=status, headers=headers)
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        return Response(data, status=status, headers=headers, content_type="application/json")

    return app
