"""`flask connections ...`: secrets from files or standard input, JSON, exit codes."""

from __future__ import annotations

import json

from dashboard.connections import service
from tests.conftest import audit_rows

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
