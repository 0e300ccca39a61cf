"""How long a session lasts: a page polling in the background is not activity, and the IdP's
SessionNotOnOrAfter ends a session (and so has its role read again) even before
DASHBOARD_SESSION_MAX_HOURS."""

from __future__ import annotations

from datetime import timedelta

from freezegun import freeze_time
from saml2.saml import NAMEID_FORMAT_EMAILADDRESS, NameID

from dashboard.auth.models import LoginSession
from dashboard.extensions import db
from dashboard.sync.models import Run
from dashboard.timeutil import utcnow
from tests.support.forms import HTMX
from tests.support.pysaml_idp import PASSWORD_PROTECTED, RSA_SHA256, SHA256
from tests.support.signin import ADMIN_EMAIL, ADMINS, VIEWERS


def only_session() -> LoginSession:
    return db.session.scalars(db.select(LoginSession)).one()


def test_a_page_polling_in_the_background_does_not_keep_an_idle_session_alive(admin_client, app):
    """A run page left open polls its progress card every second; 30 minutes after the
    person's last own request the session still ends."""
    with app.app_context():
        run = Run(created_by=ADMIN_EMAIL)
        db.session.add(run)
        only_session().last_seen_at = utcnow() - timedelta(minutes=29)
        db.session.commit()
        run_id = run.id
    poll = admin_client.get(f"/sync/runs/{run_id}/progress", headers=HTMX)
    assert poll.status_code == 200
    with freeze_time(utcnow() + timedelta(minutes=2)):
        assert admin_client.get(f"/sync/runs/{run_id}/progress", headers=HTMX).status_code == 401
        assert admin_client.get("/").status_code == 302  # to sign in again
    with app.app_context():
        assert only_session().end_reason == "idle"


def response_with_session_end(sign_in, request_id: str, email: str, roles: list[str], ends):
    """What the IdP answers when its session ends at `ends` (SessionNotOnOrAfter)."""
    saml = sign_in.app.extensions["dashboard.saml"]
    identity = {"email": [email], "firstname": ["Ada"], "lastname": ["Tester"], "roles": roles}
    response = sign_in.idp.server.create_authn_response(
        identity,
        in_response_to=request_id,
        destination=saml.acs_url,
        sp_entity_id=saml.entity_id,
        name_id=NameID(format=NAMEID_FORMAT_EMAILADDRESS, text=email),
        authn={"class_ref": PASSWORD_PROTECTED},
        sign_response=True,
        sign_assertion=True,
        sign_alg=RSA_SHA256,
        digest_alg=SHA256,
        session_not_on_or_after=ends.strftime("%Y-%m-%dT%H:%M:%SZ"),
    )
    return str(response)


def test_the_session_ends_when_the_idp_says_and_the_next_sign_in_reads_the_role(
    sign_in, client, app
):
    """The IdP wants people to authenticate again after 10 minutes: at 11 the dashboard
    sends them back to it, and the role the IdP then asserts (now viewer) is the one used."""
    ends = utcnow().replace(microsecond=0) + timedelta(minutes=10)
    request_id, relay = sign_in.start()
    xml = response_with_session_end(sign_in, request_id, ADMIN_EMAIL, [ADMINS], ends)
    assert sign_in.post(xml, relay).status_code == 302
    assert ">admin<" in client.get("/").get_data(as_text=True)
    with freeze_time(ends + timedelta(minutes=1)):
        assert client.get("/").status_code == 302
        with app.app_context():
            assert only_session().end_reason == "idp_session_expired"
        assert sign_in.as_(ADMIN_EMAIL, [VIEWERS]).status_code == 302
        assert "viewer: read-only" in client.get("/").get_data(as_text=True)
