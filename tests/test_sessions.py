"""Signed-in sessions: cookie flags, rotation, timeouts, sign-out and single logout."""

from __future__ import annotations

from datetime import timedelta
from http.cookies import Morsel, SimpleCookie
from urllib.parse import urlsplit

import pytest

from dashboard.auth.models import LoginSession, SamlRequest
from dashboard.extensions import db
from dashboard.timeutil import utcnow
from tests.support.forms import post
from tests.support.pysaml_idp import SLO_URL, PysamlIdp
from tests.support.rows import audit_rows
from tests.support.signin import ADMIN_EMAIL, ADMINS, VIEWER_EMAIL, VIEWERS, SignIn


def only_session(app) -> LoginSession:
    return db.session.scalars(db.select(LoginSession)).one()


def session_cookie(response) -> Morsel:
    """The session cookie the answer sets, as a browser reads its Set-Cookie header."""
    set_cookies = response.headers.getlist("Set-Cookie")
    jar = SimpleCookie()
    for header in set_cookies:
        jar.load(header)
    assert "dashboard_session" in jar, set_cookies
    return jar["dashboard_session"]


def test_session_cookie_is_httponly_and_samesite_lax(sign_in):
    cookie = session_cookie(sign_in.as_(ADMIN_EMAIL, [ADMINS]))
    assert cookie["httponly"] is True
    assert cookie["samesite"] == "Lax"
    assert cookie["secure"] == ""  # plain http (loopback) base URL: not Secure
    assert cookie["path"] == "/"


class TestUnderHttps:
    @pytest.fixture
    def app(self, make_app):
        return make_app(SAML_SP_BASE_URL="https://localhost")

    def test_cookie_is_secure_and_hsts_is_sent(self, app, idp):
        """Signed in over https, the browser is handed a session cookie it sends over https
        only, that scripts cannot read and that cross-site requests do not carry; and it is
        told to use https only from now on."""
        sign_in = SignIn(app.test_client(), idp, app, base_url="https://localhost")
        response = sign_in.as_(ADMIN_EMAIL, [ADMINS])
        assert response.status_code == 302, response.get_data(as_text=True)
        cookie = session_cookie(response)
        assert cookie["secure"] is True
        assert cookie["httponly"] is True
        assert cookie["samesite"] == "Lax"
        assert response.headers["Strict-Transport-Security"].startswith("max-age=")
        assert sign_in.client.get("/", base_url="https://localhost").status_code == 200


def test_no_hsts_over_plain_http(client):
    assert "Strict-Transport-Security" not in client.get("/saml/metadata").headers


def test_sign_in_starts_a_fresh_session(sign_in, client, app):
    """Whatever the browser carried before sign-in (a planted session) does not survive."""
    request_id, relay = sign_in.start()
    with client.session_transaction() as planted:
        planted["planted"] = "by an attacker"
    xml = sign_in.response(request_id, ADMIN_EMAIL, [ADMINS])
    from tests.support.pysaml_idp import post_binding

    client.post("/saml/acs", data={"SAMLResponse": post_binding(xml), "RelayState": relay})
    with client.session_transaction() as session:
        assert "planted" not in session
        first_token = session["_user_id"]
    second = sign_in.in_new_browser()
    second.as_(ADMIN_EMAIL, [ADMINS])
    with second.client.session_transaction() as session:
        assert session["_user_id"] != first_token


def test_idle_session_expires(admin_client, app):
    with app.app_context():
        login = only_session(app)
        login.last_seen_at = utcnow() - timedelta(minutes=31)
        db.session.commit()
    response = admin_client.get("/users")
    assert response.status_code == 302
    assert response.location.startswith("/saml/login")
    with app.app_context():
        assert only_session(app).end_reason == "idle"


def test_session_expires_after_its_absolute_lifetime_even_when_active(admin_client, app):
    with app.app_context():
        login = only_session(app)
        login.created_at = utcnow() - timedelta(hours=12, minutes=1)
        db.session.commit()
    assert admin_client.get("/").status_code == 302
    with app.app_context():
        assert only_session(app).end_reason == "lifetime"


def test_activity_keeps_a_session_alive(admin_client, app):
    with app.app_context():
        only_session(app).last_seen_at = utcnow() - timedelta(minutes=29)
        db.session.commit()
    assert admin_client.get("/").status_code == 200
    with app.app_context():
        assert utcnow() - only_session(app).last_seen_at < timedelta(minutes=1)


class TestShorterLimits:
    @pytest.fixture
    def app(self, make_app):
        return make_app(DASHBOARD_SESSION_IDLE_MINUTES=5, DASHBOARD_SESSION_MAX_HOURS=1)

    def test_idle_timeout_is_configurable(self, admin_client, app):
        with app.app_context():
            only_session(app).last_seen_at = utcnow() - timedelta(minutes=6)
            db.session.commit()
        assert admin_client.get("/").status_code == 302


def test_sign_out_ends_the_session_and_starts_single_logout(admin_client, app, idp):
    cookie = admin_client.get_cookie("dashboard_session").value
    response = post(admin_client, "/logout")
    assert response.status_code == 302
    location = urlsplit(response.location)
    assert f"{location.scheme}://{location.netloc}{location.path}" == SLO_URL
    assert admin_client.get("/").status_code == 302
    # A copy of the old cookie is worth nothing: the session ended on the server.
    thief = app.test_client()
    thief.set_cookie("dashboard_session", cookie)
    assert thief.get("/").status_code == 302
    entry = audit_rows(app)[-1]
    assert (entry["action"], entry["actor"]) == ("auth.sign_out", ADMIN_EMAIL)


def test_idp_logout_response_completes_single_logout(admin_client, app, idp):
    response = post(admin_client, "/logout")
    answer = idp.logout_response_url(urlsplit(response.location).query)
    back = urlsplit(answer)
    assert back.path == "/saml/sls"
    done = admin_client.get(f"{back.path}?{back.query}")
    assert done.status_code == 302
    assert done.location == "/signed-out"
    with app.app_context():
        pending = db.session.scalars(db.select(SamlRequest).filter_by(kind="logout")).one()
        assert pending.consumed_at is not None


def test_logout_answer_to_an_unknown_request_is_refused_and_audited(client, app):
    response = client.get("/saml/sls?SAMLResponse=bm90IGEgbG9nb3V0IHJlc3BvbnNl")
    assert response.status_code == 400
    assert "could not be confirmed" in response.get_data(as_text=True)
    assert audit_rows(app)[-1]["action"] == "auth.logout_refused"


def test_idp_initiated_logout_ends_the_session(admin_client, app, idp):
    saml = app.extensions["dashboard.saml"]
    with app.app_context():
        login = only_session(app)
        name_id, session_index = login.name_id, login.session_index
    _, url = idp.logout_request_url(saml.entity_id, saml.sls_url, name_id, session_index)
    target = urlsplit(url)
    response = admin_client.get(f"{target.path}?{target.query}")
    assert response.status_code == 302
    assert response.location.startswith(SLO_URL)  # our LogoutResponse goes back to the IdP
    assert admin_client.get("/").status_code == 302
    with app.app_context():
        assert only_session(app).end_reason == "idp_logout"


def test_sign_out_needs_the_csrf_token(admin_client):
    response = admin_client.post("/logout")
    assert response.status_code == 400
    assert "Form expired" in response.get_data(as_text=True)
    assert admin_client.get("/").status_code == 200  # still signed in


def test_viewer_may_sign_out(viewer_client, app):
    response = post(viewer_client, "/logout")
    assert response.status_code == 302
    assert audit_rows(app)[-1]["actor"] == VIEWER_EMAIL


class TestIdpWithoutSingleLogout:
    @pytest.fixture
    def app(self, make_app, idp_folder, tmp_path):
        metadata = tmp_path / "no-slo.xml"
        metadata.write_text(PysamlIdp(idp_folder, with_slo=False).metadata_xml())
        return make_app(SAML_IDP_METADATA_FILE=metadata)

    def test_sign_out_lands_on_the_signed_out_page(self, sign_in, client):
        assert sign_in.as_(VIEWER_EMAIL, [VIEWERS]).status_code == 302
        response = post(client, "/logout")
        assert response.location == "/signed-out"
        assert "You are signed out" in client.get("/signed-out").get_data(as_text=True)
