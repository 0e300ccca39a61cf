"""Role fields by CSV: the import previews each row's change and errors, applies the good
rows (comparing with OneLogin as it is then), and the export lists everyone in OneLogin."""

from __future__ import annotations

import html
import re

import pytest

from tests.support.people import person
from tests.support.role_edits import (
    CONFIGURED,
    HEADER,
    JONAS,
    KWAME,
    LIN,
    MAYA,
    MIXED,
    RUI,
    VALID,
    WRITES,
    everyone_in_onelogin,
    onelogin_roles,
    onelogin_writes,
    post,
    previewed_csv,
    role_edits,
    success,
    text_of,
    upload,
)

# --- CSV -----------------------------------------------------------------------------------

NO_USER = (
    "No user with this email in the last sync preview (preview a sync to refresh the list, "
    "or check the address)."
)
WRONG_CASE = (
    "workato_role: “analyst” is not a Workato role: role names are case-sensitive. "
    "Did you mean Analyst?"
)
UNKNOWN = f"workato_role_test: “Developer” is not in {CONFIGURED}. {VALID}"


def preview_rows(body: str) -> list[tuple[str, str, str, str]]:
    """(line, email, change, errors) of each previewed row, as text, in file order (the
    page lists rows with errors first)."""
    table = re.search(r'<table class="entries import-preview">.*?<tbody>(.*?)</tbody>', body, re.S)
    assert table, body
    found = []
    for row in re.findall(r"<tr[^>]*>(.*?)</tr>", table.group(1), re.S):
        cells = [text_of(c) for c in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
        found.append(tuple(cells))
    return sorted(found, key=lambda cells: int(cells[0]))


def section(body: str, title: str) -> list[str]:
    """The items listed under an <h3> of the import result."""
    found = re.search(rf"<h3>{title}</h3><ul[^>]*>(.*?)</ul>", body, re.S)
    return (
        [text_of(item) for item in re.findall(r"<li>(.*?)</li>", found.group(1), re.S)]
        if found
        else []
    )


def test_a_csv_preview_lists_each_rows_change_and_error_and_writes_nothing(
    app, admin_client, world
):
    answer = upload(admin_client, MIXED)
    body = answer.get_data(as_text=True)
    assert answer.status_code == 200, body
    assert "Preview: nothing is written yet" in body
    assert "6 rows: 2 differ from the values as last seen, 1 the same, 3 with errors." in text_of(
        body
    )
    assert preview_rows(body) == [
        ("2", RUI, "workato_role : Developer → becomes Operator", ""),
        ("3", "nobody@example.com", "", NO_USER),
        ("4", KWAME.upper(), "", WRONG_CASE),
        ("5", MAYA, "", UNKNOWN),
        ("6", JONAS, "workato_role_test : Analyst → becomes (cleared)", ""),
        ("7", LIN, "No change", ""),
    ]
    assert "Apply 2 rows (skip 3 with errors)" in body
    assert previewed_csv(body) == MIXED
    assert onelogin_writes(world) == []
    assert role_edits(app) == []


def test_applying_a_csv_applies_the_good_rows_and_lists_the_skipped_ones(app, admin_client, world):
    before = everyone_in_onelogin(world)
    preview = upload(admin_client, MIXED).get_data(as_text=True)
    answer = post(admin_client, "/users/roles/import/apply", htmx=False, csv=previewed_csv(preview))
    body = answer.get_data(as_text=True)
    assert answer.status_code == 200, body
    assert "Imported in part" in body
    assert "2 rows applied in OneLogin, 3 skipped for errors." in text_of(body)
    assert section(body, "Applied") == [f"Line 2: {RUI}", f"Line 6: {JONAS}"]
    assert section(body, r"Skipped \(errors in the file\)") == [
        f"Line 3: nobody@example.com: {NO_USER}",
        f"Line 4: {KWAME.upper()}: {WRONG_CASE}",
        f"Line 5: {MAYA}: {UNKNOWN}",
    ]
    assert section(body, r"Failed \(not changed\)") == []

    after = everyone_in_onelogin(world)
    assert after[RUI] == {**before[RUI], "workato_role": "Operator"}
    assert after[JONAS] == {**before[JONAS], "workato_role_test": None}
    assert {e: after[e] for e in (KWAME, MAYA, LIN)} == {e: before[e] for e in (KWAME, MAYA, LIN)}
    assert role_edits(app) == [
        success(RUI, {"workato_role": ["Developer", "Operator"]}),
        success(JONAS, {"workato_role_test": ["Analyst", None]}),
    ]


def test_an_import_onelogin_refuses_in_part_reports_exactly_the_rows_applied(
    app, admin_client, world
):
    """Rui's write is refused, Maya's change is already in OneLogin since the preview, Kwame's
    goes through: the result says exactly that."""
    text = "\n".join([HEADER, f"{RUI},Operator,,", f"{MAYA},Admin,,", f"{KWAME},,,Analyst"])
    preview = upload(admin_client, text).get_data(as_text=True)
    assert "3 rows: 3 differ from the values as last seen, 0 the same, 0 with errors." in text_of(
        preview
    )
    world.tenant.fail_next(400, path=f"/api/1/users/{world.rui.id}/{WRITES}")
    world.tenant.set_custom_attributes(world.maya.id, {"workato_role": "Admin"})

    answer = post(admin_client, "/users/roles/import/apply", htmx=False, csv=previewed_csv(preview))
    body = answer.get_data(as_text=True)
    assert answer.status_code == 200, body
    assert "Imported in part" in body
    assert "1 row applied in OneLogin, 1 failed, 1 already so." in text_of(body)
    assert section(body, "Applied") == [f"Line 4: {KWAME}"]
    assert section(body, r"Failed \(not changed\)") == [
        f"Line 2: {RUI}: OneLogin API refused the request (400). OneLogin API said: bad request"
    ]
    assert onelogin_roles(world, RUI)["workato_role"] == "Developer"
    assert onelogin_roles(world, MAYA)["workato_role"] == "Admin"
    assert onelogin_roles(world, KWAME)["workato_role_prod"] == "Analyst"
    assert [(e["user"], e["outcome"]) for e in role_edits(app)] == [
        (RUI, "failed"),
        (KWAME, "success"),
    ]
    assert role_edits(app)[1] == success(KWAME, {"workato_role_prod": [None, "Analyst"]})


@pytest.mark.parametrize(
    ("text", "said"),
    [
        (
            "mail,workato_role\nrui.costa@example.com,Operator\n",
            "No email column: the first line must be "
            "email,workato_role,workato_role_test,workato_role_prod.",
        ),
        (
            "email,Workato_Role\nrui.costa@example.com,Operator\n",
            "Unknown column Workato_Role: the columns are email and the role fields "
            "(workato_role, workato_role_test, workato_role_prod).",
        ),
        ("", "The file is empty: the first line must name the columns."),
    ],
)
def test_a_csv_with_a_bad_header_is_refused_with_a_clear_message(
    app, admin_client, world, text, said
):
    answer = upload(admin_client, text)
    body = answer.get_data(as_text=True)
    assert answer.status_code == 400
    problem = re.search(r'<p class="problem" role="alert">([^<]*)</p>', body)
    assert problem, body
    assert html.unescape(problem.group(1)) == said
    assert "import-preview" not in body
    applied = post(admin_client, "/users/roles/import/apply", htmx=False, csv=text)
    assert applied.status_code == 400
    assert onelogin_writes(world) == []
    assert role_edits(app) == []


def test_an_excel_file_with_a_bom_and_crlf_lines_is_read_and_applied(app, admin_client, world):
    text = "\ufeff" + "\r\n".join(["Email,workato_role_prod", f"{KWAME},Operator", ""])
    preview = upload(admin_client, text).get_data(as_text=True)
    assert "1 rows: 1 differ from the values as last seen, 0 the same, 0 with errors." in text_of(
        preview
    )
    answer = post(admin_client, "/users/roles/import/apply", htmx=False, csv=previewed_csv(preview))
    assert "Imported" in answer.get_data(as_text=True)
    assert onelogin_roles(world, KWAME)["workato_role_prod"] == "Operator"
    assert role_edits(app) == [success(KWAME, {"workato_role_prod": [None, "Operator"]})]


def test_the_export_lists_everyone_in_onelogin_with_their_role_fields(app, admin_client, world):
    answer = admin_client.get("/users/roles/export.csv")
    assert answer.status_code == 200
    assert answer.mimetype == "text/csv"
    assert re.fullmatch(
        r'attachment; filename="workato-roles-\d{8}-\d{4}\.csv"',
        answer.headers["Content-Disposition"],
    )
    assert answer.get_data(as_text=True).splitlines() == [
        HEADER,
        f"{JONAS},admin,Analyst,",
        f"{KWAME},,,",
        f"{LIN},Operator,,",
        f"{MAYA},Analyst,Operator,",
        f"{RUI},Developer,,",
    ]


def test_an_exported_file_imports_back_as_no_change(app, admin_client, world):
    """It previews as no change: Jonas's and Rui's rows carry the values OneLogin holds that
    are not Workato roles, so they are errors to fix; applied, Lin's and Maya's are found
    already so in OneLogin (Kwame's, all empty, sets nothing and is not applied at all)."""
    before = everyone_in_onelogin(world)
    exported = admin_client.get("/users/roles/export.csv").get_data(as_text=True)
    body = upload(admin_client, exported).get_data(as_text=True)
    assert "5 rows: 0 differ from the values as last seen, 3 the same, 2 with errors." in text_of(
        body
    )
    assert "becomes" not in body  # no row shows a change
    assert "Apply 2 rows (skip 2 with errors)" in body
    assert onelogin_writes(world) == []

    answer = post(admin_client, "/users/roles/import/apply", htmx=False, csv=previewed_csv(body))
    applied = answer.get_data(as_text=True)
    assert answer.status_code == 200, applied
    assert "0 rows applied in OneLogin, 2 already so, 2 skipped for errors." in text_of(applied)
    assert section(applied, "Applied") == []
    assert onelogin_writes(world) == []
    assert everyone_in_onelogin(world) == before
    assert role_edits(app) == []


def test_a_row_as_last_seen_is_applied_when_onelogin_holds_another_value_since(
    app, admin_client, world
):
    """Maya's row and Lin's both hold the values as last seen, so the preview shows no
    change; since the preview, OneLogin's Maya got another role. Applying compares with
    OneLogin: Maya's row is written back, Lin's (as OneLogin holds it) is already so."""
    text = "\n".join([HEADER, f"{LIN},Operator,,", f"{MAYA},Analyst,Operator,", ""])
    preview = upload(admin_client, text).get_data(as_text=True)
    assert "2 rows: 0 differ from the values as last seen, 2 the same, 0 with errors." in text_of(
        preview
    )
    assert preview_rows(preview) == [("2", LIN, "No change", ""), ("3", MAYA, "No change", "")]
    assert "Apply 2 rows" in preview
    world.tenant.set_custom_attributes(world.maya.id, {"workato_role": "Admin"})

    answer = post(admin_client, "/users/roles/import/apply", htmx=False, csv=previewed_csv(preview))

    body = answer.get_data(as_text=True)
    assert answer.status_code == 200, body
    assert "1 row applied in OneLogin, 1 already so." in text_of(body)
    assert section(body, "Applied") == [f"Line 3: {MAYA}"]
    assert onelogin_roles(world, MAYA) == {
        "workato_role": "Analyst",
        "workato_role_test": "Operator",
        "workato_role_prod": None,
    }
    assert onelogin_roles(world, LIN)["workato_role"] == "Operator"
    assert len(onelogin_writes(world)) == 1  # Maya's only
    assert person(app, MAYA).roles["workato_role"] == "Analyst"
    assert role_edits(app) == [success(MAYA, {"workato_role": ["Admin", "Analyst"]})]


def test_a_spreadsheets_trailing_empty_column_is_ignored(app, admin_client, world):
    """Excel writes `email,workato_role,` and a trailing empty cell on each row: read as the
    columns named. A row with something in that unnamed column is still an error."""
    text = "\r\n".join(
        ["email,workato_role,", f"{RUI},Operator,", f"{KWAME},Admin", f"{MAYA},Admin,Operator", ""]
    )
    preview = upload(admin_client, text).get_data(as_text=True)
    assert "3 rows: 2 differ from the values as last seen, 0 the same, 1 with errors." in text_of(
        preview
    )
    assert preview_rows(preview) == [
        ("2", RUI, "workato_role : Developer → becomes Operator", ""),
        ("3", KWAME, "workato_role : (not set) → becomes Admin", ""),
        ("4", MAYA, "", "3 cells where the first line names 2 columns."),
    ]

    answer = post(admin_client, "/users/roles/import/apply", htmx=False, csv=previewed_csv(preview))
    assert "2 rows applied in OneLogin, 1 skipped for errors." in text_of(
        answer.get_data(as_text=True)
    )
    assert onelogin_roles(world, RUI)["workato_role"] == "Operator"
    assert onelogin_roles(world, KWAME)["workato_role"] == "Admin"
    assert onelogin_roles(world, MAYA)["workato_role"] == "Analyst"
    assert role_edits(app) == [
        success(RUI, {"workato_role": ["Developer", "Operator"]}),
        success(KWAME, {"workato_role": [None, "Admin"]}),
    ]


def test_the_import_page_previews_an_uploaded_file_only(app, admin_client, world):
    """The file's text in a form field (no file chosen) is not read: the admin is asked for
    a file, and nothing is written."""
    answer = post(admin_client, "/users/roles/import", htmx=False, csv=f"{HEADER}\n{RUI},Admin,,")
    body = answer.get_data(as_text=True)
    assert answer.status_code == 400
    problem = re.search(r'<p class="problem" role="alert">([^<]*)</p>', body)
    assert problem, body
    assert html.unescape(problem.group(1)) == "Choose a CSV file to preview."
    assert "import-preview" not in body
    assert onelogin_writes(world) == []
    assert role_edits(app) == []
