"""/saml/sls ends a session only for a logout message that passed every check and names
that session (its NameID, and its SessionIndex when the message lists any): anyone can send
a browser to /saml/sls, with any message the IdP ever signed."""

from __future__ import annotations

from urllib.parse import parse_qs, urlencode, urlsplit

from dashboard.auth.models import LoginSession
from dashboard.extensions import db
from tests.support.pysaml_idp import SLO_URL
from tests.support.signin import ADMIN_EMAIL, ADMINS, VIEWER_EMAIL


def sessions(app) -> list[LoginSession]:
    with app.app_context():
        return list(db.session.scalars(db.select(LoginSession).order_by(LoginSession.id)))


def logout_request(app, idp, name_id: str, session_index: str | None) -> str:
    """The path and query of a LogoutRequest the IdP signed, as it sends it to our SLS."""
    saml = app.extensions["dashboard.saml"]
    _, url = idp.logout_request_url(saml.entity_id, saml.sls_url, name_id, session_index)
    target = urlsplit(url)
    return f"{target.path}?{target.query}"


def test_a_valid_logout_request_for_someone_else_does_not_sign_the_victim_out(
    admin_client, app, idp
):
    """An attacker signs out at the IdP and has the victim's browser deliver the IdP's
    genuine LogoutRequest, which is for the attacker: the victim stays signed in."""
    response = admin_client.get(logout_request(app, idp, VIEWER_EMAIL, "attackers-session"))
    assert response.status_code == 302
    assert response.location.startswith(SLO_URL)  # the IdP still gets its answer
    assert admin_client.get("/").status_code == 200
    assert [s.ended_at for s in sessions(app)] == [None]


def test_a_logout_request_for_another_session_of_the_same_person_keeps_this_one(
    admin_client, app, idp
):
    admin_client.get(logout_request(app, idp, ADMIN_EMAIL, "another-idp-session"))
    assert admin_client.get("/").status_code == 200


def test_a_forged_logout_request_signs_nobody_out(admin_client, app, idp):
    """The victim's own LogoutRequest with its signature tampered with: refused, and the
    page says the session was kept."""
    login = sessions(app)[0]
    path, query = logout_request(app, idp, login.name_id, login.session_index).split("?")
    params = {k: v[0] for k, v in parse_qs(query).items()}
    params["Signature"] = params["Signature"][::-1]
    response = admin_client.get(f"{path}?{urlencode(params)}")
    assert response.status_code == 400
    assert "you are still signed in" in response.get_data(as_text=True)
    assert admin_client.get("/").status_code == 200
    assert [s.ended_at for s in sessions(app)] == [None]


def test_a_logout_request_naming_no_session_index_ends_all_of_the_persons_sessions(
    sign_in, app, idp
):
    """SAML: without a SessionIndex every session of that NameID ends, in every browser,
    whichever browser delivered the message; someone else's is untouched."""
    first, second, other = sign_in, sign_in.in_new_browser(), sign_in.in_new_browser()
    assert first.as_(ADMIN_EMAIL, [ADMINS]).status_code == 302
    assert second.as_(ADMIN_EMAIL, [ADMINS]).status_code == 302
    assert other.as_(VIEWER_EMAIL, [ADMINS]).status_code == 302
    response = app.test_client().get(logout_request(app, idp, ADMIN_EMAIL, None))
    assert response.status_code == 302
    assert first.client.get("/").status_code == 302
    assert second.client.get("/").status_code == 302
    assert other.client.get("/").status_code == 200
    assert [s.end_reason for s in sessions(app)] == ["idp_logout", "idp_logout", None]
