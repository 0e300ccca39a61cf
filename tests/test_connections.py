"""The credential vault and the Connections page: secrets encrypted, write-only, audited."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from dashboard.connections import clients, service
from dashboard.connections.models import Connection
from dashboard.extensions import db
from tests.support.forms import htmx_headers, post
from tests.support.rows import audit_rows

SCIM_TOKEN = "scim-token-Zq8WvK3pL0xYtR7m"
CLIENT_SECRET = "onelogin-secret-Hn4Jd9QwE2rT"


def save_scim(client, base_url="https://workato.example/scim/v2", secret=SCIM_TOKEN):
    return post(client, "/connections/scim", base_url=base_url, secret=secret)


def save_onelogin(client, **overrides):
    data = {
        "base_url": "https://acme.onelogin.example",
        "client_id": "cid-123",
        "app_id": "4242",
        "secret": CLIENT_SECRET,
    }
    data.update(overrides)
    return post(client, "/connections/onelogin", **data)


def stored(app, kind) -> Connection | None:
    with app.app_context():
        return service.get(kind)


def test_saving_a_secret_stores_only_ciphertext_and_shows_only_the_last_four(admin_client, app):
    assert save_scim(admin_client).status_code == 302
    connection = stored(app, "scim")
    assert connection.secret_ciphertext and SCIM_TOKEN not in connection.secret_ciphertext
    page = admin_client.get("/connections").get_data(as_text=True)
    assert "ends in <code>…tR7m</code>" in page
    assert SCIM_TOKEN not in page
    assert "saved by ada.admin@example.com" in page


def test_secret_never_reaches_html_audit_logs_or_the_database_file(
    admin_client, app, caplog, database
):
    """Search every place a secret could leak: pages, audit rows, log records, the raw DB."""
    caplog.set_level(logging.DEBUG)
    save_onelogin(admin_client)
    save_scim(admin_client, base_url="http://127.0.0.1:9/v2")  # a closed port: the test fails
    pages = [admin_client.get(url).get_data(as_text=True) for url in ("/connections", "/audit")]
    post(admin_client, "/connections/scim/test")
    for secret in (SCIM_TOKEN, CLIENT_SECRET):
        assert all(secret not in page for page in pages)
        assert secret not in str(audit_rows(app))
        assert secret not in caplog.text
    if database.kind == "sqlite":
        raw = Path(app.config["SQLALCHEMY_DATABASE_URI"].removeprefix("sqlite:///")).read_bytes()
        assert SCIM_TOKEN.encode() not in raw and CLIENT_SECRET.encode() not in raw
    else:
        with app.app_context():
            dump = str(db.session.execute(db.text("SELECT * FROM connections")).all())
        assert SCIM_TOKEN not in dump and CLIENT_SECRET not in dump


def test_saving_is_audited_without_the_secret(admin_client, app):
    save_scim(admin_client)
    entry = audit_rows(app)[-1]
    assert entry["action"] == "connection.saved"
    assert entry["details"]["connection"] == "scim"
    assert entry["details"]["secret"] == "replaced"
    assert entry["details"]["changed"]["base_url"] == [None, "https://workato.example/scim/v2"]


def test_an_empty_secret_field_keeps_the_stored_secret(admin_client, app):
    save_scim(admin_client)
    before = stored(app, "scim").secret_ciphertext
    save_scim(admin_client, base_url="https://workato.example/scim/v3", secret="")
    after = stored(app, "scim")
    assert after.secret_ciphertext == before
    assert after.base_url == "https://workato.example/scim/v3"
    assert audit_rows(app)[-1]["details"]["secret"] == "unchanged"


def test_clearing_the_secret_is_audited(admin_client, app):
    save_scim(admin_client)
    post(admin_client, "/connections/scim/clear-secret")
    assert stored(app, "scim").secret_ciphertext is None
    assert audit_rows(app)[-1]["action"] == "connection.secret_cleared"
    assert "<strong>Not set</strong>" in admin_client.get("/connections").get_data(as_text=True)


@pytest.mark.parametrize(
    ("base_url", "message"),
    [
        ("http://workato.example/scim/v2", "uses plain http"),
        ("https://user:pass@workato.example/scim/v2", "Do not put credentials in the URL"),
        ("workato.example", "is not a URL"),
        ("https://workato.example/scim/v2?token=x", "has a query or fragment"),
        ("https://workato.example:abc/v2", "cannot be read"),
        ("https://workato.example:99999/v2", "cannot be read"),
        ("https://[::1/v2", "cannot be read"),
    ],
)
def test_bad_base_urls_are_refused_with_the_reason(admin_client, app, base_url, message):
    response = save_scim(admin_client, base_url=base_url)
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)
    assert stored(app, "scim") is None


def test_plain_http_is_allowed_to_loopback(admin_client, app):
    assert save_scim(admin_client, base_url="http://127.0.0.1:8080/v2").status_code == 302


def test_onelogin_needs_a_numeric_app_id(admin_client, app):
    response = save_onelogin(admin_client, app_id="workato")
    assert response.status_code == 422
    assert "numeric id of the Workato app" in response.get_data(as_text=True)


def test_a_new_connection_needs_its_secret(admin_client, app):
    response = save_scim(admin_client, secret="")
    assert response.status_code == 422
    assert "Enter the SCIM token" in response.get_data(as_text=True)


def test_viewers_see_connections_but_cannot_change_them(viewer_client, app):
    with app.app_context():
        service.save("scim", actor="seed", base_url="https://w.example/scim/v2", secret=SCIM_TOKEN)
    page = viewer_client.get("/connections").get_data(as_text=True)
    assert "https://w.example/scim/v2" in page
    assert "<form" not in page.split("<main", 1)[1]
    for url in (
        "/connections/scim",
        "/connections/scim/clear-secret",
        "/connections/scim/test",
        "/connections/scim/disable",
    ):
        response = post(viewer_client, url, base_url="https://evil.example", confirm="yes")
        assert response.status_code == 403, url
    assert stored(app, "scim").base_url == "https://w.example/scim/v2"
    assert stored(app, "scim").enabled


def test_disable_scim_needs_confirmation_then_shows_the_manual_steps(admin_client, app):
    save_scim(admin_client)
    post(admin_client, "/connections/scim/disable")
    assert stored(app, "scim").enabled  # not without the tick
    post(admin_client, "/connections/scim/disable", confirm="yes", token="keep")
    connection = stored(app, "scim")
    assert not connection.enabled and connection.secret_ciphertext
    page = admin_client.get("/connections").get_data(as_text=True)
    assert "SCIM is disabled" in page
    assert "untick <em>Enable provisioning</em>" in page and "Refresh token" in page
    assert audit_rows(app)[-1]["details"] == {"token": "kept"}
    post(admin_client, "/connections/scim/enable")
    assert stored(app, "scim").enabled


def test_disable_scim_can_clear_the_token(admin_client, app):
    save_scim(admin_client)
    post(admin_client, "/connections/scim/disable", confirm="yes", token="clear")
    assert stored(app, "scim").secret_ciphertext is None


class TestKeyRotation:
    old_key = Fernet.generate_key().decode()
    new_key = Fernet.generate_key().decode()

    def test_rotation_re_encrypts_with_the_newest_key(self, make_app):
        app = make_app(DASHBOARD_ENCRYPTION_KEY=self.old_key)
        with app.app_context():
            service.save("scim", actor="t", base_url="https://w.example/v2", secret=SCIM_TOKEN)
        rotated = make_app(DASHBOARD_ENCRYPTION_KEY=f"{self.new_key},{self.old_key}")
        with rotated.app_context():
            assert service.rotate_keys("t") == 1
        only_new = make_app(DASHBOARD_ENCRYPTION_KEY=self.new_key)
        with only_new.app_context():
            assert clients.secret_of(service.get("scim")) == SCIM_TOKEN
        assert audit_rows(only_new)[-1]["action"] == "connection.keys_rotated"

    def test_a_secret_no_key_can_read_is_reported_not_crashed(self, make_app):
        app = make_app(DASHBOARD_ENCRYPTION_KEY=self.old_key)
        with app.app_context():
            service.save("scim", actor="t", base_url="https://w.example/v2", secret=SCIM_TOKEN)
        other = make_app(DASHBOARD_ENCRYPTION_KEY=self.new_key)
        with other.app_context():
            result = service.try_connection("scim", "t")
        assert not result.ok and "cannot be decrypted" in result.message

    def test_a_malformed_key_stops_the_start_with_a_clear_message(self, make_app):
        from dashboard.settings import ConfigError

        with pytest.raises(ConfigError, match="Key 2 of DASHBOARD_ENCRYPTION_KEY is not a Fernet"):
            make_app(DASHBOARD_ENCRYPTION_KEY=f"{self.new_key},not-a-key")


def test_the_default_key_file_is_private(app):
    from pathlib import Path

    key_file = Path(app.instance_path) / "encryption_key"
    assert key_file.stat().st_mode & 0o777 == 0o600


def test_moving_a_connection_to_another_host_needs_the_secret_again(admin_client, app):
    """Else the stored token could be sent to any host with "Test connection"."""
    save_scim(admin_client)
    response = save_scim(admin_client, base_url="https://attacker.example/scim/v2", secret="")
    assert response.status_code == 422
    assert "The host changed: enter the SCIM token again" in response.get_data(as_text=True)
    assert stored(app, "scim").base_url == "https://workato.example/scim/v2"
    assert save_scim(admin_client, base_url="https://other.example/v2").status_code == 302


def test_changing_a_connection_forgets_its_last_test(admin_client, app):
    save_scim(admin_client, base_url="http://127.0.0.1:9/v2")
    post(admin_client, "/connections/scim/test")
    assert stored(app, "scim").last_test_at is not None
    save_scim(admin_client, base_url="http://127.0.0.1:9/v3", secret="")
    assert stored(app, "scim").last_test_at is None


def test_values_longer_than_their_columns_are_refused_not_crashed(admin_client, app):
    long_url = "https://workato.example/" + "a" * 600
    assert save_scim(admin_client, base_url=long_url).status_code == 422
    assert save_onelogin(admin_client, app_id=str(2**31)).status_code == 422
    assert save_onelogin(admin_client, client_id="c" * 300).status_code == 422


def test_a_token_echoed_by_the_server_is_redacted_everywhere(admin_client, app, caplog):
    """A service that repeats the Authorization header in its error body leaks nothing."""
    from tests.support.scim_server import json_app, serve_wsgi

    def echo(request):
        return 401, {
            "detail": f"bad credentials: {request.headers.get('Authorization')}",
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
            "status": "401",
        }

    caplog.set_level(logging.DEBUG)
    with serve_wsgi(json_app(echo)) as root:
        save_scim(admin_client, base_url=root + "/v2")
        headers = htmx_headers(admin_client)
        tested = admin_client.post("/connections/scim/test", headers=headers).get_data(as_text=True)
    assert "Workato rejected the SCIM token" in tested and "[redacted]" in tested
    page = admin_client.get("/connections").get_data(as_text=True)
    for place in (
        tested,
        page,
        str(audit_rows(app)),
        caplog.text,
        stored(app, "scim").last_test_message,
    ):
        assert SCIM_TOKEN not in place


def test_disabled_scim_refuses_writes_in_the_client_itself(admin_client, app):
    """Whatever later code calls, a disabled SCIM connection sends no write."""
    from dashboard.connections import errors
    from dashboard.connections.clients import client_for

    save_scim(admin_client, base_url="http://127.0.0.1:9/v2")
    with app.app_context():
        service.disable_scim("t", clear_token=False)
        client = client_for(service.get("scim"))
        with pytest.raises(errors.ConnectionProblem) as refused:
            client.create_user({"userName": "x@example.com"})
    assert refused.value.kind == errors.SCIM_DISABLED
    assert "SCIM is disabled on Connections" in refused.value.message
