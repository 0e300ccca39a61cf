"""`flask roles export|import` as an operator scripts it: what is printed, the exit code
(DESIGN.md §6: 0 fine, 1 failed, 3 refused pending --yes), what OneLogin holds afterwards,
and the audit trail.

OneLogin is the simulator and Workato scim2-server, both served by tests/support/sync_world;
the people table is filled by a sync preview, as an operator's would be.
"""

from __future__ import annotations

import csv
import io
import json

import pytest
from sqlalchemy import select

from dashboard.audit.models import AuditEntry
from dashboard.connections import service as connections
from dashboard.connections.models import ONELOGIN
from dashboard.extensions import db
from dashboard.sync import service
from tests.support.sync_world import World

OPERATOR = "ops.lead@example.com"
ADA = "ada.lovelace@example.com"
BOB = "bob.stone@example.com"
CARA = "cara.field@example.com"
OWNER = "workspace.owner@example.com"  # in Workato only: OneLogin does not know them
HEADER = "email,workato_role,workato_role_test,workato_role_prod"
UNKNOWN_USER = "No user with this email in the last sync preview"


@pytest.fixture
def app(make_app):
    return make_app(DASHBOARD_SYNC_RATE=0)


@pytest.fixture
def world(app):
    """Ada, Bob and Cara have the Workato app; the owner is in Workato only."""
    with World.small(app) as world:
        world.ada = world.person(
            "Ada", "Lovelace", workato_role="Analyst", workato_role_test="Operator"
        )
        world.bob = world.person("Bob", "Stone", workato_role="Admin")
        world.cara = world.person("Cara", "Field", workato_role="Operator")
        world.add_workato_user(OWNER, workato_role="Admin")
        with app.app_context():
            service.make_plan(OPERATOR)
        yield world


def roles(app, *args: str, input: str | None = None):
    return app.test_cli_runner().invoke(args=["roles", *args], input=input)


def import_file(app, tmp_path, text: str, *args: str):
    path = tmp_path / "roles.csv"
    path.write_text(text, encoding="utf-8")
    return roles(app, "import", str(path), *args)


def onelogin_state(world: World) -> dict[int, tuple[dict, str]]:
    """Each OneLogin user's custom attributes and when OneLogin last changed them."""
    return {u.id: (dict(u.custom_attributes), u.updated_at) for u in world.tenant.users.values()}


def attributes(world: World, user) -> dict:
    return dict(world.tenant.users[user.id].custom_attributes)


def role_edits(app) -> list[AuditEntry]:
    with app.app_context():
        query = select(AuditEntry).where(AuditEntry.action == "roles.edit")
        entries = list(db.session.scalars(query.order_by(AuditEntry.id)))
        for entry in entries:
            db.session.expunge(entry)
        return entries


# --- export ------------------------------------------------------------------------------


def test_export_lists_everyone_onelogin_knows_with_their_role_fields(app, world):
    result = roles(app, "export")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        HEADER,
        f"{ADA},Analyst,Operator,",
        f"{BOB},Admin,,",
        f"{CARA},Operator,,",
    ]


def test_export_json_is_one_document_with_the_columns_and_every_user(app, world):
    result = roles(app, "export", "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["columns"] == HEADER.split(",")
    fields = HEADER.split(",")
    assert document["users"] == [
        dict(zip(fields, [ADA, "Analyst", "Operator", None], strict=True)),
        dict(zip(fields, [BOB, "Admin", None, None], strict=True)),
        dict(zip(fields, [CARA, "Operator", None, None], strict=True)),
    ]


def test_an_exported_file_imports_back_as_no_change(app, world, tmp_path):
    exported = roles(app, "export").stdout
    before = onelogin_state(world)

    preview = import_file(app, tmp_path, exported)
    assert preview.exit_code == 0, preview.output
    assert "3 rows: 0 to change, 0 with errors, 3 unchanged." in preview.output

    # Applied anyway, each row is compared with OneLogin, which already holds it.
    applied = import_file(app, tmp_path, exported, "--yes", "--json")
    assert applied.exit_code == 0, applied.output
    document = json.loads(applied.stdout)
    assert (document["applied"]["applied"], document["applied"]["unchanged"]) == ([], [2, 3, 4])
    assert onelogin_state(world) == before
    assert role_edits(app) == []


def test_export_quotes_cells_a_spreadsheet_would_run_and_json_has_them_as_they_are(app, world):
    """Values OneLogin holds that a spreadsheet would run as a formula ("=", "+", "@", and
    "-" followed by more) get a leading quote in the CSV; --json carries them unquoted."""
    world.tenant.set_custom_attributes(
        world.ada.id, {"workato_role_test": "-2+3", "workato_role_prod": "=1+1"}
    )
    world.tenant.set_custom_attributes(world.bob.id, {"workato_role_test": "@SUM(A1)"})
    world.tenant.set_custom_attributes(world.cara.id, {"workato_role_prod": "+Admin"})
    with app.app_context():
        service.make_plan(OPERATOR)

    exported = roles(app, "export")
    assert exported.exit_code == 0, exported.output
    assert exported.stdout.splitlines() == [
        HEADER,
        f"{ADA},Analyst,'-2+3,'=1+1",
        f"{BOB},Admin,'@SUM(A1),",
        f"{CARA},Operator,,'+Admin",
    ]

    as_json = roles(app, "export", "--json")
    assert as_json.exit_code == 0, as_json.output
    users = {u["email"]: u for u in json.loads(as_json.stdout)["users"]}
    assert (users[ADA]["workato_role_test"], users[ADA]["workato_role_prod"]) == ("-2+3", "=1+1")
    assert users[BOB]["workato_role_test"] == "@SUM(A1)"
    assert users[CARA]["workato_role_prod"] == "+Admin"


# --- import: the preview -----------------------------------------------------------------

MIXED = "\n".join(
    [
        HEADER,
        f"{ADA},Admin,,",  # line 2: a change
        "nobody@example.com,Admin,,",  # line 3: unknown user
        f"{BOB},Developer,,",  # line 4: unknown role
        f"{CARA.upper()},,admin,",  # line 5: wrong case (the email's case does not matter)
        f"{BOB.upper()},,,Operator",  # line 6: Bob again (ambiguous: refused)
        "",
    ]
)


def test_the_preview_lists_changes_and_errors_and_writes_nothing(app, world, tmp_path):
    before = onelogin_state(world)

    result = import_file(app, tmp_path, MIXED)

    assert result.exit_code == 3, result.output
    out = result.output
    assert "5 rows: 1 to change, 4 with errors, 0 unchanged." in out
    assert f"change   line 2  {ADA}  workato_role: 'Analyst' -> 'Admin'" in out
    assert "error    line 3  nobody@example.com" in out
    assert UNKNOWN_USER in out
    assert f"error    line 4  {BOB}" in out
    assert "“Developer” is not in the configured roles" in out
    assert "Valid roles: Admin, Analyst, Operator." in out
    assert "line 5" in out and "Did you mean Admin?" in out
    assert "The same user as line 4." in out  # line 6: one row per user
    assert "Run again with --yes" in out
    assert onelogin_state(world) == before
    assert role_edits(app) == []


def test_a_preview_with_only_errors_fails_and_one_with_nothing_to_do_is_fine(app, world, tmp_path):
    only_errors = import_file(app, tmp_path, f"{HEADER}\nnobody@example.com,Admin,,\n")
    assert only_errors.exit_code == 1, only_errors.output
    assert "Nothing to apply: fix the rows with errors." in only_errors.output

    as_it_is = import_file(app, tmp_path, f"email,workato_role\n{BOB},Admin\n")
    assert as_it_is.exit_code == 0, as_it_is.output


# --- import --yes --------------------------------------------------------------------------


def test_yes_applies_the_good_rows_and_reports_the_bad_ones_by_line(app, world, tmp_path):
    text = "\n".join(
        [
            HEADER,
            f"{ADA},Admin,,Analyst",  # line 2
            "nobody@example.com,Admin,,",  # line 3
            f"{BOB},,Operator,",  # line 4
            f"{CARA},admin,,",  # line 5
            "",
        ]
    )

    result = import_file(app, tmp_path, text, "--yes")

    assert result.exit_code == 1, result.output
    out = result.output
    assert "2 applied, 0 already so, 0 failed, 2 skipped for errors." in out
    assert f"applied  line 2  {ADA}" in out
    assert f"applied  line 4  {BOB}" in out
    assert "skipped  line 3  nobody@example.com" in out
    assert f"skipped  line 5  {CARA}" in out and "Did you mean Admin?" in out
    assert attributes(world, world.ada) == {
        "workato_role": "Admin",
        "workato_role_test": "Operator",
        "workato_role_prod": "Analyst",
    }
    assert attributes(world, world.bob)["workato_role_test"] == "Operator"
    assert attributes(world, world.cara)["workato_role"] == "Operator"  # refused: unchanged


def test_every_applied_change_is_audited_with_the_old_and_new_value(app, world, tmp_path):
    text = f"{HEADER}\n{ADA},Admin,,Analyst\n{BOB},-,Operator,\n"

    result = import_file(app, tmp_path, text, "--yes")

    assert result.exit_code == 0, result.output
    entries = {e.target_user: e for e in role_edits(app)}
    assert set(entries) == {ADA, BOB}
    assert all(e.outcome == "success" and e.actor.startswith("cli:") for e in entries.values())
    assert entries[ADA].details["changes"] == {
        "workato_role": ["Analyst", "Admin"],
        "workato_role_prod": [None, "Analyst"],
    }
    assert entries[BOB].details["changes"] == {
        "workato_role": ["Admin", None],
        "workato_role_test": [None, "Operator"],
    }


def test_a_dash_clears_a_field_and_an_empty_cell_leaves_it(app, world, tmp_path):
    result = import_file(app, tmp_path, f"{HEADER}\n{ADA},,-,\n", "--yes")

    assert result.exit_code == 0, result.output
    assert "workato_role_test: 'Operator' -> None" in result.output
    held = attributes(world, world.ada)
    assert held["workato_role"] == "Analyst"
    assert not held.get("workato_role_test")
    # and the next export says so
    assert f"{ADA},Analyst,," in roles(app, "export").stdout.splitlines()


def test_a_row_as_last_seen_is_applied_with_yes_when_onelogin_holds_another_value(
    app, world, tmp_path
):
    """Bob's row holds his role as last seen: the preview has nothing to change (exit 0),
    but OneLogin got another value since, and --yes writes the row's value back."""
    world.tenant.set_custom_attributes(world.bob.id, {"workato_role": "Operator"})
    text = f"email,workato_role\n{BOB},Admin\n"

    preview = import_file(app, tmp_path, text)
    assert preview.exit_code == 0, preview.output
    assert "1 rows: 0 to change, 0 with errors, 1 unchanged." in preview.output
    assert attributes(world, world.bob)["workato_role"] == "Operator"
    assert role_edits(app) == []

    applied = import_file(app, tmp_path, text, "--yes")
    assert applied.exit_code == 0, applied.output
    assert "1 applied, 0 already so, 0 failed, 0 skipped for errors." in applied.output
    assert f"applied  line 2  {BOB}  workato_role: 'Operator' -> 'Admin'" in applied.output
    assert attributes(world, world.bob)["workato_role"] == "Admin"
    [entry] = role_edits(app)
    assert (entry.outcome, entry.target_user) == ("success", BOB)
    assert entry.details["changes"] == {"workato_role": ["Operator", "Admin"]}


def test_a_spreadsheets_trailing_empty_column_is_ignored(app, world, tmp_path):
    text = f"email,workato_role,workato_role_prod,\r\n{ADA},Admin,,\r\n{CARA},,Analyst,\r\n"

    result = import_file(app, tmp_path, text, "--yes")

    assert result.exit_code == 0, result.output
    assert "2 applied, 0 already so, 0 failed, 0 skipped for errors." in result.output
    assert attributes(world, world.ada)["workato_role"] == "Admin"
    assert attributes(world, world.cara)["workato_role_prod"] == "Analyst"


def test_standard_input_with_a_byte_order_mark(app, world):
    result = roles(app, "import", "-", "--yes", input=f"\ufeff{HEADER}\n{BOB},Operator,,\n")
    assert result.exit_code == 0, result.output
    assert attributes(world, world.bob)["workato_role"] == "Operator"


def test_an_unknown_column_refuses_the_whole_file(app, world, tmp_path):
    before = onelogin_state(world)
    result = import_file(app, tmp_path, f"email,workato_role,team\n{ADA},Admin,Blue\n", "--yes")
    assert result.exit_code == 1, result.output
    assert "Cannot import: Unknown column team: the columns are email and the role fields" in (
        result.output
    )
    assert onelogin_state(world) == before


def test_onelogin_not_connected_refuses_with_its_message(app, world, tmp_path):
    with app.app_context():
        connections.clear_secret(ONELOGIN, OPERATOR)
    result = import_file(app, tmp_path, f"{HEADER}\n{ADA},Admin,,\n{BOB},,Analyst,\n", "--yes")
    assert result.exit_code == 1, result.output
    assert "Nothing was written:" in result.output
    assert attributes(world, world.ada)["workato_role"] == "Analyst"
    assert attributes(world, world.bob).get("workato_role_test") is None
    # Audited as refused, for the two users, with the reason printed.
    [entry] = role_edits(app)
    assert (entry.outcome, entry.target_user) == ("refused", None)
    assert entry.actor.startswith("cli:")
    assert entry.details == {"error": entry.details["error"], "users": 2}
    assert f"Nothing was written: {entry.details['error']}" in result.output


# --- --json ------------------------------------------------------------------------------


def test_import_json_is_one_document_with_the_documented_keys(app, world, tmp_path):
    preview = import_file(app, tmp_path, MIXED, "--json")
    assert preview.exit_code == 3
    document = json.loads(preview.stdout)
    assert {"rows", "changes", "errors", "unchanged", "items", "ok"} <= set(document)
    assert (document["rows"], document["changes"], document["errors"]) == (5, 1, 4)
    assert document["ok"] is False and "applied" not in document
    by_line = {item["line"]: item for item in document["items"]}
    assert by_line[2]["changes"] == {"workato_role": ["Analyst", "Admin"]}
    assert by_line[4]["errors"] and by_line[4]["email"] == BOB

    applied = import_file(app, tmp_path, MIXED, "--yes", "--json")
    assert applied.exit_code == 1
    document = json.loads(applied.stdout)
    assert document["ok"] is False
    assert document["applied"]["applied"] == [2]
    assert document["applied"]["failed"] == []
    assert [s["line"] for s in document["applied"]["skipped"]] == [3, 4, 5, 6]

    refused = import_file(app, tmp_path, "name,role\nx,y\n", "--json")
    assert refused.exit_code == 1
    assert json.loads(refused.stdout)["ok"] is False


def test_export_csv_reads_back_as_csv(app, world):
    rows = list(csv.DictReader(io.StringIO(roles(app, "export").stdout)))
    assert [r["email"] for r in rows] == [ADA, BOB, CARA]


def test_help_says_what_each_command_does(app):
    for command in ("export", "import"):
        result = roles(app, command, "--help")
        assert result.exit_code == 0
        assert "--json" in result.output
    assert "--yes" in roles(app, "import", "--help").output
    assert roles(app, "import").exit_code == 2  # FILE is required
