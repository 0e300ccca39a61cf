"""`flask connections ...`: secrets from files or standard input, JSON, exit codes."""

from __future__ import annotations

import json

from dashboard.connections import service
from tests.conftest import audit_rows
from tests.support.scim_server import ScimServer

TOKEN = "cli-scim-token-9f8e7d6c5b"


def test_set_scim_reads_the_token_from_standard_input(app):
    result = app.test_cli_runner().invoke(
        args=[
            "connections",
            "set-scim",
            "--base-url",
            "https://w.example/scim/v2",
            "--token-file",
            "-",
        ],
        input=TOKEN + "\n",
    )
    assert result.exit_code == 0, result.output
    assert "Saved the Workato SCIM API connection" in result.output
    assert TOKEN not in result.output
    with app.app_context():
        assert service.secret_of(service.get("scim")) == TOKEN
    assert audit_rows(app)[-1]["actor"].startswith("cli:")


def test_set_onelogin_reads_the_secret_from_a_file(app, tmp_path):
    secret_file = tmp_path / "secret"
    secret_file.write_text("s3cret-value-from-file\n")
    result = app.test_cli_runner().invoke(
        args=[
            "connections",
            "set-onelogin",
            "--base-url",
            "https://acme.onelogin.example",
            "--client-id",
            "abc",
            "--client-secret-file",
            str(secret_file),
            "--app-id",
            "77",
            "--json",
        ]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {
        "ok": True,
        "connection": "onelogin",
        "base_url": "https://acme.onelogin.example",
    }


def test_a_bad_base_url_exits_1_with_the_reason(app):
    result = app.test_cli_runner().invoke(
        args=["connections", "set-scim", "--base-url", "http://w.example", "--token-file", "-"],
        input=TOKEN,
    )
    assert result.exit_code == 1
    assert "plain http" in result.output


def test_an_empty_secret_file_is_wrong_usage(app):
    result = app.test_cli_runner().invoke(
        args=["connections", "set-scim", "--base-url", "https://w.example", "--token-file", "-"],
        input="\n",
    )
    assert result.exit_code == 2
    assert "the file is empty" in result.output


def test_the_secret_is_never_an_argument(app):
    result = app.test_cli_runner().invoke(
        args=["connections", "set-scim", "--base-url", "https://w.example", "--token", TOKEN]
    )
    assert result.exit_code == 2


def test_test_with_nothing_configured_lists_every_connection_as_cannot_check(app):
    result = app.test_cli_runner().invoke(args=["connections", "test", "--json"])
    document = json.loads(result.output)
    assert result.exit_code == 0
    assert document["ok"] is True
    assert [i["state"] for i in document["items"]] == ["cannot_check"] * 3
    assert {i["id"] for i in document["items"]} == {"onelogin", "scim", "workato_api"}
    assert set(document["items"][0]) == {"id", "title", "state", "message", "checked_at"}


def test_rotate_key_reports_how_many_secrets_it_re_encrypted(app):
    with app.app_context():
        service.save("scim", actor="t", base_url="https://w.example/v2", secret=TOKEN)
    result = app.test_cli_runner().invoke(args=["connections", "rotate-key", "--json"])
    assert result.exit_code == 0
    assert json.loads(result.output) == {"ok": True, "secrets": 1}


def test_test_exits_1_naming_the_connection_that_fails(app):
    with app.app_context():
        service.save("scim", actor="t", base_url="http://127.0.0.1:9/v2", secret=TOKEN)
    result = app.test_cli_runner().invoke(args=["connections", "test", "--json"])
    assert result.exit_code == 1
    items = {i["id"]: i for i in json.loads(result.output)["items"]}
    assert items["scim"]["state"] == "failing"
    assert "Cannot connect to Workato SCIM API at 127.0.0.1" in items["scim"]["message"]
    assert items["onelogin"]["state"] == "cannot_check"


def test_test_exits_0_when_every_configured_connection_works(app):
    with ScimServer(token=TOKEN) as server, app.app_context():
        service.save("scim", actor="t", base_url=server.base_url, secret=TOKEN)
        result = app.test_cli_runner().invoke(args=["connections", "test"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("ok   Workato SCIM API: Connected")


def test_a_tls_failure_is_named_as_such(app):
    """https spoken to a server that only speaks plain http: the TLS handshake fails."""
    with ScimServer(token=TOKEN) as server, app.app_context():
        url = server.base_url.replace("http://", "https://")
        service.save("scim", actor="t", base_url=url, secret=TOKEN)
        check = service.try_connection("scim", "t")
    assert check.problem_kind == "tls"
    assert "The TLS connection to Workato SCIM API at 127.0.0.1 failed" in check.message


def test_a_name_that_does_not_resolve_is_named_as_such(app):
    with app.app_context():
        service.save(
            "onelogin",
            actor="t",
            base_url="https://acme.onelogin.example",
            client_id="c",
            app_id=1,
            secret=TOKEN,
        )
        check = service.try_connection("onelogin", "t")
    assert check.problem_kind == "connect"
    assert "the name does not resolve or the connection is refused" in check.message
