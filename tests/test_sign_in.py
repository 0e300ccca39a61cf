"""SAML sign-in end to end, with pysaml2 as the identity provider."""

import pytest

from tests.support.rows import audit_rows, count_rows
from tests.support.signin import ADMIN_EMAIL, ADMINS, OUTSIDER_EMAIL, VIEWER_EMAIL, VIEWERS


def test_admin_signs_in_and_lands_on_the_page_asked_for(sign_in, client, app):
    """A protected page sends the browser to the IdP; the signed answer brings it back there."""
    response = sign_in.as_(ADMIN_EMAIL, [ADMINS], next_path="/users")
    assert response.status_code == 302
    assert response.location == "/users"
    page = client.get("/users")
    assert page.status_code == 200
    assert "Ada Tester" in page.get_data(as_text=True)
    assert ">admin<" in page.get_data(as_text=True)


def test_viewer_signs_in_read_only(sign_in, client):
    response = sign_in.as_(VIEWER_EMAIL, [VIEWERS])
    assert response.status_code == 302
    page = client.get("/").get_data(as_text=True)
    assert "viewer: read-only" in page


def test_someone_without_a_dashboard_role_gets_a_clear_403(sign_in, client, app):
    response = sign_in.as_(OUTSIDER_EMAIL, ["Employees"])
    assert response.status_code == 403
    body = response.get_data(as_text=True)
    assert "not allowed into this dashboard" in body
    assert OUTSIDER_EMAIL in body
    assert client.get("/").status_code == 302  # still not signed in
    refusal = audit_rows(app)[-1]
    assert refusal["action"] == "auth.refused"
    assert refusal["details"]["reason"] == "not_authorised"
    assert refusal["actor"] == OUTSIDER_EMAIL


def test_a_group_whose_name_holds_a_semicolon_grants_nothing(sign_in, client, app):
    """Unless told to split, a role value is one role: a group someone could name
    `x;Dashboard Admins` is not the admins group."""
    response = sign_in.as_(OUTSIDER_EMAIL, [f"x;{ADMINS}"])
    assert response.status_code == 403
    assert client.get("/").status_code == 302  # not signed in
    assert audit_rows(app)[-1]["details"]["reason"] == "not_authorised"


class TestSemicolonDelimitedRoles:
    """OneLogin's "Semicolon Delimited input" sends a multi-value parameter as one value."""

    @pytest.fixture
    def app(self, make_app):
        return make_app(SAML_ROLE_DELIMITER=";")

    def test_the_value_is_split_into_roles(self, sign_in, client):
        response = sign_in.as_(ADMIN_EMAIL, [f"Employees;{ADMINS}"])
        assert response.status_code == 302
        assert ">admin<" in client.get("/").get_data(as_text=True)


def test_sign_in_is_audited_with_source_ip(sign_in, app):
    sign_in.as_(ADMIN_EMAIL, [ADMINS])
    entry = audit_rows(app)[-1]
    assert entry["action"] == "auth.sign_in"
    assert entry["actor"] == ADMIN_EMAIL
    assert entry["outcome"] == "success"
    assert entry["details"]["role"] == "admin"
    assert entry["source_ip"] == "127.0.0.1"


def test_same_person_signing_in_from_two_browsers_has_one_account_two_sessions(sign_in, app):
    sign_in.as_(ADMIN_EMAIL, [ADMINS])
    sign_in.in_new_browser().as_(ADMIN_EMAIL, [ADMINS])
    assert count_rows(app, "accounts") == 1
    assert count_rows(app, "saml_identities") == 1
    assert count_rows(app, "login_sessions") == 2
