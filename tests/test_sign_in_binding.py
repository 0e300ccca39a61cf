"""Login CSRF: an answer to a sign-in request is accepted only from the browser that
started the request, which /saml/login marks with a short-lived cookie."""

from __future__ import annotations

from http.cookies import Morsel, SimpleCookie

import pytest

from tests.support.rows import audit_rows, count_rows
from tests.support.signin import VIEWER_EMAIL, VIEWERS, SignIn


def binding_cookie(response) -> Morsel:
    jar = SimpleCookie()
    for header in response.headers.getlist("Set-Cookie"):
        jar.load(header)
    assert "dashboard_signin" in jar, response.headers.getlist("Set-Cookie")
    return jar["dashboard_signin"]


def test_an_answer_posted_from_another_browser_is_refused(sign_in, app):
    """Someone starts a sign-in in their own browser and has a victim's browser post the
    IdP's answer (a page of theirs that auto-submits it): the victim is not signed in as
    them, and the request stays answerable by the browser that made it."""
    request_id, relay = sign_in.start()
    planted = sign_in.response(request_id, VIEWER_EMAIL, [VIEWERS])
    victim = sign_in.in_new_browser()
    victim.start()  # a sign-in of the victim's own under way changes nothing
    response = victim.post(planted, relay)
    assert response.status_code == 400
    assert "started in another browser" in response.get_data(as_text=True)
    assert victim.client.get("/").status_code == 302  # not signed in
    assert count_rows(app, "login_sessions") == 0
    entry = audit_rows(app)[-1]
    assert (entry["action"], entry["actor"]) == ("auth.refused", "anonymous")
    assert entry["details"] == {"reason": "not_this_browser", "count": 1}
    assert sign_in.post(planted, relay).status_code == 302  # its own browser still can


def test_an_answer_from_a_browser_without_the_cookie_is_refused(sign_in, app):
    """The cookie is what recognises the browser: without it (cleared, expired) no
    answer to a request is accepted."""
    request_id, relay = sign_in.start()
    sign_in.client.delete_cookie("dashboard_signin", path="/saml/")
    response = sign_in.post(sign_in.response(request_id, VIEWER_EMAIL, [VIEWERS]), relay)
    assert response.status_code == 400
    assert audit_rows(app)[-1]["details"]["reason"] == "not_this_browser"


def test_the_cookie_goes_only_to_the_saml_endpoints_for_the_life_of_a_request(client):
    cookie = binding_cookie(client.get("/saml/login"))
    assert cookie["path"] == "/saml/"
    assert cookie["max-age"] == "900"
    assert cookie["httponly"] is True
    assert cookie.value and len(cookie.value) == 32  # a hash of the request id, not the id


def test_several_sign_ins_under_way_in_one_browser_each_complete(sign_in, app):
    """Two tabs: both requests are remembered, and either answer is accepted."""
    first_id, relay = sign_in.start()
    second_id, _ = sign_in.start()
    for request_id in (first_id, second_id):
        response = sign_in.post(sign_in.response(request_id, VIEWER_EMAIL, [VIEWERS]), relay)
        assert response.status_code == 302, response.get_data(as_text=True)
    assert count_rows(app, "login_sessions") == 2


def test_over_loopback_http_the_cookie_is_samesite_none_and_secure(client):
    """http://localhost (the tests' base URL): browsers keep a Secure cookie for a loopback
    host, so the cookie can be SameSite=None and reach the ACS with the IdP's POST."""
    cookie = binding_cookie(client.get("/saml/login"))
    assert (cookie["samesite"], cookie["secure"]) == ("None", True)


class TestUnderHttps:
    @pytest.fixture
    def app(self, make_app):
        return make_app(SAML_SP_BASE_URL="https://dashboard.example.com")

    def test_the_cookie_is_samesite_none_and_secure(self, client):
        cookie = binding_cookie(client.get("/saml/login", base_url="https://dashboard.example.com"))
        assert (cookie["samesite"], cookie["secure"]) == ("None", True)

    def test_sign_in_completes_through_the_cross_site_post(self, app, idp):
        signing_in = SignIn(app.test_client(), idp, app, base_url="https://dashboard.example.com")
        assert signing_in.as_(VIEWER_EMAIL, [VIEWERS]).status_code == 302


class TestOverPlainHttpElsewhere:
    """Plain http to a host that is not loopback: a Secure cookie would be dropped and
    SameSite=None without Secure refused, so the cookie goes without SameSite."""

    @pytest.fixture
    def app(self, make_app):
        return make_app(SAML_SP_BASE_URL="http://dashboard.internal")

    def test_the_cookie_has_no_samesite_and_is_not_secure(self, client):
        cookie = binding_cookie(client.get("/saml/login", base_url="http://dashboard.internal"))
        assert (cookie["samesite"], cookie["secure"]) == ("", "")
