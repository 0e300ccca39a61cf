"""In Debian's Chromium: a sign-in whose IdP posts cross-site to the dashboard over plain
http://localhost (the documented loopback exception) completes, because the browser keeps
the SameSite=None; Secure binding cookie for a loopback host and sends it with the POST."""

from __future__ import annotations

import base64
import html
import re
import threading
import zlib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import expect, sync_playwright
from werkzeug.serving import make_server

from tests.support.pysaml_idp import SSO_URL, PysamlIdp, post_binding
from tests.support.signin import ADMIN_EMAIL, ADMINS
from tests.test_browser import CHROMIUM, CHROMIUM_ARGS, free_port

pytestmark = pytest.mark.browser


def serve(server) -> Iterator[None]:
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=30)


@pytest.fixture
def idp_site(idp: PysamlIdp, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """The test IdP's sign-in page on another site (http://127.0.0.1:<port>), and its
    metadata naming it. The page answers an AuthnRequest for the admin with a form that
    posts the signed response to the ACS by itself, as OneLogin's does."""
    port = free_port()
    sso_url = f"http://127.0.0.1:{port}/saml/sso"

    class SignInPage(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

        def do_GET(self) -> None:
            query = parse_qs(urlsplit(self.path).query)
            request = zlib.decompress(base64.b64decode(query["SAMLRequest"][0]), -15).decode()
            acs = re.search(r'AssertionConsumerServiceURL="([^"]+)"', request).group(1)
            xml = idp.response_xml(
                in_response_to=re.search(r'ID="([^"]+)"', request).group(1),
                destination=acs,
                sp_entity_id=acs.replace("/saml/acs", "/saml/metadata"),
                email=ADMIN_EMAIL,
                roles=[ADMINS],
            )
            fields = {"SAMLResponse": post_binding(xml), "RelayState": query["RelayState"][0]}
            inputs = "".join(
                f'<input type="hidden" name="{k}" value="{html.escape(v)}">'
                for k, v in fields.items()
            )
            body = (
                f'<form method="post" action="{html.escape(acs)}">{inputs}</form>'
                "<script>document.forms[0].submit()</script>"
            ).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    metadata = tmp_path / "idp-on-another-site.xml"
    metadata.write_text(idp.metadata_xml().replace(SSO_URL, sso_url))
    yield from serve(ThreadingHTTPServer(("127.0.0.1", port), SignInPage))


@pytest.fixture
def dashboard_url(make_app, tmp_path: Path, idp_site) -> Iterator[str]:
    """The dashboard on http://localhost:<port>, trusting the IdP on the other site."""
    port = free_port()
    base_url = f"http://localhost:{port}"
    app = make_app(
        SAML_SP_BASE_URL=base_url, SAML_IDP_METADATA_FILE=tmp_path / "idp-on-another-site.xml"
    )
    for _ in serve(make_server("127.0.0.1", port, app, threaded=True)):
        yield base_url


def test_the_idps_cross_site_post_brings_the_binding_cookie_over_loopback_http(dashboard_url):
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto(f"{dashboard_url}/users")
            page.wait_for_url(f"{dashboard_url}/users")
            expect(page.get_by_text("admin", exact=True)).to_be_visible()
        finally:
            browser.close()
