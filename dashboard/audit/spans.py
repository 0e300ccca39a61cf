"""Where a time range lies among the audit entries' ids, exactly and in a few milliseconds.

The Audit page walks entries by id, newest recorded first, and filters them by when they
happened. A time range becomes the lowest and highest id it holds at or below where a page
starts: the walk begins at the highest (not reading every newer entry first) and ends at the
lowest (not reading older ones to prove that nothing more matches).

Ids and times mostly agree, but not always: an imported OneLogin event is recorded after it
happened. So each end is first looked for where it usually is, at the walk's edge (the entry
where it starts, the table's first entry); failing that, month by month: one probe of
ix_audit_month_id (dashboard.audit.months) for each whole month in the range, and the time
index read for the partial months at its ends.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, func, literal_column, select, union_all

from dashboard.audit.models import AuditEntry
from dashboard.audit.months import month_key, month_of, month_start, next_month
from dashboard.extensions import db

AUDIT = AuditEntry.__table__
MAX_PIECES = 400  # months read as probes; a longer range is read on the time index


@dataclass(frozen=True)
class Span:
    low: int  # the lowest id in the range (at or below the start)
    high: int  # the highest


def span(since: datetime | None, until: datetime | None, start: int) -> Span | None:
    """The range [since, until) among the ids at or below `start`; None when nothing there
    is in it."""
    ident = AUDIT.c.id
    found = []  # the entry where the walk starts, and the table's first
    for order in (ident.desc(), ident):
        edge = select(ident, AUDIT.c.occurred_at).where(ident <= start).order_by(order).limit(1)
        row = db.session.execute(edge).first()
        if row is None:
            return None
        within = (since is None or row.occurred_at >= since) and (
            until is None or row.occurred_at < until
        )
        found.append(row.id if within else None)
    high, low = found
    if high is None or low is None:
        by_month = _by_month(since, until, start)
        if by_month is None:
            return None
        low, high = by_month
    return Span(low, high)


def count(since: datetime | None, until: datetime | None, cap: int) -> int:
    """The entries in the range, counted on the time index up to `cap`."""
    some = select(literal_column("1")).where(_within(since, until)).limit(cap).subquery()
    return db.session.scalar(select(func.count()).select_from(some)) or 0


def _within(since: datetime | None, until: datetime | None, column=AUDIT.c.occurred_at):
    return and_(*([column >= since] if since else []), *([column < until] if until else []))


def _by_month(since: datetime | None, until: datetime | None, start: int):
    """(lowest, highest) id at or below `start` in the range, month by month; None when
    there is none."""
    pieces = _pieces(since, until)
    if not pieces:
        return None
    if len(pieces) > MAX_PIECES:  # decades: read the range on the time index
        pieces = [(since, until, False)]
    ident, dialect = AUDIT.c.id, db.session.get_bind().dialect.name
    found = []
    for begin, end, whole in pieces:
        if whole:  # a probe of (month, id) for each end
            found.append(select(*(_probe(begin, start, o, dialect) for o in ("low", "high"))))
        else:  # part of a month, read on the time index (`id + 0`: not the primary key)
            within = [_within(begin, end), ident + 0 <= start]
            ends = func.min(ident + 0).label("low"), func.max(ident + 0).label("high")
            found.append(select(*ends).where(*within))
    merged = (found[0] if len(found) == 1 else union_all(*found)).subquery()
    row = db.session.execute(select(func.min(merged.c.low), func.max(merged.c.high))).one()
    return None if row[1] is None else (row[0], row[1])


def _probe(month_start: datetime, start: int, end: str, dialect: str):
    """The lowest (`end` "low") or highest id at or below `start` among the month's entries:
    the first entry of ix_audit_month_id from that end of the month. Written as an ordered
    read of (month, id) with the month as a range, not as min(id) for a month equal to one:
    PostgreSQL would then read the table by id from that end until it met the month,
    guessing from its statistics that months are spread evenly among the ids."""
    month, ident = month_of(AUDIT.c.occurred_at), AUDIT.c.id
    key = month_key(month_start, dialect)
    order = (month, ident) if end == "low" else (month.desc(), ident.desc())
    query = select(ident).where(month >= key, month <= key, ident <= start)
    return query.order_by(*order).limit(1).scalar_subquery().label(end)


def _pieces(since: datetime | None, until: datetime | None) -> list[tuple]:
    """The range cut at month boundaries, within the months that hold entries: (begin, end,
    whole month)."""
    # Apart: SQLite reads min() or max() off an index only when it is alone in its query.
    oldest = db.session.scalar(select(func.min(AUDIT.c.occurred_at)))
    newest = db.session.scalar(select(func.max(AUDIT.c.occurred_at)))
    if oldest is None or newest is None:
        return []
    begin = max(since, month_start(oldest)) if since else month_start(oldest)
    last = next_month(month_start(newest))
    end = min(until, last) if until else last
    if begin >= end:
        return []
    pieces = []
    month = month_start(begin)
    if begin > month:  # a partial first month
        pieces.append((begin, min(next_month(month), end), False))
        month = next_month(month)
    while month < end and next_month(month) <= end:
        pieces.append((month, next_month(month), True))
        month = next_month(month)
    if month < end:  # a partial last month
        pieces.append((max(month, begin), end, False))
    return pieces
