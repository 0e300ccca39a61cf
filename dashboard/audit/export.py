"""Audit entries as CSV and as JSON Lines, streamed: generators of text chunks over rows
read a chunk at a time (dashboard.audit.search.rows, in the hash chain's order), so an
export never holds them all.

Both carry the same fields, in this order: id, occurred_at (ISO 8601 in UTC, to the
microsecond), actor, source, action, outcome, target_user, source_ip, details, and the hash
chain's seq, prev_hash and hash (so the security team can check an export on its own). In CSV (lines
ending in CRLF, as RFC 4180 has it), details is one cell of JSON and an absent value an
empty cell; a cell that a spreadsheet would run as a formula starts with an apostrophe (the
roles CSV's rule). In JSON Lines each entry is one object on one line, details an object,
absent values null, all as recorded.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

from dashboard.audit.search import COLUMNS
from dashboard.text import spreadsheet_safe

FIELDS = tuple(column.key for column in COLUMNS)
ENTRIES_PER_CHUNK = 500  # entries handed on at a time: few writes, little memory
DETAILS = json.JSONEncoder(ensure_ascii=False, sort_keys=True)  # made once, not per entry


def csv_lines(rows: Iterable[Sequence[Any]]) -> Iterator[str]:
    """The header line, then one line per row of search.COLUMNS, in chunks of text."""
    out = io.StringIO()
    # With CRLF as the line end, a cell holding a lone CR is quoted too.
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(FIELDS)
    for n, row in enumerate(rows, start=1):
        writer.writerow(_cells(row))
        if n % ENTRIES_PER_CHUNK == 0:
            yield _drain(out)
    if out.tell():
        yield _drain(out)


def jsonl_lines(rows: Iterable[Sequence[Any]]) -> Iterator[str]:
    """One JSON object per row of search.COLUMNS, a line each, in chunks of text."""
    lines: list[str] = []
    for row in rows:
        lines.append(json.dumps(as_json(row), ensure_ascii=False) + "\n")
        if len(lines) == ENTRIES_PER_CHUNK:
            yield "".join(lines)
            lines.clear()
    if lines:
        yield "".join(lines)


def as_json(row: Sequence[Any]) -> dict[str, Any]:
    """One entry (a row of search.COLUMNS) as a JSON-ready object."""
    entry = dict(zip(FIELDS, row, strict=True))
    entry["occurred_at"] = timestamp(entry["occurred_at"])
    entry["details"] = entry["details"] or {}
    return entry


def timestamp(moment: datetime) -> str:
    """ISO 8601 in UTC to the microsecond, as the audit chain hashes it."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def _cells(row: Sequence[Any]) -> list[Any]:
    entry_id, occurred_at, actor, source, action, outcome, user, ip, details, *chained = row
    return [
        entry_id,
        timestamp(occurred_at),
        # The cells recorded from input; the others are ours (a number, a time, JSON).
        spreadsheet_safe(actor),
        spreadsheet_safe(source),
        spreadsheet_safe(action),
        spreadsheet_safe(outcome),
        spreadsheet_safe(user or ""),
        spreadsheet_safe(ip or ""),
        DETAILS.encode(details or {}),
        *chained,  # seq, prev_hash, hash: ours
    ]


def _drain(out: io.StringIO) -> str:
    chunk = out.getvalue()
    out.seek(0)
    out.truncate()
    return chunk
