"""The environment's proxy and CA settings (HTTPS_PROXY, NO_PROXY, REQUESTS_CA_BUNDLE) reach
every client, read once when the client is made rather than for every request."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest

from dashboard.connections import errors
from dashboard.connections.http import Http


class Recorder(BaseHTTPRequestHandler):
    """A forward proxy that answers every request itself, noting what it was asked for."""

    seen: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        Recorder.seen.append(self.path)  # a proxy is asked for the absolute URL
        body = json.dumps({"ok": True}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def proxy() -> Iterator[str]:
    Recorder.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def client(base_url: str) -> Http:
    return Http("Workato SCIM API", base_url, lambda r: errors.bad_response("x", "refused"))


def test_requests_go_through_the_proxy_the_environment_names(monkeypatch, proxy):
    monkeypatch.setenv("HTTP_PROXY", proxy)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    http = client("http://workato.invalid/scim/v2")
    monkeypatch.delenv("HTTP_PROXY")  # read when the client was made, not per request

    for _ in range(2):
        assert http.request("GET", "/Users").json() == {"ok": True}
    assert Recorder.seen == ["http://workato.invalid/scim/v2/Users"] * 2


def test_no_proxy_is_honoured(monkeypatch, proxy):
    monkeypatch.setenv("HTTP_PROXY", proxy)
    monkeypatch.setenv("NO_PROXY", "workato.invalid")
    http = client("http://workato.invalid/scim/v2")

    with pytest.raises(errors.ConnectionProblem):
        http.request("GET", "/Users", retry=False)  # straight to a host that does not exist
    assert Recorder.seen == []


def test_a_ca_bundle_from_the_environment_is_used(monkeypatch, tmp_path):
    bundle = tmp_path / "corporate-ca.pem"
    bundle.write_text("")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(bundle))
    assert client("https://acme.workato.com/scim/v2").session.verify == str(bundle)
