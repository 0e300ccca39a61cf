"""An HTTP proxy on 127.0.0.1 that makes a fast local server behave like a remote API:
every request waits `latency` seconds, and beyond `rate` requests a second (a token bucket
holding `burst` requests) it answers 429 with Retry-After, as a rate-limited SaaS API does.

    with ThrottleProxy(server.root_url, latency=0.05, rate=100) as proxy:
        ...                                    # point the client at proxy.root_url
        proxy.counts["POST"], proxy.throttled  # requests seen by method, 429s answered
        proxy.served                           # seconds answering: latency + upstream time

Keep-alive towards the client (one thread per client connection, no cap on connections);
a fresh connection upstream per request (scim2-server's wsgiref server closes each one).

`ThrottleProxy.process(...)` runs it in a child process instead (`python -m
tests.support.throttle_proxy`), so that the CPU it spends is not the caller's (the benchmark
measures the dashboard's own CPU time per write); `snapshot()` then asks it over HTTP
(`GET /__throttle_stats`), and the same `with` block stops it.
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import subprocess
import sys
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[2]  # where `tests` is a package
STATS_PATH = "/__throttle_stats"
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "upgrade"}
TOO_MANY = json.dumps(
    {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
        "status": "429",
        "detail": "Too many requests",
    }
).encode()


class TokenBucket:
    def __init__(self, rate: float, burst: float) -> None:
        self.rate, self.burst = rate, burst
        self.tokens, self.stamp = burst, time.monotonic()
        self.lock = threading.Lock()

    def take(self) -> float:
        """0 when the request may pass, else the seconds until it would."""
        with self.lock:
            now = time.monotonic()
            self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
            self.stamp = now
            if self.tokens >= 1:
                self.tokens -= 1
                return 0.0
            return (1 - self.tokens) / self.rate


class ThrottleProxy:
    def __init__(
        self, upstream: str, *, latency: float = 0.0, rate: float = 0.0, burst: float = 0.0
    ) -> None:
        parts = urlsplit(upstream)
        self.upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.latency = latency
        # A small burst (0.1 s worth, at least 2) absorbs the jitter of an evenly paced client.
        self.bucket = TokenBucket(rate, burst or max(2.0, rate / 10)) if rate > 0 else None
        self.counts: Counter[str] = Counter()  # requests received, by method
        self.throttled = 0  # of which answered 429
        self.served = 0.0  # seconds spent answering: the latency plus the upstream's time
        self.lock = threading.Lock()
        self.server = _Server(("127.0.0.1", 0), _Handler)
        self.server.proxy = self
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)

    @property
    def root_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def snapshot(self) -> tuple[Counter[str], int, float]:
        with self.lock:
            return self.counts.copy(), self.throttled, self.served

    @staticmethod
    def process(upstream: str, *, latency: float = 0.0, rate: float = 0.0) -> ProxyProcess:
        return ProxyProcess(upstream, latency, rate)

    def __enter__(self) -> ThrottleProxy:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # idle keep-alive connections must not block the shutdown
    request_queue_size = 256  # the listen backlog: the default 5 refuses bursts of connects
    proxy: ThrottleProxy


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes: with Nagle's algorithm the body would wait for
    # the client's delayed ACK of the headers (up to 40 ms a response).
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        proxy = self.server.proxy
        if self.command == "GET" and self.path == STATS_PATH:
            counts, throttled, served = proxy.snapshot()
            stats = {"counts": dict(counts), "throttled": throttled, "served": served}
            self._answer(200, json.dumps(stats).encode(), {"Content-Type": "application/json"})
            return
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        started = time.perf_counter()
        wait = proxy.bucket.take() if proxy.bucket else 0.0
        time.sleep(proxy.latency)
        if wait > 0:
            status, data = 429, TOO_MANY
            kept = {"Content-Type": "application/scim+json"}
            kept["Retry-After"] = str(max(1, math.ceil(wait)))
        else:
            status, data, kept = self._forward(proxy.upstream, body)
        with proxy.lock:
            proxy.counts[self.command] += 1
            proxy.throttled += wait > 0
            proxy.served += time.perf_counter() - started
        self._answer(status, data, kept)

    def _forward(self, address: tuple[str, int], body: bytes) -> tuple[int, bytes, dict]:
        upstream = http.client.HTTPConnection(*address, timeout=120)
        try:
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
            upstream.request(self.command, self.path, body=body or None, headers=headers)
            response = upstream.getresponse()
            data = response.read()
            kept = {k: v for k, v in response.getheaders() if k.lower() not in HOP_BY_HOP}
            return response.status, data, kept
        finally:
            upstream.close()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def _answer(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.send_response_only(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class ProxyProcess:
    """A ThrottleProxy in a child process, with the same `root_url` and `snapshot()`."""

    def __init__(self, upstream: str, latency: float, rate: float) -> None:
        self.command = [
            sys.executable,
            "-m",
            "tests.support.throttle_proxy",
            upstream,
            f"--latency={latency}",
            f"--rate={rate}",
        ]
        self.root_url = ""

    def __enter__(self) -> ProxyProcess:
        self.child = subprocess.Popen(self.command, stdout=subprocess.PIPE, text=True, cwd=ROOT)
        self.root_url = self.child.stdout.readline().strip()  # printed once it listens
        if not self.root_url.startswith("http"):
            raise RuntimeError("the throttling proxy did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        self.child.terminate()
        self.child.wait(timeout=10)

    def snapshot(self) -> tuple[Counter[str], int, float]:
        connection = http.client.HTTPConnection(self.root_url.split("//")[1], timeout=10)
        try:
            connection.request("GET", STATS_PATH)
            stats = json.loads(connection.getresponse().read())
        finally:
            connection.close()
        return Counter(stats["counts"]), stats["throttled"], stats["served"]


def main() -> None:
    parser = argparse.ArgumentParser(description="A throttling proxy, until terminated.")
    parser.add_argument("upstream")
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--rate", type=float, default=0.0)
    args = parser.parse_args()
    with ThrottleProxy(args.upstream, latency=args.latency, rate=args.rate) as proxy:
        print(proxy.root_url, flush=True)
        threading.Event().wait()  # until the parent terminates the process


if __name__ == "__main__":
    main()
