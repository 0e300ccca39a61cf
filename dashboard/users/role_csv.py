"""Role fields in bulk as CSV: `email,workato_role,workato_role_test,workato_role_prod` (plus a
column per extra role field). Export writes everyone OneLogin knows; import reads a file into a
preview (each row's change and each row's error, before anything is written), then applies
the rows without errors through the same edit as the pages, reporting each row's fate.

In a cell, empty leaves the field as it is and `-` clears it, so a file may carry only the
changes, and an exported file previews as no change (against the values as last seen).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass, field

from sqlalchemy import func, select

from dashboard.extensions import db
from dashboard.person import Person
from dashboard.text import spreadsheet_safe, spreadsheet_unsafe
from dashboard.users import edits, service
from dashboard.users.roles import CLEAR, Catalog, RoleRefused

EMAIL = "email"
MAX_ROWS = 20000
EXPORT_PAGE = 300  # people read at a time by an export, each page in its own transaction


class FileRefused(ValueError):
    """The file as a whole cannot be read; the message says what to fix."""


@dataclass
class Row:
    line: int  # as a spreadsheet numbers it: the header is line 1
    email: str
    person_id: int | None = None
    values: dict[str, str | None] = field(default_factory=dict)  # what the row sets
    changes: dict[str, list[str | None]] = field(default_factory=dict)  # [last seen, new]
    errors: list[str] = field(default_factory=list)
    refused: dict[str, tuple[str, int]] = field(default_factory=dict)  # field -> (cell, error)

    def as_json(self) -> dict:
        return {
            "line": self.line,
            "email": self.email,
            "changes": self.changes,
            "errors": self.errors,
        }


@dataclass
class Preview:
    columns: list[str]
    rows: list[Row]

    @property
    def to_apply(self) -> list[Row]:
        """Every row without errors that sets something: also those that match the last
        seen values, as OneLogin may hold others since (the edit compares with OneLogin)."""
        return [r for r in self.rows if not r.errors and r.values]

    @property
    def changed(self) -> list[Row]:
        """Rows that differ from the values as last seen."""
        return [r for r in self.rows if not r.errors and r.changes]

    @property
    def with_errors(self) -> list[Row]:
        return [r for r in self.rows if r.errors]

    @property
    def unchanged(self) -> list[Row]:
        return [r for r in self.rows if not r.errors and not r.changes]

    @property
    def setting_nothing(self) -> list[Row]:
        """Rows without errors whose cells are all empty: nothing to apply."""
        return [r for r in self.rows if not r.errors and not r.values]

    def as_json(self) -> dict:
        return {
            "rows": len(self.rows),
            "changes": len(self.changed),
            "errors": len(self.with_errors),
            "unchanged": len(self.unchanged),
            "items": [r.as_json() for r in self.rows],
        }


@dataclass
class Applied:
    """What applying a preview did, row by row."""

    applied: list[Row] = field(default_factory=list)
    failed: list[tuple[Row, str]] = field(default_factory=list)
    skipped: list[Row] = field(default_factory=list)  # rows the preview found errors in
    unchanged: list[Row] = field(default_factory=list)  # OneLogin already held the values

    @property
    def ok(self) -> bool:
        return not self.failed and not self.skipped

    def as_json(self) -> dict:
        return {
            "ok": self.ok,
            "applied": [r.line for r in self.applied],
            "unchanged": [r.line for r in self.unchanged],
            "failed": [{"line": r.line, "email": r.email, "error": e} for r, e in self.failed],
            "skipped": [
                {"line": r.line, "email": r.email, "errors": r.errors} for r in self.skipped
            ],
        }


def read(text: str, known: Catalog) -> Preview:
    """The file's rows against the people table and the known roles. Raises FileRefused
    when the header or the file's shape is wrong."""
    fields = edits.role_fields()
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff")))  # Excel writes a BOM
    try:
        header = [h.strip() for h in next(reader)]
        while header and not header[-1]:
            header.pop()  # a spreadsheet's trailing empty columns
    except StopIteration:
        raise FileRefused("The file is empty: the first line must name the columns.") from None
    except csv.Error as exc:
        raise FileRefused(f"The file is not CSV: {exc}.") from None
    columns = [h.casefold() for h in header]
    if EMAIL not in columns:
        raise FileRefused(f"No email column: the first line must be {','.join([EMAIL, *fields])}.")
    unknown = [h for h in header if h.casefold() != EMAIL and h not in fields]
    if unknown:
        raise FileRefused(
            f"Unknown column{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}: "
            f"the columns are {EMAIL} and the role fields ({', '.join(fields)})."
        )
    if len(set(columns)) < len(columns):
        raise FileRefused("A column is named twice in the first line.")
    at = columns.index(EMAIL)
    role_columns = [(i, h) for i, h in enumerate(header) if i != at]

    rows: list[Row] = []
    try:
        for number, cells in enumerate(reader, start=2):
            if not any(c.strip() for c in cells):
                continue  # blank lines, as spreadsheets leave at the end
            if len(rows) >= MAX_ROWS:
                raise FileRefused(f"More than {MAX_ROWS} rows: split the file.")
            rows.append(_row(number, cells, len(header), at, role_columns, known))
    except csv.Error as exc:
        raise FileRefused(f"Line {reader.line_num} is not valid CSV: {exc}.") from None
    _match(rows)
    return Preview([h for _, h in role_columns], rows)


def _row(number, cells, width, at, role_columns, known: Catalog) -> Row:
    cells = [spreadsheet_unsafe(c) for c in cells]
    while len(cells) > width and not cells[-1].strip():
        cells.pop()  # the trailing empty cells of those columns
    row = Row(number, cells[at].strip() if at < len(cells) else "")
    if len(cells) != width:
        row.errors.append(f"{len(cells)} cells where the first line names {width} columns.")
        return row
    if not row.email:
        row.errors.append("No email.")
    for index, name in role_columns:
        cell = cells[index].strip()
        if not cell:
            continue  # left as it is
        if cell == CLEAR:
            row.values[name] = None
            continue
        try:
            row.values[name] = known.check(name, cell)
        except RoleRefused as refused:
            row.refused[name] = (cell, len(row.errors))
            row.errors.append(f"{name}: {refused}")
    return row


def _match(rows: list[Row]) -> None:
    """Find each row's person by email (ignoring case), and what would change for them."""
    wanted = {r.email.casefold() for r in rows if r.email}
    people: dict[str, Person] = {}
    listed = sorted(wanted)
    for start in range(0, len(listed), 500):
        chunk = listed[start : start + 500]
        # By email, or by userName for the people export lists without one.
        query = select(Person).where(func.lower(Person.email).in_(chunk) | Person.key.in_(chunk))
        for person in db.session.scalars(query):
            people.setdefault((person.email or person.key).casefold(), person)
    first_line: dict[int, int] = {}
    for row in rows:
        if not row.email:
            continue
        person = people.get(row.email.casefold())
        if person is None:
            row.errors.append(
                "No user with this email in the last sync preview (preview a sync to refresh "
                "the list, or check the address)."
            )
            continue
        if person.onelogin_id is None:
            row.errors.append("Not a OneLogin user: role fields live on OneLogin users.")
            continue
        if person.id in first_line:
            row.errors.append(f"The same user as line {first_line[person.id]}.")
            continue
        first_line[person.id] = row.line
        row.person_id = person.id
        held = person.roles or {}
        for name, (cell, at) in row.refused.items():
            if (held.get(name) or "") == cell:  # as exported: OneLogin's own wrong value
                row.errors[at] = (
                    f"{name}: OneLogin holds “{cell}”, which is not a Workato role: write a "
                    "valid role, or leave the cell empty to keep it as it is."
                )
        if row.errors:
            continue
        row.changes = {
            name: [held.get(name) or None, new]
            for name, new in row.values.items()
            if (held.get(name) or None) != new
        }


def apply(preview: Preview, actor: str, known: Catalog) -> Applied:
    """Write the rows without errors (each confirmed by OneLogin); rows with errors are
    skipped and reported. Raises edits.EditRefused when OneLogin is not connected."""
    result = Applied(skipped=preview.with_errors)
    rows = {r.person_id: r for r in preview.to_apply}
    people = {p.id: p for p in service.get_many(list(rows))}
    for person_id, row in rows.items():
        if person_id not in people:
            result.failed.append((row, "The user left the list since the preview."))
    chosen = [people[i] for i in rows if i in people]
    values = {i: rows[i].values for i in rows if i in people}
    for outcome in edits.edit(chosen, values, actor, known=known):
        row = rows[outcome.person_id]
        if outcome.ok and not outcome.changes:
            result.unchanged.append(row)
        elif outcome.ok:
            row.changes = outcome.changes  # as OneLogin held them, not as last seen
            result.applied.append(row)
        else:
            result.failed.append((row, outcome.message))
    result.failed.sort(key=lambda pair: pair[0].line)
    result.applied.sort(key=lambda r: r.line)
    return result


def export() -> Iterator[str]:
    """The CSV, a line at a time: everyone the last sync saw in OneLogin (by email, else
    userName), with their role fields as last seen. Streamed, so a large directory is never
    held whole."""
    for cells in export_rows():
        yield _line(cells)


def export_rows() -> Iterator[list[str]]:
    """The export's header, then each person's cells, as they are (not yet made safe for
    spreadsheets), by email (else userName) ignoring case.

    No transaction is held while the file travels: the order is read first, ids alone (4 MB
    at 100,000 people), in one short transaction (before the header, so that what the
    caller had open ends too), then the people a page at a time by id, each page in a
    transaction of its own. (Pages keyed on the sort key itself would sort the whole table
    again for each page: no index serves lower(email or userName); 7 times slower at
    100,000 people.) Someone gone since the export began is left out."""
    fields = edits.role_fields()
    order = list(
        db.session.scalars(
            select(Person.id)
            .where(Person.onelogin_id.is_not(None))
            .order_by(func.lower(func.coalesce(Person.email, Person.user_name)), Person.id)
        )
    )
    db.session.commit()  # a read: nothing is pending; ends the transaction
    yield [EMAIL, *fields]
    for start in range(0, len(order), EXPORT_PAGE):
        ids = order[start : start + EXPORT_PAGE]
        query = select(Person.id, Person.email, Person.user_name, Person.roles)
        found = {row.id: row for row in db.session.execute(query.where(Person.id.in_(ids)))}
        db.session.commit()
        for person_id in ids:
            if (row := found.get(person_id)) is not None:
                held = row.roles or {}
                yield [row.email or row.user_name, *((held.get(f) or "") for f in fields)]


def _line(cells: list[str]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerow([spreadsheet_safe(c) for c in cells])
    return out.getvalue()
