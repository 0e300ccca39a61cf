"""How a page of the Audit page is found among a million entries: which index it walks, and
between which ids.

A page is the newest `limit` entries matching every filter, below a keyset. It is read by
walking index entries in id order, newest first, stopping after a page. The walks:

- the equality filters': actor, action or source alone on its own (column, id) index;
  together on (actor, action, source, id) or (action, source, id), one branch per
  combination of values the table holds (found by a loose index scan: an actor's actions,
  the sources of an actor's action), merged newest first. Filters that never meet (actor
  `sync` with source `dashboard`) then cost a few empty probes, not a walk through one
  filter's 600,000 entries;
- the user's: (target_user, id);
- the table itself, newest first;
- the time index: a time range holding fewer than CAP entries, read whole and sorted.

Each walk's entries are counted (on its index alone, up to the fewest found so far, so
counting stays cheap) and the fewest taken. A time range also becomes the lowest and highest
id it holds (dashboard.audit.spans), which every walk keeps between.

The filters a walk does not serve are checked on the rows it reaches, in chunks: a chunk of
ids is read from the walk's index alone, then those rows are read by id. Two plain queries,
so that no database can choose to read the table newest first instead (PostgreSQL would,
guessing from each column's statistics alone that filters which never meet often do).

A page checks at most CAP rows. When the walk holds more and they rarely pass, the page
says where it stopped looking (Found.window): its entries are every match down to there,
and the next page goes on below it. The Audit page says so and offers to look further,
rather than read a million rows to prove that nothing more matches.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import (
    Column,
    ColumnElement,
    Integer,
    and_,
    any_,
    bindparam,
    func,
    literal_column,
    select,
    text,
    union_all,
)
from sqlalchemy.dialects import postgresql

from dashboard.audit import spans
from dashboard.audit.models import AuditEntry
from dashboard.extensions import db

AUDIT = AuditEntry.__table__
# Rows a page checks at most; a walk with more entries than this is broad.
CAP = 20_000
# Ids read from a walk's index at a time, for checking their rows: the first chunk is a few
# pages' worth, each next one four times larger, up to this.
CHUNK = 5_000
# Branches one walk may merge; more (an actor with hundreds of actions) walk one index.
MAX_BRANCHES = 200
MAX_VALUES = 1000  # distinct values a loose index scan reads


@dataclass(frozen=True)
class Ask:
    """What a page asks, as values: every part optional."""

    user: str = ""
    actor: str = ""
    actions: tuple[str, ...] | None = None  # the exact actions; None for any (never empty)
    source: str = ""
    since: datetime | None = None  # inclusive
    until: datetime | None = None  # exclusive
    before: int | None = None  # the keyset: ids below it


@dataclass(frozen=True)
class Found:
    ids: list[int]  # newest first
    # (lowest, highest) id looked through, when the page stopped looking at CAP rows
    # checked, before finding a whole page: every match between them is in `ids`, and older
    # entries remain. None when every entry that could match was looked at.
    window: tuple[int, int] | None = None


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
    """Index entries in id order: one branch per index range (the conditions it seeks),
    merged newest first; or, `sorted_after`, read whole and then sorted."""

    name: str
    branches: tuple[tuple[ColumnElement[bool], ...], ...]
    serves: frozenset[str]  # the filters its index serves; the others are checked on rows
    sorted_after: bool = False


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
        since, until = ask.since, ask.until

        def in_range(c):
            return and_(*([c >= since] if since else []), *([c < until] if until else []))

        found["time"] = Term(AUDIT.c.occurred_at, in_range)
    return found


def page_ids(ask: Ask, limit: int) -> Found:
    """The ids of the newest `limit` entries the ask matches, newest first."""
    filters = terms(ask)
    start = ask.before - 1 if ask.before is not None else _highest()
    if start is None or start < 1:
        return Found([])
    low, high = None, start
    if "time" in filters:
        found = spans.span(ask.since, ask.until, start)
        if found is None:
            return Found([])
        low, high = found.low, found.high
    walk, entries = _choose(ask, filters, low, high)
    if entries == 0 or not walk.branches:  # (no branch: an actor who never did anything)
        return Found([])
    checked = [term.unindexed() for name, term in filters.items() if name not in walk.serves]
    if walk.sorted_after:  # fewer than CAP entries: all checked, then sorted
        query = select(AUDIT.c.id).where(*walk.branches[0], *checked)
        query = query.where(*_ranges(low, high, plain=False))
        return Found(list(db.session.scalars(query.order_by((AUDIT.c.id + 0).desc()).limit(limit))))
    if not checked:
        return Found(list(db.session.scalars(_ids(walk, low, high, limit))))
    return _checked(walk, checked, low, high, limit)


def _checked(walk: Walk, checked: list, low: int | None, high: int, limit: int) -> Found:
    """The walk's entries, read a chunk at a time and checked on their rows, until a page
    is found, the walk ends, or CAP rows were checked."""
    found: list[int] = []
    seen, top, size = 0, high, min(4 * limit, CHUNK, CAP)
    while True:
        chunk = list(db.session.scalars(_ids(walk, low, top, size)))
        if not chunk:
            return Found(found)
        passed = set(db.session.scalars(select(AUDIT.c.id).where(_among(chunk), *checked)))
        found += [ident for ident in chunk if ident in passed][: limit - len(found)]
        seen += len(chunk)
        if len(found) == limit or len(chunk) < size:
            return Found(found)
        if seen >= CAP:
            return Found(found, (chunk[-1], high))
        top, size = chunk[-1] - 1, min(4 * size, CHUNK, CAP - seen)


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


def _walks(ask: Ask, filters: dict[str, Term]) -> list[Walk]:
    """The ways to find the page, in order of preference when they count alike."""
    found = []
    if ask.user:
        found.append(Walk("user", ((AUDIT.c.target_user == ask.user,),), frozenset({"user"})))
    equal = _equality_walk(ask)
    if equal is not None:
        found.append(equal)
    found.append(Walk("table", ((),), frozenset()))
    if "time" in filters:
        time = filters["time"].on_index()
        found.append(Walk("time", ((time,),), frozenset({"time"}), sorted_after=True))
    return found


def _equality_walk(ask: Ask) -> Walk | None:
    """Actor, action and source, as far as an index in id order serves them together."""
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


def _choose(
    ask: Ask, filters: dict[str, Term], low: int | None, high: int
) -> tuple[Walk, int | None]:
    """The walk with the fewest entries between the ids, and how many (CAP: broad; None:
    not counted). A walk that serves every filter is taken without counting: it reads
    matches only. The user's walk is counted first, as it is usually the fewest and the
    others are counted up to it; the time index last, read whole only when every walk
    between the ids is broad (entries recorded long after they happened widen a range's
    ids)."""
    walks = _walks(ask, filters)
    if set(filters) <= walks[0].serves:
        return walks[0], None
    # Every walk broad: the one serving the most filters leaves the fewest to check.
    in_order = [walk for walk in walks if not walk.sorted_after]
    best, fewest = max(in_order, key=lambda w: len(w.serves)), CAP
    for walk in walks:
        # The time index, only for a range whose ids lie far apart: one whose entries were
        # recorded as they happened spans about as many ids as it holds entries.
        if walk.sorted_after and (fewest < CAP or low is None or high - low < 10 * CAP):
            break
        count = _entries(walk, ask, low, high, fewest)
        if count < fewest:
            best, fewest = walk, count
        if fewest == 0:
            break
    return best, fewest


def _entries(walk: Walk, ask: Ask, low: int | None, high: int, limit: int) -> int:
    """A walk's entries between the ids, counted up to `limit`."""
    if walk.sorted_after:
        return spans.count(ask.since, ask.until, limit)
    if not walk.branches:
        return 0
    if walk.name == "table":
        # Ids are unique: the span's width bounds its entries (reading the table to count
        # them would cost more than it saves).
        return limit if low is None else max(0, min(limit, high - low + 1))
    ranges = _ranges(low, high)
    parts = [_select_1(*branch, *ranges) for branch in walk.branches]
    return _count(parts[0] if len(parts) == 1 else union_all(*parts), limit)


def _select_1(*conditions):
    return select(literal_column("1")).select_from(AUDIT).where(*conditions)


def _count(query, limit: int) -> int:
    """The rows `query` gives, counted up to `limit`."""
    counted = query.limit(limit).subquery()
    return db.session.scalar(select(func.count()).select_from(counted)) or 0


# --- the query ------------------------------------------------------------------------------


def _ranges(low: int | None, high: int | None, *, plain=True) -> list:
    """The id conditions; `plain=False` writes them on `id + 0`, which no index serves, so
    the database keeps to the walk's own index (the time index)."""
    ident = AUDIT.c.id if plain else AUDIT.c.id + 0
    found = []
    if high is not None:
        found.append(ident <= high)
    if low is not None:
        found.append(ident >= low)
    return found


def _ids(walk: Walk, low: int | None, high: int, limit: int):
    """The ids of the walk's first `limit` entries between the ids, newest first: read from
    its index alone (each branch, then merged)."""
    branches = [
        select(AUDIT.c.id)
        .where(*branch, *_ranges(low, high))
        .order_by(AUDIT.c.id.desc())
        .limit(limit)
        for branch in walk.branches
    ]
    if len(branches) == 1:
        return branches[0]
    merged = union_all(*(select(b.subquery().c.id) for b in branches)).subquery()
    return select(merged.c.id).order_by(merged.c.id.desc()).limit(limit)


def _among(ids: list[int]):
    """id is one of `ids`, as one parameter: thousands of them, one parameter each, take
    longer to send than to look up. An array on PostgreSQL, JSON on SQLite."""
    if db.session.get_bind().dialect.name == "postgresql":
        return AUDIT.c.id == any_(bindparam("ids", ids, type_=postgresql.ARRAY(Integer)))
    listed = select(literal_column("value")).select_from(func.json_each(json.dumps(ids)))
    return AUDIT.c.id.in_(listed.scalar_subquery())


def _highest() -> int | None:
    return db.session.scalar(select(func.max(AUDIT.c.id)))
