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
- before: the keyset, an entry's place in the page's order (walks.Key: when it happened and
  its id): only entries before it.

A page lists entries in the order they happened, newest first: by occurred_at, then by id
(so an imported OneLogin event sits where it happened, below the run recorded before its
import). Pages are cut by key (`(occurred_at, id) < before`), never by OFFSET. How a page
is found fast whatever the filters (which index it walks, and when it looks through a
window of entries at a time) is dashboard.audit.walks.

Exports keep the chain's order instead (by id, which follows seq: the chain's head lets
one writer append at a time), as `flask audit export` always has: the entries a page's
filters match, all of them, in the order they were recorded.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import select

from dashboard.audit import walks
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
    before: walks.Key | None = None
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
        if before and (key := walks.Key.parse(before)) is not None:
            found["before"] = key
        elif before:
            ignored.append(f"before: “{before[:40]}” is not a place in the list.")
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
    next_before: walks.Key | None  # the keyset of the next (older) page; None on the last
    # (oldest, newest) entry this page looked through, when it stopped looking there with
    # older entries left (broad filters that rarely meet: see walks.CAP); its entries are
    # every match among those, and next_before goes on below them.
    searched: tuple[walks.Key, walks.Key] | None = None


def page(filters: Filters, size: int = PAGE_SIZE) -> Page:
    """One page of the entries the filters match, newest first (by when they happened)."""
    actions = _actions(filters)
    found = walks.Found([]) if actions == [] else walks.page_keys(_ask(filters, actions), size + 1)
    more = len(found.keys) > size
    keys = found.keys[:size]
    entries = []
    if keys:
        query = (
            select(AuditEntry)
            .where(AUDIT.c.id.in_([key.id for key in keys]))
            .order_by(AUDIT.c.occurred_at.desc(), AUDIT.c.id.desc())
        )
        entries = list(db.session.scalars(query))
    if more:
        return Page(entries, keys[-1])
    if found.window is not None:
        return Page(entries, found.window[0], found.window)
    return Page(entries, None)


def rows(filters: Filters) -> Iterator:
    """Every entry the filters match (all pages: `before` is not looked at), in the chain's
    order (by id), as rows of COLUMNS.

    Read a page at a time, each page in its own transaction, ended before its rows are
    handed on: a download that takes an hour holds no transaction between pages (no
    snapshot keeping PostgreSQL's vacuum back or SQLite's write-ahead log from being
    checkpointed), and never holds a million entries. When the filters match few entries
    (the page's walk finds them all within walks.CAP), their ids are found first and their
    rows read by id; otherwise the table is read in id order from where the last page
    ended, the filters checked on its rows (the page's indexes are in time order: ordering
    their matches by id again for every page would cost more than one pass over the table).
    Entries recorded while it runs may appear at its end."""
    actions = _actions(filters)
    if actions == []:
        _end_transaction()
        return
    ask = replace(_ask(filters, actions), before=None)
    found = walks.page_keys(ask, walks.CAP + 1)
    if found.window is None and len(found.keys) <= walks.CAP:
        ids = sorted(key.id for key in found.keys)
        _end_transaction()
        for start in range(0, len(ids), EXPORT_CHUNK):
            chunk = ids[start : start + EXPORT_CHUNK]
            query = select(*COLUMNS).where(walks.among(chunk)).order_by(AUDIT.c.id)
            page = db.session.execute(query).all()
            _end_transaction()
            yield from page
        return
    checked = [term.unindexed() for term in walks.terms(ask).values()]
    query = select(*COLUMNS).where(*checked).order_by(AUDIT.c.id)
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
    return walks.distinct_values("action", limit)


def actors(limit: int = MAX_NAMES) -> list[str]:
    return walks.distinct_values("actor", limit)


def prefixes(names: list[str]) -> list[str]:
    """The dotted prefixes of these actions (`access.` for `access.grant`), for the form."""
    return sorted({name.split(".", 1)[0] + "." for name in names if "." in name})


# --- building the queries ------------------------------------------------------------


def _actions(filters: Filters) -> list[str] | None:
    """The exact actions asked for: None for any action, [] when a prefix matches none."""
    if not filters.action:
        return None
    if not filters.action.endswith("."):
        return [filters.action]
    return [a for a in actions() if a.startswith(filters.action)]


def _ask(filters: Filters, actions: list[str] | None) -> walks.Ask:
    return walks.Ask(
        user=filters.user,
        actor=filters.actor,
        actions=None if actions is None else tuple(actions),
        source=filters.source,
        since=filters.since_at,
        until=filters.until_at,
        before=filters.before,
    )
