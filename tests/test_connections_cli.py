"""`flask connections ...`: secrets from files or standard input, JSON, exit codes."""

from __future__ import annotations

import json

from dashboard.connections import clients, service
from dashboard.sync import service as sync
from dashboard.sync.models import QUEUED
from tests.support.rows import audit_rows
from tests.support.scim_server import ScimServer
from tests.support.sync_world import World

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
        assert clients.secret_of(service.get("scim")) == TOKEN
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


# --- the incident switch: disable-scim, enable-scim ------------------------------------

OPERATOR = "ops.lead@example.com"


def connections_cli(app, *args: str):
    return app.test_cli_runner().invoke(args=["connections", *args])


def connections_json(app, *args: str) -> tuple[int, dict]:
    result = connections_cli(app, *args, "--json")
    return result.exit_code, json.loads(result.stdout)  # one document, nothing else


def with_scim(app) -> None:
    with app.app_context():
        service.save("scim", actor="t", base_url="https://w.example/scim/v2", secret=TOKEN)


def scim_state(app) -> tuple[bool, bool]:
    """(enabled, a token is stored)"""
    with app.app_context():
        connection = service.get("scim")
        return connection.enabled, connection.has_secret


def scim_actions(app) -> list[str]:
    return [r["action"] for r in audit_rows(app) if r["action"].startswith("connection.scim")]


def a_queued_run(app) -> int:
    """A run applied on the Sync page that no worker has taken yet: the active run."""
    with app.app_context():
        run, _ = sync.make_plan(OPERATOR)
        return sync.apply(run.id, OPERATOR, start=False).id


def test_disable_scim_without_yes_says_what_it_would_do_and_changes_nothing(app):
    with_scim(app)
    result = connections_cli(app, "disable-scim", "--clear-token")
    assert result.exit_code == 3, result.output
    assert "Would disable SCIM" in result.output
    assert "No run is active." in result.output
    assert "Would clear the stored SCIM token." in result.output
    assert "Run again with --yes" in result.output
    assert scim_state(app) == (True, True)
    assert scim_actions(app) == []


def test_disable_scim_without_yes_names_the_run_it_would_stop(make_app):
    app = make_app(DASHBOARD_SYNC_EXECUTOR="worker")
    with World.small(app) as world:
        world.person("Ada", "Lovelace", workato_role="Admin")
        run_id = a_queued_run(app)
        result = connections_cli(app, "disable-scim")
        code, document = connections_json(app, "disable-scim")
    assert result.exit_code == 3
    assert f"Run {run_id} (queued, started by {OPERATOR}) stops within a second" in (result.output)
    assert "Would keep the stored SCIM token." in result.output
    assert code == 3
    assert document == {
        "ok": False,
        "message": "needs --yes",
        "enabled": True,
        "clear_token": False,
        "active_run": run_id,
    }
    assert scim_state(app) == (True, True)
    with app.app_context():
        assert sync.current_active().status == QUEUED


def test_disable_scim_with_yes_disables_it_and_names_the_run_that_stops(make_app):
    app = make_app(DASHBOARD_SYNC_EXECUTOR="worker")
    with World.small(app) as world:
        world.person("Ada", "Lovelace", workato_role="Admin")
        run_id = a_queued_run(app)
        code, document = connections_json(app, "disable-scim", "--yes")
    assert code == 0
    assert document == {
        "ok": True,
        "enabled": False,
        "changed": True,
        "token": "kept",
        "active_run": run_id,
    }
    assert scim_state(app) == (False, True)
    [row] = [r for r in audit_rows(app) if r["action"] == "connection.scim_disabled"]
    assert row["actor"].startswith("cli:") and row["details"] == {"token": "kept"}


def test_disable_scim_with_clear_token_leaves_no_secret(app):
    with_scim(app)
    result = connections_cli(app, "disable-scim", "--clear-token", "--yes")
    assert result.exit_code == 0, result.output
    assert "SCIM is disabled: the dashboard sends no more SCIM writes." in result.output
    assert "The SCIM token is cleared." in result.output
    assert "untick Enable provisioning" in result.output
    assert TOKEN not in result.output
    assert scim_state(app) == (False, False)
    [row] = [r for r in audit_rows(app) if r["action"] == "connection.scim_disabled"]
    assert row["details"] == {"token": "cleared"}
    assert TOKEN not in json.dumps(audit_rows(app))


def test_disable_scim_when_already_disabled_says_so_and_changes_nothing(app):
    with_scim(app)
    assert connections_cli(app, "disable-scim", "--yes").exit_code == 0
    result = connections_cli(app, "disable-scim", "--yes")
    code, document = connections_json(app, "disable-scim")  # nothing to decide: no --yes needed
    assert result.exit_code == 0, result.output
    assert "SCIM is already disabled (by cli:" in result.output
    assert "Nothing changed." in result.output
    assert code == 0
    assert document == {
        "ok": True,
        "enabled": False,
        "changed": False,
        "token": "kept",
        "active_run": None,
    }
    assert scim_actions(app) == ["connection.scim_disabled"]  # audited once, by who did it


def test_disable_scim_when_already_disabled_still_clears_the_token_when_asked(app):
    with_scim(app)
    assert connections_cli(app, "disable-scim", "--yes").exit_code == 0
    assert connections_cli(app, "disable-scim", "--clear-token").exit_code == 3
    assert scim_state(app) == (False, True)
    code, document = connections_json(app, "disable-scim", "--clear-token", "--yes")
    assert code == 0
    assert document["token"] == "cleared" and document["changed"] is True
    assert scim_state(app) == (False, False)
    assert [r["action"] for r in audit_rows(app)][-1] == "connection.secret_cleared"


def test_disable_and_enable_scim_without_a_connection_exit_1(app):
    for command in ("disable-scim", "enable-scim"):
        result = connections_cli(app, command, "--yes" if command == "disable-scim" else "--json")
        assert result.exit_code == 1, command
        assert "The Workato SCIM connection is not configured" in result.output, command
    assert scim_actions(app) == []


def test_enable_scim_re_enables_after_disable(app):
    with_scim(app)
    assert connections_cli(app, "disable-scim", "--yes").exit_code == 0
    code, document = connections_json(app, "enable-scim")
    assert code == 0
    assert document == {"ok": True, "enabled": True, "changed": True}
    assert scim_state(app) == (True, True)
    assert scim_actions(app) == ["connection.scim_disabled", "connection.scim_enabled"]
    assert audit_rows(app)[-1]["actor"].startswith("cli:")


def test_enable_scim_when_not_disabled_says_so_and_changes_nothing(app):
    with_scim(app)
    result = connections_cli(app, "enable-scim")
    assert result.exit_code == 0
    assert "SCIM is not disabled: nothing changed." in result.output
    assert scim_actions(app) == []
