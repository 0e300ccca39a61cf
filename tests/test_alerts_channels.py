"""Alert e-mail through a real SMTP server (aiosmtpd: plain, STARTTLS with a login, smtps),
the timeouts of both channels, `flask alerts test` and the *Send a test alert* button on
Connections (issue 15). No secret (the SMTP password, the webhook's path) in the audit
trail, the logs or the page."""

from __future__ import annotations

import json
import logging
import socket
from datetime import timedelta

import pytest

from dashboard.alerts import channels
from dashboard.alerts.watch import watch
from dashboard.connections.models import Connection
from dashboard.extensions import db
from dashboard.timeutil import utcnow
from tests.support.forms import post
from tests.support.rows import audit_rows
from tests.support.signin import signed_in_admin
from tests.support.smtp_server import SmtpServer
from tests.support.webhook_receiver import WebhookReceiver

PASSWORD = "sm7p-pa:ss/w0rd"  # characters a URL must escape
FROM, TO = "dashboard@example.com", ["ops@example.com", "oncall@example.com"]


def email_settings(server: SmtpServer, **values) -> dict:
    return {
        "DASHBOARD_SMTP_URL": server.url(),
        "DASHBOARD_ALERT_EMAIL_FROM": FROM,
        "DASHBOARD_ALERT_EMAIL_TO": ",".join(TO),
        **values,
    }


def a_broken_connection(app) -> None:
    with app.app_context():
        now = utcnow()
        db.session.add(
            Connection(
                kind="onelogin",
                base_url="https://acme.onelogin.example",
                saved_by="ada.admin@example.com",
                saved_at=now,
                last_test_at=now,
                last_test_ok=False,
                last_test_message="OneLogin refused the client secret (401).",
            )
        )
        db.session.commit()


def alert_entries(app) -> list[dict]:
    return [row for row in audit_rows(app) if row["action"].startswith("alert.")]


@pytest.fixture
def trust(monkeypatch):
    """Make the client trust a test server's self-signed certificate."""

    def trusting(server: SmtpServer) -> SmtpServer:
        monkeypatch.setenv("SSL_CERT_FILE", str(server.cert_file))
        return server

    return trusting


# --- e-mail ------------------------------------------------------------------------------


def test_an_alert_goes_by_plain_smtp_to_every_recipient(make_app, tmp_path):
    with SmtpServer(tmp_path) as server:
        app = make_app(**email_settings(server))
        a_broken_connection(app)
        with app.app_context():
            watch()
        [mail] = server.wait_for(1)
    assert server.envelopes == [(FROM, TO)]
    assert mail["Subject"] == "[Provisioning dashboard] OneLogin API does not work"
    assert mail["To"] == ", ".join(TO)
    body = mail.get_payload(decode=True).decode()
    assert "OneLogin refused the client secret (401)." in body
    assert "Dashboard: http://localhost/connections#onelogin" in body
    assert alert_entries(app)[0]["details"]["channels"] == {"email": "sent"}


@pytest.mark.parametrize("tls", ["starttls", "smtps"])
def test_an_alert_goes_over_tls_with_the_login_in_the_url(make_app, tmp_path, trust, tls, caplog):
    caplog.set_level(logging.DEBUG)
    with trust(SmtpServer(tmp_path, tls=tls, login=("alerts@example.com", PASSWORD))) as server:
        app = make_app(**email_settings(server))
        a_broken_connection(app)
        with app.app_context():
            watch()
        server.wait_for(1)
    assert server.secured == [True]
    assert server.logins == ["alerts@example.com"]
    assert PASSWORD not in caplog.text + repr(audit_rows(app))


def test_a_refused_login_is_audited_without_the_password_and_retried(
    make_app, tmp_path, trust, caplog
):
    caplog.set_level(logging.DEBUG)
    server = trust(SmtpServer(tmp_path, tls="starttls", login=("alerts", PASSWORD)))
    with server:
        app = make_app(**email_settings(server, DASHBOARD_SMTP_URL=server.url("wrong-pass")))
        a_broken_connection(app)
        now = utcnow()
        with app.app_context():
            watch(now)
            watch(now + timedelta(seconds=31))
    assert server.messages == []
    entries = alert_entries(app)
    assert [e["details"]["channels"] for e in entries] == [
        {"email": "failed: the SMTP server refused the user and password (535)"}
    ] * 2
    assert "wrong-pass" not in caplog.text + repr(audit_rows(app))


def test_a_password_is_never_sent_where_the_server_offers_no_starttls(make_app, tmp_path):
    server = SmtpServer(tmp_path, tls="none", login=("alerts", PASSWORD))
    with server:
        app = make_app(**email_settings(server))
        a_broken_connection(app)
        with app.app_context():
            watch()
    assert server.messages == [] and server.logins == []
    [entry] = alert_entries(app)
    assert "the password is not sent in the clear" in entry["details"]["channels"]["email"]


def test_a_certificate_nobody_trusts_is_refused(make_app, tmp_path):
    with SmtpServer(tmp_path, tls="smtps") as server:
        app = make_app(**email_settings(server))
        a_broken_connection(app)
        with app.app_context():
            watch()
    assert server.messages == []
    [entry] = alert_entries(app)
    assert entry["details"]["channels"] == {
        "email": "failed: the SMTP server's TLS certificate is not trusted"
    }


# --- timeouts -----------------------------------------------------------------------------


@pytest.fixture
def silent_server():
    """A server that accepts connections and never says a word."""
    with socket.create_server(("127.0.0.1", 0)) as listening:
        yield listening.getsockname()[1]


def test_a_silent_webhook_or_smtp_server_times_out(make_app, silent_server, monkeypatch):
    monkeypatch.setattr(channels, "TIMEOUT_SECONDS", 0.5)
    app = make_app(
        DASHBOARD_ALERT_WEBHOOK_URL=f"http://127.0.0.1:{silent_server}/hook",
        DASHBOARD_SMTP_URL=f"smtp://127.0.0.1:{silent_server}",
        DASHBOARD_ALERT_EMAIL_FROM=FROM,
        DASHBOARD_ALERT_EMAIL_TO=TO[0],
    )
    a_broken_connection(app)
    with app.app_context():
        watch()
    [entry] = alert_entries(app)
    assert entry["details"]["channels"] == {
        "webhook": "failed: the webhook did not answer within 0.5 s",
        "email": "failed: the SMTP server did not answer within 0.5 s",
    }


# --- flask alerts test ---------------------------------------------------------------------


def test_the_cli_test_reaches_every_channel(make_app, tmp_path):
    with WebhookReceiver() as hook, SmtpServer(tmp_path) as server:
        app = make_app(DASHBOARD_ALERT_WEBHOOK_URL=hook.url, **email_settings(server))
        result = app.test_cli_runner().invoke(args=["alerts", "test", "--json"])
        [body] = hook.wait_for(1)
        server.wait_for(1)
    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    assert document["ok"] is True
    assert [(i["id"], i["state"]) for i in document["items"]] == [
        ("webhook", "verified"),
        ("email", "verified"),
    ]
    assert (body["kind"], body["status"]) == ("test", "test")
    [entry] = alert_entries(app)
    assert (entry["action"], entry["outcome"]) == ("alert.test", "success")
    assert entry["actor"].startswith("cli:")


def test_the_cli_test_exits_1_when_a_channel_fails(make_app):
    with WebhookReceiver() as hook:
        hook.status = 500
        app = make_app(DASHBOARD_ALERT_WEBHOOK_URL=hook.url)
        result = app.test_cli_runner().invoke(args=["alerts", "test"])
    assert result.exit_code == 1
    assert "FAIL Webhook: the webhook answered HTTP 500" in result.output
    assert hook.PATH not in result.output
    assert alert_entries(app)[0]["outcome"] == "failed"


def test_the_cli_test_exits_3_when_nothing_is_configured(app):
    result = app.test_cli_runner().invoke(args=["alerts", "test", "--json"])
    assert result.exit_code == 3
    document = json.loads(result.output)
    assert document["ok"] is False
    assert {i["state"] for i in document["items"]} == {"cannot_check"}


# --- the button on Connections ---------------------------------------------------------------


def test_the_connections_page_says_which_channels_are_set_up_and_never_their_urls(
    make_app, idp, tmp_path
):
    with WebhookReceiver() as hook, SmtpServer(tmp_path, login=("alerts", PASSWORD)) as server:
        app = make_app(DASHBOARD_ALERT_WEBHOOK_URL=hook.url, **email_settings(server))
        client = signed_in_admin(app, idp)
        page = client.get("/connections").get_data(as_text=True)
        response = post(client, "/alerts/test", htmx=True)
        hook.wait_for(1)
    section = page.split('id="alerts"', 1)[1]
    assert "Configured (<code>DASHBOARD_ALERT_WEBHOOK_URL</code>)" in section
    assert "To ops@example.com, oncall@example.com, from dashboard@example.com" in section
    assert "Send a test alert" in section
    fragment = response.get_data(as_text=True)
    assert response.status_code == 200
    assert fragment.lstrip().startswith('<section class="card alerts" id="alerts"')
    assert "Webhook: Sent." in fragment
    # A server that offers no STARTTLS never gets the password: said as such.
    assert "E-mail: Not delivered." in fragment and "not sent in the clear" in fragment
    for shown in (page, fragment):
        assert hook.PATH not in shown and str(server.port) not in shown
        assert PASSWORD not in shown
    [entry] = alert_entries(app)
    assert (entry["action"], entry["actor"], entry["outcome"]) == (
        "alert.test",
        "ada.admin@example.com",
        "failed",
    )


def test_viewers_cannot_send_a_test_alert_and_a_post_needs_its_token(make_app, idp, viewer_client):
    with WebhookReceiver() as hook:
        app = make_app(DASHBOARD_ALERT_WEBHOOK_URL=hook.url)
        admin = signed_in_admin(app, idp)
        assert admin.post("/alerts/test").status_code == 400  # no CSRF token
        assert hook.bodies() == []
    assert "Send a test alert" not in viewer_client.get("/connections").get_data(as_text=True)
    assert viewer_client.post("/alerts/test").status_code == 403


def test_without_channels_the_page_says_so_and_offers_no_button(admin_client):
    section = admin_client.get("/connections").get_data(as_text=True).split('id="alerts"')[1]
    assert "Not configured" in section
    assert "Send a test alert" not in section
