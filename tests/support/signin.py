"""Signing in as a browser does: who the test IdP vouches for, and one SP-initiated sign-in
driven through the real redirect and POST."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from flask import Flask
from flask.testing import FlaskClient

from tests.support.browser import cross_site_post
from tests.support.pysaml_idp import SSO_URL, PysamlIdp, post_binding

# The role attribute's values the test apps map to admin and viewer.
ADMINS = "Dashboard Admins"
VIEWERS = "Dashboard Viewers"
ADMIN_EMAIL = "ada.admin@example.com"
VIEWER_EMAIL = "victor.viewer@example.com"
OUTSIDER_EMAIL = "nora.outsider@example.com"


class SignIn:
    """Drives one SP-initiated sign-in through the real redirect and POST, every request
    to `base_url` (the test client's http://localhost unless told)."""

    def __init__(
        self, client: FlaskClient, idp: PysamlIdp, app: Flask, base_url: str | None = None
    ):
        self.client, self.idp, self.app, self.base_url = client, idp, app, base_url

    def in_new_browser(self) -> SignIn:
        return SignIn(self.app.test_client(), self.idp, self.app, self.base_url)

    def _at(self) -> dict[str, str]:
        return {"base_url": self.base_url} if self.base_url else {}

    def start(self, next_path: str = "/") -> tuple[str, str | None]:
        """Follow the protected page's redirect to the IdP; the AuthnRequest id and RelayState."""
        response = self.client.get(next_path, **self._at())
        assert response.status_code == 302, response.status_code
        response = self.client.get(response.location, **self._at())
        assert response.status_code == 302
        location = urlsplit(response.location)
        assert f"{location.scheme}://{location.netloc}{location.path}" == SSO_URL
        query = parse_qs(location.query)
        request = self.idp.read_authn_request(query["SAMLRequest"][0])
        return request.id, query.get("RelayState", [None])[0]

    def response(self, request_id: str | None, email: str, roles: list[str], **kw) -> str:
        saml = self.app.extensions["dashboard.saml"]
        values = {"destination": saml.acs_url, "sp_entity_id": saml.entity_id}
        values.update(kw)
        return self.idp.response_xml(in_response_to=request_id, email=email, roles=roles, **values)

    def post(self, xml: str, relay_state: str | None):
        # The IdP's POST is cross-site: a SameSite=Lax cookie is not sent with it.
        cross_site_post(self.client)
        data = {"SAMLResponse": post_binding(xml)}
        if relay_state is not None:
            data["RelayState"] = relay_state
        return self.client.post("/saml/acs", data=data, **self._at())

    def as_(self, email: str, roles: list[str], next_path: str = "/"):
        request_id, relay_state = self.start(next_path)
        return self.post(self.response(request_id, email, roles), relay_state)


def signed_in_admin(app: Flask, idp: PysamlIdp) -> FlaskClient:
    """A new browser signed in as the admin, for an app a test made with its own settings."""
    signing_in = SignIn(app.test_client(), idp, app)
    response = signing_in.as_(ADMIN_EMAIL, [ADMINS])
    assert response.status_code == 302, response.get_data(as_text=True)
    return signing_in.client
