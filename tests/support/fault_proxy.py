"""A small fault-injecting HTTP proxy on 127.0.0.1, in front of scim2-server (which has no
latency, rate-limit or fault options of its own).

    with FaultProxy(server.root_url) as proxy:
        proxy.answer_next(1, 429, retry_after="7")   # then forwards again
        proxy.answer_next(2, 503)
        release = proxy.hold_next(1)                 # held until release.set()
        proxy.drop_next(1)                           # connection closed, no answer
        held = proxy.hold_matching("GET", r"/Users/[^?]+$")  # the next such request only
        proxy.seen("POST")                           # requests that reached the proxy
        proxy.arrivals                               # (time.monotonic(), method, path) each

Built on the standard library's HTTP server rather than a WSGI server because dropping a
connection without any answer needs the raw socket. Bounded: 16 requests at a time, bodies
up to 1 MiB, held requests released after `hold_timeout` at the latest.
"""

from __future__ import annotations

import http.client
import json
import re
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

MAX_BODY = 1 << 20
MAX_CONCURRENT = 16
# Not passed along (Host is: scim2-server builds its URLs from it, as behind a real proxy).
HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailers",
    "transfer-encoding",
    "upgrade",
    "content-length",
}


@dataclass
class Fault:
    kind: str  # "answer", "hold", "drop" or "pass"
    status: int = 0
    retry_after: str | None = None
    release: threading.Event = field(default_factory=threading.Event)
    arrived: threading.Event = field(default_factory=threading.Event)  # a request is held
    forwarded: threading.Event = field(default_factory=threading.Event)  # upstream answered


class FaultProxy:
    def __init__(self, upstream: str, *, hold_timeout: float = 10.0) -> None:
        parts = urlsplit(upstream)
        self.upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.hold_timeout = hold_timeout
        self.requests: list[tuple[str, str]] = []  # (method, path) of every request seen
        self.arrivals: list[tuple[float, str, str]] = []  # (monotonic time, method, path)
        self._faults: deque[Fault] = deque()
        self._matching: list[tuple[str, re.Pattern[str], Fault]] = []
        self._held: list[Fault] = []
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(MAX_CONCURRENT)
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.proxy = self
        # A short poll interval: shutdown() waits for the loop to notice, 0.5 s by default.
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="fault-proxy", daemon=True
        )

    @property
    def root_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self.clear()
        with self._lock:
            for fault in self._held:
                fault.release.set()
        self._server.shutdown()
        self._server.server_close()  # joins the request threads
        self._thread.join(timeout=10)

    # --- telling it what to do -------------------------------------------------------------

    def answer_next(self, n: int, status: int, *, retry_after: str | None = None) -> None:
        self._plan(n, lambda: Fault("answer", status, retry_after))

    def hold_next(self, n: int = 1) -> threading.Event:
        """Hold the next n requests until the returned event is set, then forward them."""
        release = threading.Event()
        self._plan(n, lambda: Fault("hold", release=release))
        return release

    def hold_after(self, n: int) -> Fault:
        """Forward the next n requests, then hold one: the returned fault's `arrived` is
        set when it is held, `release` lets it go on, `forwarded` is set once the upstream
        server has answered it (whether or not its client is still there)."""
        fault = Fault("hold")
        with self._lock:
            self._faults.extend(Fault("pass") for _ in range(n))
            self._faults.append(fault)
        return fault

    def hold_matching(self, method: str, path: str) -> Fault:
        """Hold the next request of `method` whose path matches the regex `path` (others go
        on as planned); the fault's events say when it arrived and was answered upstream."""
        fault = Fault("hold")
        with self._lock:
            self._matching.append((method, re.compile(path), fault))
        return fault

    def drop_next(self, n: int = 1) -> None:
        self._plan(n, lambda: Fault("drop"))

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()
            self._matching.clear()

    def seen(self, method: str | None = None) -> int:
        with self._lock:
            return sum(1 for m, _ in self.requests if method in (None, m))

    def _plan(self, n: int, make) -> None:
        with self._lock:
            self._faults.extend(make() for _ in range(n))

    def _next_fault(self, method: str, path: str) -> Fault | None:
        with self._lock:
            self.requests.append((method, path))
            self.arrivals.append((time.monotonic(), method, path))
            for index, (wanted, pattern, held) in enumerate(self._matching):
                if method == wanted and pattern.search(path):
                    del self._matching[index]
                    self._held.append(held)
                    return held
            fault = self._faults.popleft() if self._faults else None
            if fault is not None and fault.kind == "hold":
                self._held.append(fault)
            return fault


class _Server(ThreadingHTTPServer):
    daemon_threads = False  # so that server_close() waits for every request thread
    block_on_close = True
    proxy: FaultProxy


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"  # one request per connection: simple and enough here
    server: _Server

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the tests read `proxy.requests` instead."""

    def do_GET(self) -> None:
        self._serve()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def _serve(self) -> None:
        proxy = self.server.proxy
        if not proxy._slots.acquire(timeout=proxy.hold_timeout):
            self._answer(503, b"fault proxy busy", "text/plain")
            return
        try:
            self._proxy(proxy)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (e.g. timed out on a held request)
        finally:
            proxy._slots.release()

    def _proxy(self, proxy: FaultProxy) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            self._answer(413, b"body too large for the fault proxy", "text/plain")
            return
        body = self.rfile.read(length) if length else b""
        fault = proxy._next_fault(self.command, self.path)
        if fault is not None and fault.kind == "drop":
            self.close_connection = True  # no status line at all: the client sees a reset
            return
        if fault is not None and fault.kind == "answer":
            headers = {"Retry-After": fault.retry_after} if fault.retry_after else {}
            if fault.status == 429:  # a SCIM Error body, as a SCIM server would send
                error = {
                    "schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
                    "status": "429",
                    "detail": "Too many requests",
                }
                self._answer(429, json.dumps(error).encode(), "application/scim+json", headers)
            else:  # what a load balancer sends: not JSON
                self._answer(
                    fault.status, b"<html>Service unavailable</html>", "text/html", headers
                )
            return
        if fault is not None and fault.kind == "hold":
            fault.arrived.set()
            fault.release.wait(proxy.hold_timeout)
        try:
            self._forward(proxy, body)
        finally:
            if fault is not None:
                fault.forwarded.set()

    def _forward(self, proxy: FaultProxy, body: bytes) -> None:
        connection = http.client.HTTPConnection(*proxy.upstream, timeout=10)
        try:
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
            connection.request(self.command, self.path, body=body or None, headers=headers)
            response = connection.getresponse()
            data = response.read()
            kept = {
                k: v
                for k, v in response.getheaders()
                if k.lower() not in HOP_BY_HOP and k.lower() not in ("server", "date")
            }
            self._answer(response.status, data, None, kept)
        finally:
            connection.close()

    def _answer(
        self,
        status: int,
        body: bytes,
        content_type: str | None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.send_response(status)
        if content_type:
            self.send_header("Content-Type", content_type)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
