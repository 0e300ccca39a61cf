"""`flask roles ...`: the Workato role fields in bulk, as CSV (DESIGN.md §6).

`export` writes everyone OneLogin knows with their role fields as last seen; `import` reads
such a file (or only the changes: an empty cell leaves a field, `-` clears it) and applies it
through the same edit as the pages, so every change is checked, confirmed and audited.

Exit codes (the same as every command's):
- `export`: 0.
- `import` without --yes (a preview; nothing is written): 3 when some row would change
  (refused pending the decision: add --yes), whether or not other rows have errors;
  else 1 when some row has an error (nothing to apply, but the file needs fixing);
  else 0 (every row already holds what the file says).
- `import --yes`: 0 when every row was applied or already so; 1 when any row failed or was
  skipped for its errors (the others are applied all the same).
- `import`, either way: 1 when the file as a whole cannot be read (no email column, an
  unknown column, not CSV or not UTF-8) or OneLogin is not connected; 2 for wrong usage.
"""

from __future__ import annotations

import click
from flask.cli import AppGroup

from dashboard.commands import FAILED, OK, REFUSED, actor, finish, json_option
from dashboard.users import edits, role_csv, roles

group = AppGroup("roles", help="Workato role fields in bulk: export and import CSV files.")
SHOWN = 50  # changes listed in a human report; --json has them all (errors are all listed)


@group.command("export")
@json_option
def export_command(as_json):
    """Write everyone the last sync saw in OneLogin, by email, with their role fields as
    last seen, as CSV on standard output. The file previews as no change, so edit it and
    import it, or keep only the rows and cells that change."""
    if not as_json:
        for line in role_csv.export():  # streamed: a large directory is never held whole
            click.echo(line, nl=False)
        return
    # The same rows as the CSV's, without the quoting a spreadsheet needs.
    rows = role_csv.export_rows()
    columns = next(rows)
    users = [dict(zip(columns, (cell or None for cell in cells), strict=True)) for cells in rows]
    finish(OK, {"columns": columns, "users": users}, "", as_json)


@group.command("import")
@click.argument("file", type=click.File("r", encoding="utf-8-sig"))
@click.option("--yes", is_flag=True, help="Apply the rows without errors (without it, preview).")
@json_option
def import_command(file, yes, as_json):
    """Read a CSV file of role fields (FILE, or - for standard input) and show what would
    change and what is wrong, row by row; with --yes, write the rows without errors to
    OneLogin. Columns: email and any of the role fields. In a cell, empty leaves the field
    as it is and - clears it."""
    try:
        text = file.read()
    except UnicodeDecodeError:
        _refused_file("The file is not UTF-8 text: save it as CSV UTF-8.", as_json)
    known = roles.catalog()
    if known.problem and not as_json:
        click.echo(f"Warning: {known.problem}", err=True)
    try:
        preview = role_csv.read(text, known)
    except role_csv.FileRefused as exc:
        _refused_file(str(exc), as_json)
    document = preview.as_json()
    lines = _preview_lines(preview)

    if not yes:
        if preview.changed:
            lines.append("Nothing was written. Run again with --yes to apply the changes.")
            code, message = REFUSED, "needs --yes"
        elif preview.with_errors:
            lines.append("Nothing to apply: fix the rows with errors.")
            code, message = FAILED, "rows have errors"
        else:
            code, message = OK, "nothing to change"
        document |= {"ok": code == OK, "message": message}
        finish(code, document, "\n".join(lines), as_json)

    if preview.to_apply:
        try:
            applied = role_csv.apply(preview, actor(), known)
        except edits.EditRefused as exc:
            message = f"Nothing was written: {exc}"
            finish(FAILED, document | {"ok": False, "message": message}, message, as_json)
    else:  # nothing to write, so nothing to ask OneLogin
        applied = role_csv.Applied(skipped=preview.with_errors)
    document |= {"ok": applied.ok, "applied": applied.as_json()}
    finish(OK if applied.ok else FAILED, document, "\n".join(_applied_lines(applied)), as_json)


def _refused_file(message: str, as_json: bool) -> None:
    finish(FAILED, {"ok": False, "message": message}, f"Cannot import: {message}", as_json)


def _counts(preview: role_csv.Preview) -> str:
    return (
        f"{len(preview.rows)} rows: {len(preview.changed)} to change, "
        f"{len(preview.with_errors)} with errors, {len(preview.unchanged)} unchanged."
    )


def _changes(changes: dict) -> str:
    return "; ".join(f"{name}: {old!r} -> {new!r}" for name, (old, new) in changes.items())


def _error_lines(row: role_csv.Row, label: str) -> list[str]:
    return [f"  {label:<8} line {row.line}  {row.email or '(no email)'}"] + [
        f"  {'':<8}   ! {error}" for error in row.errors
    ]


def _preview_lines(preview: role_csv.Preview) -> list[str]:
    lines = [_counts(preview)]
    changes = preview.changed
    for row in changes[:SHOWN]:
        lines.append(f"  {'change':<8} line {row.line}  {row.email}  {_changes(row.changes)}")
    if len(changes) > SHOWN:
        lines.append(f"  ... and {len(changes) - SHOWN} more changes (--json lists them all).")
    for row in preview.with_errors:  # all of them: each one is for the operator to fix
        lines += _error_lines(row, "error")
    return lines


def _applied_lines(applied: role_csv.Applied) -> list[str]:
    lines = [
        f"{len(applied.applied)} applied, {len(applied.unchanged)} already so, "
        f"{len(applied.failed)} failed, {len(applied.skipped)} skipped for errors."
    ]
    for row in applied.applied[:SHOWN]:
        lines.append(f"  {'applied':<8} line {row.line}  {row.email}  {_changes(row.changes)}")
    if len(applied.applied) > SHOWN:
        lines.append(f"  ... and {len(applied.applied) - SHOWN} more (--json lists them all).")
    for row, error in applied.failed:
        lines.append(f"  {'failed':<8} line {row.line}  {row.email}  {error}")
    for row in applied.skipped:
        lines += _error_lines(row, "skipped")
    if applied.applied:
        lines.append("Saved in OneLogin. Workato gets the changes at the next sync.")
    return lines
