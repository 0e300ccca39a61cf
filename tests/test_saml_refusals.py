"""Every forged, stale or misdirected sign-in is refused: no session, and an audit entry.

The IdP is pysaml2; each bad message is a real one it signed (or we tampered with after it
signed), never one our own code built.
"""

from __future__ import annotations

import base64
import copy
from datetime import UTC, datetime, timedelta

import pytest
from freezegun import freeze_time
from lxml import etree

from dashboard.auth.models import SamlRequest
from dashboard.extensions import db
from tests.support.pysaml_idp import PysamlIdp
from tests.support.rows import audit_rows, count_rows
from tests.support.signin import ADMIN_EMAIL, ADMINS, VIEWER_EMAIL, VIEWERS

NS = {
    "samlp": "urn:oasis:names:tc:SAML:2.0:protocol",
    "saml": "urn:oasis:names:tc:SAML:2.0:assertion",
    "ds": "http://www.w3.org/2000/09/xmldsig#",
}
OTHER_SP = "https://other-sp.example/saml/metadata"


def assert_refused(response, app, client, reasons: set[str]) -> None:
    assert response.status_code == 400, response.get_data(as_text=True)
    assert "Sign-in refused" in response.get_data(as_text=True)
    assert count_rows(app, "login_sessions") == 0
    assert client.get("/").status_code == 302  # still anonymous
    entry = audit_rows(app)[-1]
    assert entry["action"] == "auth.refused"
    assert entry["outcome"] == "refused"
    assert entry["details"]["reason"] in reasons, entry["details"]


def tamper(xml: str, change) -> str:
    root = etree.fromstring(xml.encode())
    change(root)
    return etree.tostring(root).decode()


def test_unsigned_response_is_refused(sign_in, app, client):
    request_id, relay = sign_in.start()
    xml = sign_in.response(request_id, ADMIN_EMAIL, [ADMINS], sign_response=False)
    response = sign_in.post(xml, relay)
    assert_refused(response, app, client, {"unsigned_response"})
    # The page says what to change in OneLogin, not only what went wrong.
    assert "signature element to “Both”" in response.get_data(as_text=True)


def test_unsigned_assertion_is_refused(sign_in, app, client):
    request_id, relay = sign_in.start()
    xml = sign_in.response(request_id, ADMIN_EMAIL, [ADMINS], sign_assertion=False)
    assert_refused(sign_in.post(xml, relay), app, client, {"unsigned_assertion"})


def test_nothing_signed_is_refused(sign_in, app, client):
    request_id, relay = sign_in.start()
    xml = sign_in.response(
        request_id, ADMIN_EMAIL, [ADMINS], sign_response=False, sign_assertion=False
    )
    assert_refused(
        sign_in.post(xml, relay), app, client, {"unsigned_response", "unsigned_assertion"}
    )


def test_response_signed_by_another_key_is_refused(sign_in, app, client, idp_folder):
    impostor = PysamlIdp(idp_folder, key_name="impostor")  # same entity id, other key
    impostor.trust_sp(app.extensions["dashboard.saml"].metadata_xml().decode())
    request_id, relay = sign_in.start()
    saml = app.extensions["dashboard.saml"]
    xml = impostor.response_xml(
        in_response_to=request_id,
        destination=saml.acs_url,
        sp_entity_id=saml.entity_id,
        email=ADMIN_EMAIL,
        roles=[ADMINS],
    )
    assert_refused(sign_in.post(xml, relay), app, client, {"bad_signature"})


def test_role_attribute_changed_after_signing_is_refused(sign_in, app, client):
    request_id, relay = sign_in.start()
    xml = sign_in.response(request_id, VIEWER_EMAIL, [VIEWERS])
    assert VIEWERS in xml
    forged = xml.replace(VIEWERS, ADMINS)
    assert_refused(sign_in.post(forged, relay), app, client, {"bad_signature"})


def test_name_id_changed_after_signing_is_refused(sign_in, app, client):
    request_id, relay = sign_in.start()
    xml = sign_in.response(request_id, VIEWER_EMAIL, [ADMINS])

    def rename(root):
        name_id = root.find(".//saml:Subject/saml:NameID", NS)
        name_id.text = ADMIN_EMAIL

    assert_refused(sign_in.post(tamper(xml, rename), relay), app, client, {"bad_signature"})


def _wrap_extra_assertion(root):
    """Signature wrapping: an unsigned assertion for someone else beside the signed one."""
    signed = root.find("saml:Assertion", NS)
    evil = copy.deepcopy(signed)
    evil.remove(evil.find("ds:Signature", NS))
    evil.set("ID", "_evil")
    evil.find(".//saml:Subject/saml:NameID", NS).text = "mallory@example.com"
    signed.addprevious(evil)


@pytest.mark.parametrize(
    "response_signed", [True, False], ids=["response-signed", "assertion-only"]
)
def test_extra_unsigned_assertion_wrapped_beside_the_signed_one_is_refused(
    sign_in, app, client, response_signed
):
    request_id, relay = sign_in.start()
    xml = sign_in.response(request_id, VIEWER_EMAIL, [ADMINS], sign_response=response_signed)
    forged = tamper(xml, _wrap_extra_assertion)
    assert forged.count("mallory@example.com") == 1
    assert_refused(
        sign_in.post(forged, relay),
        app,
        client,
        {"wrong_number_of_assertions"},
    )


def test_expired_assertion_is_refused(sign_in, app, client):
    request_id, relay = sign_in.start()
    with freeze_time(datetime.now(UTC) - timedelta(hours=1)):
        xml = sign_in.response(request_id, ADMIN_EMAIL, [ADMINS])
    assert_refused(sign_in.post(xml, relay), app, client, {"expired"})


def test_assertion_not_yet_valid_is_refused(sign_in, app, client):
    request_id, relay = sign_in.start()
    with freeze_time(datetime.now(UTC) + timedelta(hours=1)):
        xml = sign_in.response(request_id, ADMIN_EMAIL, [ADMINS])
    assert_refused(sign_in.post(xml, relay), app, client, {"not_yet_valid"})


def test_assertion_for_another_audience_is_refused(sign_in, app, client, idp):
    sp_metadata = app.extensions["dashboard.saml"].metadata_xml().decode()
    idp.trust_sp(sp_metadata.replace(app.extensions["dashboard.saml"].entity_id, OTHER_SP))
    request_id, relay = sign_in.start()
    xml = sign_in.response(request_id, ADMIN_EMAIL, [ADMINS], sp_entity_id=OTHER_SP)
    assert OTHER_SP in xml
    assert_refused(sign_in.post(xml, relay), app, client, {"wrong_audience"})


def test_response_for_another_destination_is_refused(sign_in, app, client):
    request_id, relay = sign_in.start()
    xml = sign_in.response(
        request_id, ADMIN_EMAIL, [ADMINS], destination="https://elsewhere.example/saml/acs"
    )
    response = sign_in.post(xml, relay)
    assert_refused(response, app, client, {"wrong_destination"})
    assert "SAML_SP_BASE_URL must name the same address" in response.get_data(as_text=True)


def test_response_to_a_request_never_made_is_refused(sign_in, app, client):
    _, relay = sign_in.start()
    xml = sign_in.response("id-this-server-never-issued", ADMIN_EMAIL, [ADMINS])
    assert_refused(sign_in.post(xml, relay), app, client, {"unknown_in_response_to"})


def test_replayed_response_is_refused(sign_in, app, client):
    """Posted again, even by the browser that started the sign-in (another browser is
    refused before: see test_sign_in_binding)."""
    request_id, relay = sign_in.start()
    xml = sign_in.response(request_id, ADMIN_EMAIL, [ADMINS])
    assert sign_in.post(xml, relay).status_code == 302
    response = sign_in.post(xml, relay)
    assert response.status_code == 400
    assert count_rows(app, "login_sessions") == 1  # only the genuine one
    assert audit_rows(app)[-1]["details"]["reason"] == "replayed"


def test_response_to_a_stale_request_is_refused(sign_in, app, client):
    request_id, relay = sign_in.start()
    with app.app_context():
        db.session.get(SamlRequest, request_id).expires_at = datetime.now(UTC) - timedelta(
            seconds=1
        )
        db.session.commit()
    xml = sign_in.response(request_id, ADMIN_EMAIL, [ADMINS])
    assert_refused(sign_in.post(xml, relay), app, client, {"request_expired"})


def test_unsolicited_response_is_refused_by_default(sign_in, app, client):
    xml = sign_in.response(None, ADMIN_EMAIL, [ADMINS])
    assert_refused(sign_in.post(xml, None), app, client, {"unsolicited"})


@pytest.mark.parametrize(
    "relay_state",
    ["https://evil.example/", "//evil.example/path", "/\\evil.example", "javascript:alert(1)"],
)
def test_relay_state_to_another_site_is_refused(sign_in, app, client, relay_state):
    request_id, _ = sign_in.start()
    xml = sign_in.response(request_id, ADMIN_EMAIL, [ADMINS])
    assert_refused(sign_in.post(xml, relay_state), app, client, {"relay_state_not_local"})


def test_sha1_signatures_are_refused(sign_in, app, client):
    request_id, relay = sign_in.start()
    xml = sign_in.response(
        request_id,
        ADMIN_EMAIL,
        [ADMINS],
        sign_alg="http://www.w3.org/2000/09/xmldsig#rsa-sha1",
        digest_alg="http://www.w3.org/2000/09/xmldsig#sha1",
    )
    assert_refused(sign_in.post(xml, relay), app, client, {"deprecated_algorithm"})


@pytest.mark.parametrize(
    "payload",
    [
        "not base64!",
        base64.b64encode(b"<not-saml/>").decode(),
        base64.b64encode(
            b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e "boom">]><x>&e;</x>'
        ).decode(),
    ],
    ids=["not-base64", "not-saml", "dtd"],
)
def test_malformed_response_is_refused(client, app, payload):
    response = client.post("/saml/acs", data={"SAMLResponse": payload})
    assert_refused(response, app, client, {"malformed"})


class TestIdpInitiatedAllowed:
    @pytest.fixture
    def app(self, make_app):
        return make_app(SAML_ALLOW_IDP_INITIATED=True)

    def test_unsolicited_response_signs_in(self, sign_in, client):
        xml = sign_in.response(None, ADMIN_EMAIL, [ADMINS])
        response = sign_in.post(xml, "/audit")
        assert response.status_code == 302
        assert response.location == "/audit"
        assert client.get("/audit").status_code == 200

    def test_two_posts_racing_past_the_replay_check_let_only_one_in(
        self, sign_in, app, client, monkeypatch
    ):
        """The primary key settles a race the replay lookup cannot see; the loser is audited."""
        from dashboard.auth.models import SeenAssertion

        xml = sign_in.response(None, ADMIN_EMAIL, [ADMINS])
        assert sign_in.post(xml, None).status_code == 302
        real_get = db.session.get
        # As if the winner had not committed yet when the loser looked.
        monkeypatch.setattr(
            db.session,
            "get",
            lambda model, key: None if model is SeenAssertion else real_get(model, key),
        )
        again = sign_in.in_new_browser().post(xml, None)
        assert again.status_code == 400
        assert audit_rows(app)[-1]["details"]["reason"] == "replayed"
        assert count_rows(app, "login_sessions") == 1

    def test_the_same_unsolicited_assertion_twice_is_refused(self, sign_in, app, client):
        xml = sign_in.response(None, ADMIN_EMAIL, [ADMINS])
        assert sign_in.post(xml, None).status_code == 302
        again = sign_in.in_new_browser().post(xml, None)
        assert again.status_code == 400
        assert audit_rows(app)[-1]["details"]["reason"] == "replayed"
        assert count_rows(app, "login_sessions") == 1


def test_an_assertion_without_expiry_is_refused(sign_in, app, client, monkeypatch):
    """Without NotOnOrAfter the replay store could not know how long to remember it."""
    from onelogin.saml2.response import OneLogin_Saml2_Response

    monkeypatch.setattr(OneLogin_Saml2_Response, "get_assertion_not_on_or_after", lambda _: None)
    request_id, relay = sign_in.start()
    xml = sign_in.response(request_id, ADMIN_EMAIL, [ADMINS])
    assert_refused(sign_in.post(xml, relay), app, client, {"no_expiry"})


def test_accepted_assertions_are_remembered_past_their_expiry_by_the_clock_skew(sign_in, app):
    from dashboard.auth.models import SeenAssertion
    from dashboard.auth.saml import CLOCK_SKEW_SECONDS

    request_id, relay = sign_in.start()
    sign_in.post(sign_in.response(request_id, ADMIN_EMAIL, [ADMINS]), relay)
    with app.app_context():
        seen = db.session.scalars(db.select(SeenAssertion)).one()
        # pysaml2 gives the subject confirmation 5 minutes; we keep it 5 minutes more.
        remaining = (seen.not_on_or_after - datetime.now(UTC)).total_seconds()
        assert 5 * 60 + CLOCK_SKEW_SECONDS - 60 < remaining <= 5 * 60 + CLOCK_SKEW_SECONDS


def test_stale_sign_in_requests_are_pruned_when_a_new_one_starts(sign_in, app, client):
    stale_id, _ = sign_in.start()
    with app.app_context():
        db.session.get(SamlRequest, stale_id).expires_at = datetime.now(UTC) - timedelta(hours=1)
        db.session.commit()
    sign_in.in_new_browser().start()
    with app.app_context():
        assert db.session.get(SamlRequest, stale_id) is None
        assert db.session.scalar(db.select(db.func.count()).select_from(SamlRequest)) == 1


def test_a_second_answer_to_the_same_request_is_refused(sign_in, app, client):
    """Two different assertions for one sign-in request: only the first is used."""
    request_id, relay = sign_in.start()
    first = sign_in.response(request_id, ADMIN_EMAIL, [ADMINS])
    second = sign_in.response(request_id, ADMIN_EMAIL, [ADMINS])
    assert sign_in.post(first, relay).status_code == 302
    assert sign_in.post(second, relay).status_code == 400
    assert audit_rows(app)[-1]["details"]["reason"] == "request_reused"
    assert count_rows(app, "login_sessions") == 1
