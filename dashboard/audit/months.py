"""The calendar month (UTC) of an audit entry's time, as an index expression.

Kept for the migrations alone: 0013 made ix_audit_month_id, (month_of(occurred_at), id),
which let a page walking entries in id order find where a time range lay among the ids;
0017 dropped it when the page came to walk entries in time order (dashboard.audit.walks),
and its downgrade makes it again. Nothing else may use it.
"""

from __future__ import annotations

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
    # Written as PostgreSQL writes the index back; AT TIME ZONE with a constant zone is
    # immutable.
    column = compiler.process(element.clauses, **kw)
    return f"date_trunc('month'::text, ({column} AT TIME ZONE 'UTC'::text))"
