"""Who may see and change what; CSRF; security headers; markup the CSP allows."""

from __future__ import annotations

import re

import pytest
from flask import Flask

from tests.support.forms import htmx_headers, post
from tests.support.rows import audit_rows

PUBLIC = {"/saml/metadata", "/saml/login", "/healthz", "/readyz", "/signed-out", "/saml/sls"}
# Read by machines, not people: no sign-in redirect, a 401 without a session or a token.
MACHINE = {"/metrics"}
SECTIONS = ["/", "/setup", "/connections", "/users", "/sync", "/audit"]


def page_urls(app: Flask) -> list[str]:
    return sorted(
        rule.rule
        for rule in app.url_map.iter_rules()
        if "GET" in rule.methods and not rule.arguments and rule.endpoint != "static"
    )


def test_every_page_but_the_public_ones_needs_sign_in(app, client):
    urls = page_urls(app)
    assert set(SECTIONS) <= set(urls)
    for url in urls:
        response = client.get(url)
        if url in PUBLIC:
            continue
        if url in MACHINE:
            assert response.status_code == 401, url
            continue
        assert response.status_code == 302, url
        assert response.location == f"/saml/login?next={url}", url


def test_an_htmx_request_without_a_session_is_told_to_reload_into_sign_in(client):
    response = client.get(
        "/audit", headers={"HX-Request": "true", "HX-Current-URL": "http://localhost/audit"}
    )
    assert response.status_code == 401
    assert response.headers["HX-Redirect"] == "/saml/login?next=/audit"


@pytest.mark.parametrize("url", SECTIONS)
def test_each_section_shows_its_empty_state_or_content(admin_client, url):
    response = admin_client.get(url)
    assert response.status_code == 200
    body = response.get_data(as_text=True)
    assert 'aria-current="page"' in body
    for label in ("Overview", "Setup", "Connections", "Users", "Sync", "Audit"):
        assert f">{label}</a>" in body


def test_empty_states_say_what_to_do_first(admin_client):
    body = admin_client.get("/sync").get_data(as_text=True)
    assert "No sync runs yet" in body
    assert "First:" in body


@pytest.mark.parametrize("url", SECTIONS)
def test_pages_have_no_inline_script_or_style(admin_client, url):
    """The CSP allows scripts and styles from our own files only."""
    body = admin_client.get(url).get_data(as_text=True)
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", body)
    assert "<style" not in body
    assert not re.search(r"\sstyle=", body)
    assert not re.search(r"\son[a-z]+=", body)  # no inline event handlers


def test_security_headers(admin_client):
    headers = admin_client.get("/").headers
    csp = headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in csp
    assert "script-src 'self'" in csp
    assert "style-src 'self'" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert "form-action 'self' https://idp.test" in csp  # sign-out goes to the IdP
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["Referrer-Policy"] == "same-origin"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Cache-Control"] == "no-store"


def test_htmx_is_served_from_our_static_folder(admin_client):
    body = admin_client.get("/").get_data(as_text=True)
    assert '<script src="/static/vendor/htmx-2.0.11.min.js" defer></script>' in body
    script = admin_client.get("/static/vendor/htmx-2.0.11.min.js")
    assert script.status_code == 200
    assert b"htmx" in script.data[:200]
    script.close()


class TestStateChanges:
    """The guard is app-wide: a state-changing route added later is covered by it too."""

    @pytest.fixture
    def app(self, make_app):
        app = make_app()
        app.add_url_rule("/test-change", "test_change", lambda: "changed", methods=["POST"])
        return app

    def test_viewer_is_refused_and_the_refusal_audited(self, viewer_client, app):
        response = viewer_client.post("/test-change", headers=htmx_headers(viewer_client))
        assert response.status_code == 403
        assert "Viewers can see everything but change nothing" in response.get_data(as_text=True)
        entry = audit_rows(app)[-1]
        assert (entry["action"], entry["outcome"]) == ("auth.forbidden", "refused")
        assert entry["details"] == {"method": "POST", "path": "/test-change"}

    def test_admin_with_csrf_header_as_htmx_sends_it(self, admin_client):
        response = admin_client.post("/test-change", headers=htmx_headers(admin_client))
        assert response.status_code == 200
        assert response.data == b"changed"

    def test_admin_without_csrf_token_is_refused(self, admin_client):
        response = admin_client.post("/test-change", headers={"HX-Request": "true"})
        assert response.status_code == 400

    def test_anonymous_post_is_sent_to_sign_in(self, client):
        assert client.post("/test-change").status_code == 302


def test_audit_page_lists_sign_ins_newest_first(admin_client):
    body = admin_client.get("/audit").get_data(as_text=True)
    assert "auth.sign_in" in body
    assert "ada.admin@example.com" in body


def test_audit_page_loads_older_entries_as_an_htmx_partial(admin_client, app):
    from dashboard import audit
    from dashboard.extensions import db

    with app.test_request_context():
        for n in range(60):
            audit.record("test.event", actor=f"actor{n}", outcome="success")
        db.session.commit()
    page = admin_client.get("/audit").get_data(as_text=True)
    assert "actor59" in page and "actor5<" not in page
    # The keyset is (time, id): "before=<time>~<id>".
    more = re.search(r'hx-get="(/audit\?before=[^"~]+~\d+)"', page).group(1)
    partial = admin_client.get(more, headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "<html" not in partial
    assert "actor5<" in partial
    assert "auth.sign_in" in partial  # the oldest entry is reached


class TestUnexpectedErrors:
    @pytest.fixture
    def app(self, make_app):
        app = make_app()

        def broken():
            raise RuntimeError("boom")

        app.add_url_rule("/test-broken", "test_broken", broken)
        app.config["PROPAGATE_EXCEPTIONS"] = False
        return app

    def test_a_crash_shows_a_plain_page(self, admin_client):
        response = admin_client.get("/test-broken")
        assert response.status_code == 500
        body = response.get_data(as_text=True)
        assert "Something went wrong" in body and "boom" not in body

    def test_a_crash_under_htmx_shows_in_the_message_area(self, admin_client):
        response = admin_client.get("/test-broken", headers={"HX-Request": "true"})
        assert response.status_code == 500
        assert response.headers["HX-Retarget"] == "#messages"
        assert response.get_data(as_text=True).strip().startswith('<p class="flash flash-error"')


def test_audit_details_read_as_words_not_python(admin_client, app):
    from dashboard import audit
    from dashboard.extensions import db

    with app.test_request_context():
        audit.record(
            "connection.saved",
            actor="t",
            outcome="success",
            details={"changed": {"base_url": [None, "https://w.example/v2"]}},
        )
        db.session.commit()
    page = admin_client.get("/audit").get_data(as_text=True)
    assert "changed: base_url: — → https://w.example/v2" in page
    assert "[None" not in page


def test_an_oversized_request_gets_our_error_page(admin_client):
    """Errors without their own handler (here 413) use the same page, not Werkzeug's."""
    response = post(admin_client, "/setup/template", template="x" * 3_000_000)
    assert response.status_code == 413
    assert "Back to the dashboard" in response.get_data(as_text=True)
