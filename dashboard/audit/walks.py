"""How a page of the Audit page is found among a million entries: which index it walks, and
from where.

A page is the newest `limit` entries matching every filter, below a keyset, in the order
things happened: by occurred_at, then by id (an imported OneLogin event sits where it
happened, not where it was recorded). Every index the page walks ends in (occurred_at, id),
so a walk reads index entries in page order, newest first, and stops after a page; a time
range and the keyset are one contiguous range of each. The walks:

- the equality filters': actor, action or source alone on its own (column, occurred_at, id)
  index; together on (actor, action, source, occurred_at, id) or (action, source,
  occurred_at, id), one branch per combination of values the table holds (found by a loose
  index scan: an actor's actions, the sources of an actor's action), merged newest first.
  Filters that never meet (actor `sync` with source `dashboard`) then cost a few empty
  probes, not a walk through one filter's 600,000 entries;
- the user's: (target_user, occurred_at, id);
- the time index itself, (occurred_at, id): no filter, or a time range alone.

Each walk's entries are counted (on its index alone, up to the fewest found so far, so
counting stays cheap) and the fewest taken.

The filters a walk does not serve are checked on the rows it reaches, in chunks: a chunk of
keys is read from the walk's index alone, then those rows are read by id. Two plain queries,
so that no database can choose to read the table newest first instead (PostgreSQL would,
guessing from each column's statistics alone that filters which never meet often do).

A page checks at most CAP rows. When the walk holds more and they rarely pass, the page
says where it stopped looking (Found.window): its entries are every match down to there,
and the next page goes on below it. The Audit page says so and offers to look further,
rather than read a million rows to prove that nothing more matches.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from sqlalchemy import (
    Column,
    ColumnElement,
    Integer,
    and_,
    any_,
    bindparam,
    func,
    literal,
    literal_column,
    select,
    text,
    tuple_,
    union_all,
)
from sqlalchemy.dialects import postgresql

from dashboard.audit.models import AuditEntry
from dashboard.extensions import db

AUDIT = AuditEntry.__table__
# Rows a page checks at most; a walk with more entries than this is broad.
CAP = 20_000
# Keys read from a walk's index at a time, for checking their rows: the first chunk is a few
# pages' worth, each next one four times larger, up to this.
CHUNK = 5_000
# Branches one walk may merge; more (an actor with hundreds of actions) walk one index.
MAX_BRANCHES = 200
MAX_VALUES = 1000  # distinct values a loose index scan reads
# A key as a link carries it: the time in UTC to the microsecond, a tilde, the id.
TOKEN = re.compile(r"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6})Z~([1-9][0-9]{0,17})")


@dataclass(frozen=True, order=True)
class Key:
    """An entry's place in the page's order: when it happened, then its id (entries that
    happened at the same microsecond follow the order they were recorded in)."""

    at: datetime
    id: int

    def __str__(self) -> str:
        """As the "Older entries" link carries it: 2026-03-01T09:30:00.000000Z~1234."""
        return f"{self.at.astimezone(UTC):%Y-%m-%dT%H:%M:%S.%f}Z~{self.id}"

    @classmethod
    def parse(cls, token: str) -> Key | None:
        """A key from a link; None when it is not one."""
        found = TOKEN.fullmatch(token)
        if found is None:
            return None
        try:
            at = datetime.fromisoformat(found.group(1)).replace(tzinfo=UTC)
        except ValueError:  # the 30th of February
            return None
        return cls(at, int(found.group(2)))


@dataclass(frozen=True)
class Ask:
    """What a page asks, as values: every part optional."""

    user: str = ""
    actor: str = ""
    actions: tuple[str, ...] | None = None  # the exact actions; None for any (never empty)
    source: str = ""
    since: datetime | None = None  # inclusive
    until: datetime | None = None  # exclusive
    before: Key | None = None  # the keyset: entries before it in page order


@dataclass(frozen=True)
class Found:
    keys: list[Key]  # newest first
    # (oldest, newest) entry looked through, when the page stopped looking at CAP rows
    # checked, before finding a whole page: every match between them is in `keys`, and
    # older entries remain. None when every entry that could match was looked at.
    window: tuple[Key, Key] | None = None


@dataclass(frozen=True)
class Term:
    """One filter: its column, and its condition on that column (or on an expression of it
    that no index serves, when another index is the one to walk)."""

    column: Column
    condition: Callable[[ColumnElement], ColumnElement[bool]]

    def on_index(self) -> ColumnElement[bool]:
        return self.condition(self.column)

    def unindexed(self) -> ColumnElement[bool]:
        # coalesce(x, x) is x, with x's type, but no index on x serves it.
        return self.condition(func.coalesce(self.column, self.column))


@dataclass(frozen=True)
class Walk:
    """Index entries in page order: one branch per index range (the equalities it seeks),
    merged newest first. Every walk's index ends in (occurred_at, id), so every walk serves
    the time range and the keyset."""

    name: str
    branches: tuple[tuple[ColumnElement[bool], ...], ...]
    serves: frozenset[str]  # the filters its index serves; the others are checked on rows


def terms(ask: Ask) -> dict[str, Term]:
    """The filters as conditions, by name."""
    found: dict[str, Term] = {}
    if ask.user:
        found["user"] = Term(AUDIT.c.target_user, lambda c: c == ask.user)
    if ask.actor:
        found["actor"] = Term(AUDIT.c.actor, lambda c: c == ask.actor)
    if ask.actions is not None:
        actions = ask.actions
        found["action"] = Term(
            AUDIT.c.action, lambda c: c == actions[0] if len(actions) == 1 else c.in_(actions)
        )
    if ask.source:
        found["source"] = Term(AUDIT.c.source, lambda c: c == ask.source)
    if ask.since or ask.until:
        found["time"] = Term(AUDIT.c.occurred_at, lambda c: _within(c, ask.since, ask.until))
    return found


def below(key: Key) -> ColumnElement[bool]:
    """Entries before `key` in page order: (occurred_at, id) < (key.at, key.id). The first
    part alone (occurred_at at or before it) is what every index seeks to, whether or not
    the database seeks on a row value; the row value then leaves out the entries of that
    same instant at or after the key."""
    at, ident = AUDIT.c.occurred_at, AUDIT.c.id
    return and_(at <= key.at, tuple_(at, ident) < (key.at, key.id))


def page_keys(ask: Ask, limit: int) -> Found:
    """The keys of the newest `limit` entries the ask matches, newest first."""
    filters = terms(ask)
    walks = _walks(ask)
    walk, entries = _choose(walks, ask, filters)
    if entries == 0 or not walk.branches:  # (no branch: an actor who never did anything)
        return Found([])
    left = set(filters) - walk.serves - {"time"}  # every walk's index ends in (occurred_at, id)
    if not left:
        return Found(_read(walk, ask, ask.before, limit))
    return _checked(walk, ask, [filters[name].unindexed() for name in left], limit)


def _checked(walk: Walk, ask: Ask, checked: list, limit: int) -> Found:
    """The walk's entries, read a chunk at a time and checked on their rows, until a page
    is found, the walk ends, or CAP rows were checked. A chunk is read as ids alone; the
    times come with the rows that pass, and for where the next chunk starts (reading the
    time of each of the 8,500 entries a busy user's walk may check took a third of the
    page's time on SQLite)."""
    found: list[Key] = []
    seen, start, size = 0, ask.before, min(4 * limit, CHUNK, CAP)
    first, window = None, None
    while True:
        ids = _read(walk, ask, start, size, times=False)
        if not ids:
            break
        first, last = first or ids[0], _key_of(ids[-1])
        passing = select(AUDIT.c.id, AUDIT.c.occurred_at).where(among(ids), *checked)
        passed = dict(db.session.execute(passing).all())
        found += [Key(passed[i], i) for i in ids if i in passed][: limit - len(found)]
        seen += len(ids)
        if len(found) == limit or len(ids) < size:
            break
        if seen >= CAP:
            window = (last, _key_of(first))
            break
        start, size = last, min(4 * size, CHUNK, CAP - seen)
    return Found(found, window)


def _key_of(ident: int) -> Key:
    return Key(db.session.scalar(select(AUDIT.c.occurred_at).where(AUDIT.c.id == ident)), ident)


def distinct_values(column: str, limit: int = MAX_VALUES, **equal: str) -> list[str]:
    """The distinct values of `column` among the entries whose columns hold `equal`, in order:
    a "loose index scan", each step asking an index for the next value up, so that a million
    entries with fifty actions cost fifty probes, not a table scan. `column` and the names
    in `equal` are ours (the index has them first, in that order), never the request's."""
    where = "".join(f" AND {name} = :{name}" for name in equal)
    sql = text(
        f"""
        WITH RECURSIVE found(value) AS (
            SELECT (SELECT {column} FROM audit WHERE {column} IS NOT NULL{where}
                    ORDER BY {column} LIMIT 1)
            UNION ALL
            SELECT (SELECT {column} FROM audit WHERE {column} > found.value{where}
                    ORDER BY {column} LIMIT 1)
            FROM found WHERE found.value IS NOT NULL
        )
        SELECT value FROM found WHERE value IS NOT NULL LIMIT :limit
        """  # noqa: S608  (column and names are ours; values are bound)
    )
    return list(db.session.scalars(sql, {"limit": limit, **equal}))


# --- choosing the walk ------------------------------------------------------------------


def _walks(ask: Ask) -> list[Walk]:
    """The ways to find the page, in order of preference when they count alike."""
    found = []
    if ask.user and ask.actor:
        # On (target_user, actor, occurred_at, id): the busiest user's entries by an admin
        # who rarely acted on her are a few, not all of hers checked one by one.
        both = (AUDIT.c.target_user == ask.user, AUDIT.c.actor == ask.actor)
        found.append(Walk("user_actor", (both,), frozenset({"user", "actor"})))
    if ask.user:
        found.append(Walk("user", ((AUDIT.c.target_user == ask.user,),), frozenset({"user"})))
    equal = _equality_walk(ask)
    if equal is not None:
        found.append(equal)
    found.append(Walk("time", ((),), frozenset()))
    return found


def _equality_walk(ask: Ask) -> Walk | None:
    """Actor, action and source, as far as an index in page order serves them together."""
    actor, actions, source, c = ask.actor, ask.actions, ask.source, AUDIT.c
    if not actor and not source and actions is None:
        return None
    serves = frozenset(
        name for name, given in (("actor", actor), ("action", actions), ("source", source)) if given
    )
    branches: list[tuple[ColumnElement[bool], ...]]
    if actions is None and not source:
        branches = [(c.actor == actor,)]
    elif actions is None and not actor:
        branches = [(c.source == source,)]
    elif actions is None:  # actor and source: each of the actor's actions with the source
        branches = [
            (c.actor == actor, c.action == action, c.source == source)
            for action in distinct_values("action", actor=actor)
        ]
    elif not actor:
        branches = [
            (c.action == action, *([c.source == source] if source else [])) for action in actions
        ]
    elif source:
        branches = [(c.actor == actor, c.action == a, c.source == source) for a in actions]
    else:  # actor and actions: each with every source the actor's action has
        branches = [
            (c.actor == actor, c.action == action, c.source == found)
            for action in actions
            for found in distinct_values("source", actor=actor, action=action)
        ]
    if len(branches) > MAX_BRANCHES:
        # Too many to merge: the one index of the actor (or else the source) serves.
        name = "actor" if actor else "source"
        column = c.actor if actor else c.source
        return Walk(name, ((column == (actor or source),),), frozenset({name}))
    return Walk("equal", tuple(branches), serves)


def _choose(walks: list[Walk], ask: Ask, filters: dict[str, Term]) -> tuple[Walk, int | None]:
    """The walk with the fewest entries in the time range below the keyset, and how many
    (CAP: broad; None: not counted). A walk that serves every filter is taken without
    counting: it reads matches only. The user's walk is counted first, as it is usually the
    fewest and the others are counted up to it. The time index is never counted: every
    other walk's entries are some of its own. A walk counted whole loses the branches that
    hold nothing in the range (an admin's actions with source `sync`: most of twenty), so
    that each chunk it reads merges only those that do."""
    if set(filters) - {"time"} <= walks[0].serves:
        return walks[0], None
    # Every walk broad: the one serving the most filters leaves the fewest to check.
    best, fewest = max(walks, key=lambda w: len(w.serves)), CAP
    for walk in walks:
        if walk.name == "time":
            break
        count, holding = _entries(walk, ask, fewest)
        if count < fewest:
            best, fewest = replace(walk, branches=holding), count
        if fewest == 0:
            break
    return best, fewest


def _entries(walk: Walk, ask: Ask, limit: int) -> tuple[int, tuple]:
    """A walk's entries in the range, counted up to `limit`; and, when it holds fewer, the
    branches that hold any."""
    if not walk.branches:
        return 0, ()
    bounds = _bounds(ask, ask.before)
    parts = [
        select(literal(n).label("branch")).select_from(AUDIT).where(*branch, *bounds)
        for n, branch in enumerate(walk.branches)
    ]
    counted = (parts[0] if len(parts) == 1 else union_all(*parts)).limit(limit).subquery()
    query = select(counted.c.branch, func.count()).group_by(counted.c.branch)
    found = dict(db.session.execute(query).all())
    holding = tuple(branch for n, branch in enumerate(walk.branches) if found.get(n))
    return sum(found.values()), holding


# --- the query ------------------------------------------------------------------------------


def _within(column, since: datetime | None, until: datetime | None) -> ColumnElement[bool]:
    return and_(*([column >= since] if since else []), *([column < until] if until else []))


def _bounds(ask: Ask, start: Key | None) -> list:
    """The time range, and the entries before `start` (the keyset, or where the last chunk
    ended): the range of a walk's index that is read. Only the nearer of the two upper
    ends is written: given both, SQLite seeks to one of them, and when that was `until`
    with the keyset far below it, a deep page read every entry between them first."""
    until = ask.until
    if start is not None and until is not None:
        if start.at < until:
            until = None  # every entry before the keyset is before `until`
        else:
            start = None  # every entry before `until` is before the keyset
    found = []
    if ask.since or until:
        found.append(_within(AUDIT.c.occurred_at, ask.since, until))
    if start is not None:
        found.append(below(start))
    return found


def _read(walk: Walk, ask: Ask, start: Key | None, limit: int, *, times: bool = True) -> list:
    """The walk's first `limit` entries in the range before `start`, newest first, as Keys
    (or ids alone, without `times`): read from its index alone (each branch, then
    merged)."""
    at, ident = AUDIT.c.occurred_at, AUDIT.c.id
    bounds = _bounds(ask, start)
    columns = (ident, at) if times or len(walk.branches) > 1 else (ident,)
    branches = [
        select(*columns).where(*branch, *bounds).order_by(at.desc(), ident.desc()).limit(limit)
        for branch in walk.branches
    ]
    if len(branches) == 1:
        query = branches[0]
    else:
        merged = union_all(*(select(b.subquery()) for b in branches)).subquery()
        query = select(merged.c.id, *([merged.c.occurred_at] if times else []))
        query = query.order_by(merged.c.occurred_at.desc(), merged.c.id.desc()).limit(limit)
    if not times:
        return db.session.scalars(query).all()
    return [Key(found_at, found_id) for found_id, found_at in db.session.execute(query)]


def among(ids: list[int]):
    """id is one of `ids`, as one parameter: thousands of them, one parameter each, take
    longer to send than to look up. An array on PostgreSQL, JSON on SQLite."""
    if db.session.get_bind().dialect.name == "postgresql":
        return AUDIT.c.id == any_(bindparam("ids", ids, type_=postgresql.ARRAY(Integer)))
    listed = select(literal_column("value")).select_from(func.json_each(json.dumps(ids)))
    return AUDIT.c.id.in_(listed.scalar_subquery())
