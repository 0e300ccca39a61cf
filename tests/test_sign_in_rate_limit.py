"""The sign-in endpoints answer each client address at most DASHBOARD_SIGNIN_RATE_LIMIT
times (30 a minute by default); a request over the limit gets a 429 page saying when to
retry, and writes nothing to the database."""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator

import pytest

from tests.support.redis_db import redis_database
from tests.support.rows import count_rows

NOT_A_RESPONSE = {"SAMLResponse": "bm90IGEgU0FNTCByZXNwb25zZQ=="}


@pytest.fixture
def redis_url() -> Iterator[str]:
    with redis_database() as url:
        yield url


def knock(client, times: int, **kwargs) -> list[int]:
    """Start a sign-in `times` times, as a script hammering /saml/login would."""
    return [client.get("/saml/login", **kwargs).status_code for _ in range(times)]


def assert_told_when_to_retry(response) -> None:
    assert response.status_code == 429
    wait = int(response.headers["Retry-After"])
    assert 1 <= wait <= 60
    page = response.get_data(as_text=True)
    assert "Too many sign-in attempts" in page
    assert re.search(rf"Try again in {wait} seconds? \(at \d\d:\d\d:\d\d UTC\)", page), page


def test_the_31st_sign_in_request_in_a_minute_is_refused_with_when_to_retry(client, app):
    assert knock(client, 30) == [302] * 30
    assert count_rows(app, "saml_requests") == 30
    response = client.get("/saml/login")
    assert_told_when_to_retry(response)
    assert count_rows(app, "saml_requests") == 30  # the refused request stored nothing


def test_a_refused_post_to_the_acs_writes_no_audit_entry(client, app):
    """The three endpoints share one budget; over it, a post that would be audited as a
    refused sign-in is not even read."""
    assert knock(client, 29) == [302] * 29
    client.get("/saml/sls?SAMLResponse=bm90IGEgbG9nb3V0IHJlc3BvbnNl")  # the 30th
    entries = count_rows(app, "audit")
    response = client.post("/saml/acs", data=NOT_A_RESPONSE)
    assert_told_when_to_retry(response)
    assert count_rows(app, "audit") == entries
    assert count_rows(app, "saml_requests") == 29


def test_other_pages_are_not_limited(client):
    assert knock(client, 31) == [302] * 30 + [429]
    assert {client.get("/saml/metadata").status_code for _ in range(40)} == {200}
    assert client.get("/healthz").status_code == 200


class TestConfiguredLimit:
    @pytest.fixture
    def app(self, make_app):
        return make_app(DASHBOARD_SIGNIN_RATE_LIMIT="2/minute")

    def test_the_limit_is_the_setting(self, client):
        assert knock(client, 3) == [302, 302, 429]


class TestBehindOneProxy:
    """With DASHBOARD_PROXY_COUNT=1 the client is the address the proxy saw."""

    @pytest.fixture
    def app(self, make_app):
        return make_app(DASHBOARD_PROXY_COUNT=1)

    def test_each_client_behind_the_proxy_has_its_own_budget(self, client):
        alice = {"headers": {"X-Forwarded-For": "203.0.113.7"}}
        bob = {"headers": {"X-Forwarded-For": "203.0.113.8"}}
        assert knock(client, 30, **alice) == [302] * 30
        assert knock(client, 1, **alice) == [429]
        assert knock(client, 1, **bob) == [302]


def test_without_a_trusted_proxy_a_forwarded_for_header_changes_nothing(client):
    """DASHBOARD_PROXY_COUNT=0: X-Forwarded-For is the sender's own words, not an address."""
    spoofed = [{"headers": {"X-Forwarded-For": f"198.51.100.{n}"}} for n in range(31)]
    assert [client.get("/saml/login", **s).status_code for s in spoofed] == [302] * 30 + [429]


def test_two_instances_sharing_redis_share_the_limit(make_app, redis_url):
    """Two dashboards (processes or machines) with one DASHBOARD_RATELIMIT_STORAGE_URL count
    together: 30 requests at the first leave nothing for the second."""
    first = make_app(DASHBOARD_RATELIMIT_STORAGE_URL=redis_url).test_client()
    second = make_app(DASHBOARD_RATELIMIT_STORAGE_URL=redis_url).test_client()
    assert knock(first, 30) == [302] * 30
    assert_told_when_to_retry(second.get("/saml/login"))


def test_instances_counting_in_memory_count_apart(make_app):
    """The default (memory://) counts per process: say so by showing it."""
    first, second = make_app().test_client(), make_app().test_client()
    assert knock(first, 31) == [302] * 30 + [429]
    assert knock(second, 1) == [302]


def test_while_redis_cannot_be_reached_each_process_still_counts(make_app):
    """Redis down: sign-in still works, and the limit holds per process (in memory)."""
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    app = make_app(DASHBOARD_RATELIMIT_STORAGE_URL=f"redis://127.0.0.1:{port}/0")
    assert knock(app.test_client(), 31) == [302] * 30 + [429]
