"""Searching the audit trail: the filters the Audit page and `flask audit export` share, one
page of entries newest first, and every matching entry for an export.

Filters, each optional, combine with AND:

- user: the entry's target user exactly as recorded (an email or a userName; case counts).
  Exact rather than "contains" so that ix_audit_target_user_id serves it in id order.
- actor: exactly as recorded (an admin's email, `sync`, `cli:<login>`, `anonymous`).
- action: exact (`roles.edit`), or a dotted prefix ending in "." (`access.`) for every
  action under it; a prefix is resolved to the actions the table holds.
- source: dashboard, onelogin, workato or sync.
- since: entries at or after this instant (inclusive); a date alone means its 00:00 UTC.
- until: entries before this instant (exclusive); a date alone includes that whole day.
  Times without an offset are UTC; with one they are converted to UTC.
- before: the keyset, an entry id: only entries older than it (id < before).

Pages are cut by key (`id < before`), never by OFFSET. Each equality filter has an index on
(column, id) and time one on (occurred_at, id). A page walks the index of the filter that
matches the fewest entries, each counted on its index up to CAP (cheap), and checks the
others on the rows it reaches: an equality index backwards from the keyset, stopping after
one page; the time index reading its (fewer than CAP) matches and sorting them by id. When
every filter matches CAP or more, the database chooses, starting below the newest entry in
the time range when there is one. The slow case left: broad filters that rarely meet (actor
`sync` with source `dashboard`) read one of their indexes to the end (bench/README.md).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import Column, ColumnElement, and_, func, literal_column, select, text, union_all

from dashboard.audit.models import AuditEntry
from dashboard.extensions import db

SOURCES = ("dashboard", "onelogin", "workato", "sync")
PAGE_SIZE = 50
MAX_TEXT = 320  # the longest actor or target user the table holds
MAX_NAMES = 1000  # distinct actions (or actors) read for a prefix or for the form's suggestions
# Entries read at a time by an export, each page in its own transaction. Small enough that a
# page's rows die young: at 1,000, Python's collector ran over them a few times a page and
# exports took half as long again.
EXPORT_CHUNK = 300
# A filter matching fewer entries than this is walked by its own index (see _walk).
CAP = 50_000
DATE_ONLY = re.compile(r"\d{4}-\d{2}-\d{2}")
TIME_HINT = "a date (2026-03-01) or a UTC date and time (2026-03-01T09:30)"

# The table itself, not the model: plain rows read two to three times as fast as the ORM's.
AUDIT = AuditEntry.__table__
# What an export and the JSON of an entry hold, in this order.
COLUMNS = (
    AUDIT.c.id,
    AUDIT.c.occurred_at,
    AUDIT.c.actor,
    AUDIT.c.source,
    AUDIT.c.action,
    AUDIT.c.outcome,
    AUDIT.c.target_user,
    AUDIT.c.source_ip,
    AUDIT.c.details,
    # The chain, so an export can be checked without the dashboard (dashboard.audit.chain).
    AUDIT.c.seq,
    AUDIT.c.prev_hash,
    AUDIT.c.hash,
)


def parse_time(value: str, *, end: bool = False) -> datetime:
    """A UTC instant from `YYYY-MM-DD` or an ISO 8601 date and time. With `end`, a date
    alone means the end of that day (the next day's 00:00 UTC), so that an exclusive upper
    bound still includes it. Raises ValueError."""
    value = value.strip()
    try:
        if DATE_ONLY.fullmatch(value):
            day = date.fromisoformat(value)
            start = datetime(day.year, day.month, day.day, tzinfo=UTC)
            return start + timedelta(days=1) if end else start
        moment = datetime.fromisoformat(value)
        if moment.tzinfo is None:
            return moment.replace(tzinfo=UTC)
        return moment.astimezone(UTC)
    except OverflowError:
        raise ValueError(f"{value!r} is out of range") from None


@dataclass(frozen=True)
class Filters:
    """What the Audit page (or an export) is asked to show; every part optional."""

    user: str = ""
    actor: str = ""
    action: str = ""
    source: str = ""
    since: str = ""  # as given (a date, or a date and time); parsed by since_at
    until: str = ""
    before: int | None = None
    # What the query string asked that could not be understood, in words; said on the page.
    ignored: tuple[str, ...] = field(default=(), compare=False)

    @classmethod
    def read(cls, args: Mapping[str, str]) -> Filters:
        """From a query string. A value that cannot be understood is left out, and said in
        `ignored`, rather than refused: the page still shows what the rest asks for."""
        ignored: list[str] = []
        found: dict[str, object] = {}
        for name in ("user", "actor", "action"):
            value = (args.get(name) or "").strip()
            if len(value) > MAX_TEXT:
                ignored.append(f"{name}: longer than {MAX_TEXT} characters, so nothing has it.")
            elif value:
                found[name] = value
        source = (args.get("source") or "").strip()
        if source in SOURCES:
            found["source"] = source
        elif source:
            ignored.append(f"source: “{source[:40]}” is not one of {', '.join(SOURCES)}.")
        for name in ("since", "until"):
            value = (args.get(name) or "").strip()
            if not value:
                continue
            try:
                parse_time(value, end=name == "until")
            except ValueError:
                ignored.append(f"{name}: “{value[:40]}” is not {TIME_HINT}.")
            else:
                found[name] = value
        before = (args.get("before") or "").strip()
        if re.fullmatch(r"[0-9]{1,18}", before) and int(before) > 0:
            found["before"] = int(before)
        elif before:
            ignored.append(f"before: “{before[:40]}” is not an entry number.")
        return cls(**found, ignored=tuple(ignored))  # type: ignore[arg-type]

    @property
    def since_at(self) -> datetime | None:
        return parse_time(self.since) if self.since else None

    @property
    def until_at(self) -> datetime | None:
        return parse_time(self.until, end=True) if self.until else None

    @property
    def active(self) -> bool:
        """Whether anything narrows the entries (the keyset does not)."""
        return bool(
            self.user or self.actor or self.action or self.source or self.since or self.until
        )

    def args(self, **changed: object) -> dict[str, str]:
        """The query string for a link, empty parts left out."""
        values: dict[str, object] = {
            "user": self.user,
            "actor": self.actor,
            "action": self.action,
            "source": self.source,
            "since": self.since,
            "until": self.until,
            "before": self.before,
        }
        values.update(changed)
        return {name: str(value) for name, value in values.items() if value}


@dataclass(frozen=True)
class Page:
    entries: list[AuditEntry]
    next_before: int | None  # the keyset of the next (older) page; None on the last page


def page(filters: Filters, size: int = PAGE_SIZE) -> Page:
    """One page of the entries the filters match, newest first."""
    ids = _page_ids(filters, size + 1)
    more = len(ids) > size
    ids = ids[:size]
    entries = []
    if ids:
        query = select(AuditEntry).where(AUDIT.c.id.in_(ids)).order_by(AUDIT.c.id.desc())
        entries = list(db.session.scalars(query))
    return Page(entries, ids[-1] if more else None)


def rows(filters: Filters) -> Iterator:
    """Every entry the filters match (`before` included), oldest first, as rows of COLUMNS.

    Read a page at a time by key (`id > the last one`), each page in its own transaction,
    ended before its rows are handed on: a download that takes an hour holds no transaction
    between pages (no snapshot keeping PostgreSQL's vacuum back or SQLite's write-ahead log
    from being checkpointed), and never holds a million entries. Entries recorded while it
    runs may appear at its end."""
    actions = _actions(filters)
    if actions == []:
        _end_transaction()
        return
    query = _narrowed(select(*COLUMNS), filters, actions).order_by(AUDIT.c.id)
    after = None
    while True:
        keyset = query if after is None else query.where(AUDIT.c.id > after)
        page = db.session.execute(keyset.limit(EXPORT_CHUNK)).all()
        _end_transaction()
        yield from page
        if len(page) < EXPORT_CHUNK:
            return
        after = page[-1].id


def _end_transaction() -> None:
    """End the session's transaction (a read: nothing is pending), so nothing is held while
    the rows read travel to the client."""
    db.session.commit()


def actions(limit: int = MAX_NAMES) -> list[str]:
    """The distinct actions recorded, in order: one index probe each, not a table scan."""
    return _distinct("action", limit)


def actors(limit: int = MAX_NAMES) -> list[str]:
    return _distinct("actor", limit)


def prefixes(names: list[str]) -> list[str]:
    """The dotted prefixes of these actions (`access.` for `access.grant`), for the form."""
    return sorted({name.split(".", 1)[0] + "." for name in names if "." in name})


# --- building the queries ------------------------------------------------------------


def _distinct(column: str, limit: int) -> list[str]:
    # A "loose index scan": each step asks the (column, id) index for the next value up,
    # so a million entries with fifty actions cost fifty probes.
    sql = text(
        f"""
        WITH RECURSIVE found(value) AS (
            SELECT (SELECT {column} FROM audit ORDER BY {column} LIMIT 1)
            UNION ALL
            SELECT (SELECT {column} FROM audit WHERE {column} > found.value
                    ORDER BY {column} LIMIT 1)
            FROM found WHERE found.value IS NOT NULL
        )
        SELECT value FROM found WHERE value IS NOT NULL LIMIT :limit
        """  # noqa: S608  (column is one of ours, never the request's)
    )
    return list(db.session.scalars(sql, {"limit": limit}))


def _actions(filters: Filters) -> list[str] | None:
    """The exact actions asked for: None for any action, [] when a prefix matches none."""
    if not filters.action:
        return None
    if not filters.action.endswith("."):
        return [filters.action]
    return [a for a in actions() if a.startswith(filters.action)]


@dataclass(frozen=True)
class Term:
    """One filter: its column, and its condition on that column (or on an expression of it
    that no index serves, when another filter's index is the one to walk)."""

    column: Column
    condition: Callable[[ColumnElement], ColumnElement[bool]]

    def on_index(self) -> ColumnElement[bool]:
        return self.condition(self.column)

    def unindexed(self) -> ColumnElement[bool]:
        # coalesce(x, x) is x, with x's type, but no index on x serves it.
        return self.condition(func.coalesce(self.column, self.column))


def _terms(filters: Filters, actions: list[str] | None) -> dict[str, Term]:
    """The filters as conditions, most selective first (as usually they are)."""
    terms: dict[str, Term] = {}
    if filters.user:
        terms["user"] = Term(AUDIT.c.target_user, lambda c: c == filters.user)
    if filters.actor:
        terms["actor"] = Term(AUDIT.c.actor, lambda c: c == filters.actor)
    if actions is not None:
        terms["action"] = Term(
            AUDIT.c.action, lambda c: c == actions[0] if len(actions) == 1 else c.in_(actions)
        )
    if filters.since or filters.until:
        since, until = filters.since_at, filters.until_at

        def in_range(c):
            return and_(*([c >= since] if since else []), *([c < until] if until else []))

        terms["time"] = Term(AUDIT.c.occurred_at, in_range)
    if filters.source:
        terms["source"] = Term(AUDIT.c.source, lambda c: c == filters.source)
    return terms


def _narrowed(query, filters: Filters, actions: list[str] | None):
    """Every filter on its index: the database chooses how to find them (an export)."""
    for term in _terms(filters, actions).values():
        query = query.where(term.on_index())
    if filters.before is not None:
        query = query.where(AUDIT.c.id < filters.before)
    return query


def _page_ids(filters: Filters, limit: int) -> list[int]:
    """The ids of one page, newest first (see _walk for how they are found)."""
    actions = _actions(filters)
    if actions == []:
        return []
    terms = _terms(filters, actions)
    walk = _walk(terms, filters.before)
    conditions = [AUDIT.c.id < filters.before] if filters.before is not None else []
    if walk is None and filters.until:
        # Every filter is broad. Start below the newest entry of the time range, found on
        # the time index (which holds ids), rather than read every entry newer than it.
        newest = _newest(terms["time"], conditions)
        if newest is None:
            return []
        conditions.append(AUDIT.c.id <= newest)
    # How the database reads them. On a walk in id order it stops after `limit` matches:
    # the walked filter is on its index and the others are checked on the rows it reaches.
    # The time index is in time order instead, so its matches are read and then sorted
    # (there are fewer than CAP); PostgreSQL does the same with any walk when filters
    # combine, leaving every filter on its index so that it may intersect them (bitmaps).
    postgres = db.session.get_bind().dialect.name == "postgresql"
    sort_after = walk == "time" or (postgres and walk is not None and len(terms) > 1)
    indexed = set(terms) if walk is None or (postgres and sort_after) else {walk}
    if walk == "action" and len(actions or []) > 1 and not sort_after:
        # A prefix: each action walks its own (action, id) index; the newest of all win.
        others = {name: term for name, term in terms.items() if name != "action"}
        branches = [
            _ids(others, indexed, [*conditions, AUDIT.c.action == action], limit).subquery()
            for action in actions or []
        ]
        merged = union_all(*(select(branch.c.id) for branch in branches)).subquery()
        query = select(merged.c.id).order_by(merged.c.id.desc()).limit(limit)
    else:
        query = _ids(terms, indexed, conditions, limit, sort_after=sort_after)
    return list(db.session.scalars(query))


def _walk(terms: dict[str, Term], before: int | None) -> str | None:
    """Which filter's index a page walks: the one matching the fewest entries, each counted
    (on its index alone) up to the fewest found so far, so counting stays cheap. None when
    every filter matches CAP entries or more: the database then chooses, and most entries
    it reads match (unless broad filters rarely meet, which is the slow case)."""
    if not terms:
        return None
    if len(terms) == 1 and "time" not in terms:
        return next(iter(terms))  # one (column, id) index: nothing to choose
    best, fewest = None, CAP
    for name, term in terms.items():
        query = select(literal_column("1")).where(term.on_index())
        if before is not None:
            query = query.where(AUDIT.c.id < before)
        count = db.session.scalar(select(func.count()).select_from(query.limit(fewest).subquery()))
        if count < fewest:
            best, fewest = name, count
    return best


def _newest(time: Term, conditions: list) -> int | None:
    """The newest id in the time range, read from the time index (`id + 0`, so that the
    database does not look for it by walking every newer entry instead)."""
    newest = select(func.max(AUDIT.c.id + 0)).where(time.on_index(), *conditions)
    return db.session.scalar(newest)


def _ids(
    terms: dict[str, Term], indexed: set[str], conditions: list, limit: int, *, sort_after=False
):
    """The query for a page's ids: the `indexed` filters on their index, the others on an
    expression no index serves (so the database walks the index meant)."""
    query = select(AUDIT.c.id).where(*conditions)
    for name, term in terms.items():
        query = query.where(term.on_index() if name in indexed else term.unindexed())
    order = AUDIT.c.id + 0 if sort_after else AUDIT.c.id  # + 0: not the primary key's
    return query.order_by(order.desc()).limit(limit)
