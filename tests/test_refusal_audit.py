"""Refused sign-ins and logouts are audited without letting a flood fill the audit trail:
one `auth.refused` entry per address and reason a minute, with the count of refusals it
stands for; what the sender wrote is kept out until the IdP's signature vouched for it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from freezegun import freeze_time

from tests.support.redis_db import redis_database
from tests.support.rows import audit_rows
from tests.support.signin import ADMIN_EMAIL, ADMINS, OUTSIDER_EMAIL

NOT_A_RESPONSE = {"SAMLResponse": "bm90IGEgU0FNTCByZXNwb25zZQ=="}
PLANTED = "PLANTED-BY-THE-SENDER"


def refusals(app, action: str = "auth.refused") -> list[dict]:
    return [e for e in audit_rows(app) if e["action"] == action]


@pytest.fixture
def clock() -> Iterator:
    """Stopped one second past the next minute boundary, so that a test's refusals fall in
    one minute until it moves the clock on. (Ahead of the real clock, never behind it: the
    in-memory counts expire in a thread of their own, which sees the real time.)"""
    now = datetime.now(UTC)
    start = now.replace(second=1, microsecond=0) + timedelta(minutes=1)
    with freeze_time(start) as frozen:
        yield frozen


def test_a_flood_of_refusals_writes_one_entry_a_minute_carrying_the_count(client, app, clock):
    for _ in range(10):
        assert client.post("/saml/acs", data=NOT_A_RESPONSE).status_code == 400
    assert [e["details"] for e in refusals(app)] == [{"reason": "malformed", "count": 1}]
    clock.tick(60)
    client.post("/saml/acs", data=NOT_A_RESPONSE)
    # The next minute's entry stands for itself and the nine that were only counted.
    assert [e["details"]["count"] for e in refusals(app)] == [1, 10]
    assert all(e["source_ip"] == "127.0.0.1" for e in refusals(app))


def test_each_reason_has_its_own_entry(sign_in, client, app, clock):
    client.post("/saml/acs", data=NOT_A_RESPONSE)
    client.post("/saml/acs", data=NOT_A_RESPONSE)
    unsolicited = sign_in.response(None, ADMIN_EMAIL, [ADMINS])
    sign_in.post(unsolicited, None)
    assert [e["details"]["reason"] for e in refusals(app)] == ["malformed", "unsolicited"]


class TestBehindOneProxy:
    @pytest.fixture
    def app(self, make_app):
        return make_app(DASHBOARD_PROXY_COUNT=1)

    def test_each_address_has_its_own_entry(self, client, app, clock):
        for address in ("203.0.113.7", "203.0.113.7", "203.0.113.8"):
            headers = {"X-Forwarded-For": address}
            client.post("/saml/acs", data=NOT_A_RESPONSE, headers=headers)
        assert [e["source_ip"] for e in refusals(app)] == ["203.0.113.7", "203.0.113.8"]


def test_logout_refusals_are_bounded_too(client, app, clock):
    for _ in range(5):
        response = client.get("/saml/sls?SAMLResponse=bm90IGEgbG9nb3V0IHJlc3BvbnNl")
        assert response.status_code == 400
    entries = refusals(app, "auth.logout_refused")
    assert [e["details"] for e in entries] == [{"reason": "unknown_in_response_to", "count": 1}]


def test_text_from_an_unchecked_response_is_not_recorded(sign_in, app):
    """A response refused before its signature was checked (here: unsigned, addressed to
    a URL of the sender's choosing) leaves its reason code, not its words; one the IdP
    signed still names the person and says why."""
    request_id, relay = sign_in.start()
    xml = sign_in.response(
        request_id,
        ADMIN_EMAIL,
        [ADMINS],
        destination=f"https://elsewhere.example/{PLANTED}",
        sign_response=False,
        sign_assertion=False,
    )
    response = sign_in.post(xml, relay)
    assert response.status_code == 400
    entry = refusals(app)[-1]
    assert entry["actor"] == "anonymous"
    assert entry["details"] == {"reason": "wrong_destination", "count": 1}
    assert PLANTED not in str(audit_rows(app))

    sign_in.in_new_browser().as_(OUTSIDER_EMAIL, ["Employees"])
    entry = refusals(app)[-1]
    assert entry["actor"] == OUTSIDER_EMAIL
    assert entry["details"]["reason"] == "not_authorised"
    assert OUTSIDER_EMAIL in entry["details"]["message"]


def test_instances_sharing_redis_share_the_bound(make_app, clock):
    """One entry a minute for an address across every instance counting in one Redis."""
    with redis_database() as url:
        first = make_app(DASHBOARD_RATELIMIT_STORAGE_URL=url)
        second = make_app(DASHBOARD_RATELIMIT_STORAGE_URL=url)
        first.test_client().post("/saml/acs", data=NOT_A_RESPONSE)
        second.test_client().post("/saml/acs", data=NOT_A_RESPONSE)
        assert len(refusals(first)) == 1  # one database: the second was only counted
        clock.tick(60)
        second.test_client().post("/saml/acs", data=NOT_A_RESPONSE)
        assert [e["details"]["count"] for e in refusals(first)] == [1, 2]
