"""The calendar month (UTC) of an audit entry's time, as an index expression.

ix_audit_month_id is (month_of(occurred_at), id): the newest or oldest entry of a whole
month is one probe of it, so where a time range lies among the entries' ids costs a probe a
month plus reading at most two partial months on the time index (dashboard.audit.spans),
whatever order the entries were recorded in. Imported OneLogin and Workato events are
recorded after they happened, so ids alone cannot say it.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import String
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement


class month_of(FunctionElement):  # a SQL function, named as one
    """month_of(a stored time): 'YYYY-MM' on SQLite, the month's first instant on
    PostgreSQL."""

    type = String()
    inherit_cache = True
    name = "month_of"


@compiles(month_of)
def _as_text(element, compiler, **kw) -> str:
    # SQLite keeps times as text in UTC, 'YYYY-MM-DD HH:MM:SS.ffffff'.
    return f"substr({compiler.process(element.clauses, **kw)}, 1, 7)"


@compiles(month_of, "postgresql")
def _truncated(element, compiler, **kw) -> str:
    # Written as PostgreSQL writes the index back, so that the schema compares equal
    # (tests/test_health_and_schema.py); AT TIME ZONE with a constant zone is immutable.
    column = compiler.process(element.clauses, **kw)
    return f"date_trunc('month'::text, ({column} AT TIME ZONE 'UTC'::text))"


def month_key(first: datetime, dialect: str) -> str | datetime:
    """What month_of gives for the month that starts at `first` (a UTC month's start)."""
    if dialect == "postgresql":
        return first.astimezone(UTC).replace(tzinfo=None)
    return f"{first.year:04d}-{first.month:02d}"


def month_start(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def next_month(start: datetime) -> datetime:
    return start.replace(year=start.year + start.month // 12, month=start.month % 12 + 1)
