"""Demo mode: the sandbox IdP signs real SAML responses for its three people."""

from __future__ import annotations

import html
import re

import pytest

from dashboard.sandbox.people import PEOPLE
from tests.support.browser import cross_site_post
from tests.support.forms import post
from tests.support.rows import audit_rows


@pytest.fixture
def app(make_app):
    # The demo's own IdP and role values, not the test IdP's.
    return make_app(
        DASHBOARD_DEMO=True,
        SAML_IDP_METADATA_FILE=None,
        SAML_ADMIN_VALUES="",
        SAML_VIEWER_VALUES="",
    )


def fields(markup: str) -> dict[str, str]:
    return {k: html.unescape(v) for k, v in re.findall(r'name="([^"]+)" value="([^"]*)"', markup)}


def sign_in_as(client, key: str, next_path: str = "/"):
    """Open a page, pick a person on the demo IdP page, post its answer like the browser."""
    to_login = client.get(next_path).location
    to_idp = client.get(to_login).location
    page = client.get(to_idp).get_data(as_text=True)
    assert "Demo identity provider" in page
    forms = re.findall(r'<form method="post" action="([^"]+)">(.*?)</form>', page, re.S)
    action, body = next((a, b) for a, b in forms if f'value="{key}"' in b)
    autopost = client.post(action, data=fields(body)).get_data(as_text=True)
    assert 'src="/static/js/autopost.js"' in autopost
    acs = re.search(r'<form method="post" action="([^"]+)" data-autopost>', autopost).group(1)
    cross_site_post(client)  # as a real IdP's POST is: only SameSite=None cookies go
    return client.post(acs, data=fields(autopost))


def test_demo_idp_lists_an_admin_a_viewer_and_an_outsider(client):
    page = client.get(client.get(client.get("/").location).location).get_data(as_text=True)
    for person in PEOPLE:
        assert person.email in page
    assert [p.key for p in PEOPLE] == ["ada", "victor", "nora"]


def test_demo_admin_lands_on_the_page_asked_for(client, app):
    response = sign_in_as(client, "ada", "/users")
    assert response.status_code == 302 and response.location == "/users"
    page = client.get("/users").get_data(as_text=True)
    assert "Ada Admin" in page and ">admin<" in page
    assert "Demo mode" in page
    assert audit_rows(app)[-1]["actor"] == "ada.admin@example.com"


def test_demo_viewer_is_read_only(client):
    assert sign_in_as(client, "victor").status_code == 302
    assert "viewer: read-only" in client.get("/").get_data(as_text=True)


def test_demo_outsider_is_refused(client):
    response = sign_in_as(client, "nora")
    assert response.status_code == 403
    assert "not allowed into this dashboard" in response.get_data(as_text=True)


def test_demo_single_logout_round_trip(client):
    sign_in_as(client, "ada")
    to_idp = post(client, "/logout").location
    assert "/sandbox/idp/slo?SAMLRequest=" in to_idp
    back = client.get(to_idp).location
    assert "/saml/sls?SAMLResponse=" in back and "Signature=" in back
    done = client.get(back)
    assert done.status_code == 302 and done.location == "/signed-out"
    assert client.get("/").status_code == 302


def test_demo_idp_signs_only_for_this_dashboard(client):
    """A request claiming another service provider gets no signed assertion."""
    page = client.get(client.get(client.get("/").location).location).get_data(as_text=True)
    form = fields(re.findall(r"<form[^>]*>(.*?)</form>", page, re.S)[0])
    import base64
    import zlib

    from dashboard.sandbox.idp import decode_redirect

    xml = (
        decode_redirect(form["SAMLRequest"])
        .decode()
        .replace("http://localhost/saml/acs", "https://evil.example/acs")
    )
    form["SAMLRequest"] = base64.b64encode(zlib.compress(xml.encode())[2:-4]).decode()
    response = client.post("/sandbox/idp/sso", data=form)
    assert response.status_code == 400
    assert "SAMLResponse" not in response.get_data(as_text=True)


def test_the_demo_tenant_is_a_realistic_few_hundred_people(app):
    """Mixed roles, a wrong case and an unknown role, suspended, removed, never provisioned."""
    state = app.extensions["dashboard.sandbox"].onelogin_state
    assigned = state.app_user_ids(app.extensions["dashboard.sandbox"].app_id)
    assert 250 <= len(assigned) <= 320
    roles = {state.users[i].custom_attributes.get("workato_role") for i in assigned}
    assert {"Admin", "Analyst", "Operator", "admin", "Developer"} <= roles
    assert sum(state.users[i].status == 2 for i in assigned) >= 5


def test_the_demo_workspace_holds_the_provisioned_people_and_its_owner(app, client):
    sandbox = app.extensions["dashboard.sandbox"]
    state = sandbox.onelogin_state
    headers = {"Authorization": f"Bearer {sandbox.credentials['scim_token']}"}
    listed = client.get("/sandbox/workato/scim/v2/Users?count=1000", headers=headers).json
    held = {u["userName"].lower(): u for u in listed["Resources"]}
    assigned = {state.users[i].email for i in state.app_user_ids(sandbox.app_id)}
    assert "workspace.owner@example.com" in held  # unknown to OneLogin
    removed_but_active = [e for e, u in held.items() if e not in assigned and u["active"]]
    assert "noah.williams@example.com" in removed_but_active
    never_provisioned = assigned - set(held)
    assert len(never_provisioned) >= 3
    assert held["elena.petrova@example.com"]["active"] is False  # suspended reached Workato


def test_the_published_demo_credential_does_not_open_the_demo_tenant(app, client):
    """Only the random per-instance credential works against the demo's OneLogin."""
    from dashboard.sandbox.onelogin_seed import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET

    def token(client_id, secret):
        return client.post(
            "/sandbox/onelogin/auth/oauth2/v2/token",
            json={"grant_type": "client_credentials"},
            headers={"Authorization": f"client_id:{client_id}, client_secret:{secret}"},
        ).status_code

    credentials = app.extensions["dashboard.sandbox"].credentials
    assert token(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET) == 401
    assert token(credentials["onelogin_client_id"], credentials["onelogin_client_secret"]) == 200


def test_a_viewer_sees_the_sandbox_console_without_forms(client):
    sign_in_as(client, "victor", "/sandbox/console")
    page = client.get("/sandbox/console").get_data(as_text=True)
    assert "Sandbox OneLogin console" in page
    assert "<form" not in page.split("<main", 1)[1]
