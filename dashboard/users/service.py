"""Read queries for the Users pages: the last-seen state the sync recorded in `people`.

Nothing here calls OneLogin or Workato. Lists are paged by key (`key > after`), never by
OFFSET, and the only counts are the one per state and the one of people needing attention,
so 100,000 people stay fast: a state, a role or both walk ix_people_state_key,
ix_people_role_key or ix_people_state_role_key in key order and stop after one page. The
search (any part of the name, email or display name) reads every person on SQLite, with
LIKE alone, off ix_people_key_search (see _search and _reads_all), and on PostgreSQL the
ones its trigram index ix_people_search says may match: for a search of one or two
letters, which no trigram holds, a page reads at most SHORT_WINDOW people and says how
far it looked (see _short_page). People with a warning and the newest row's time have an
index each.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy import func, or_, select, text

from dashboard.audit.models import AuditEntry
from dashboard.extensions import db
from dashboard.person import Person
from dashboard.sync.models import PLANNED, Item, Run
from dashboard.sync.planner import STATES

PAGE_SIZE = 50
NO_ROLE = "-"  # the role filter's value for people without a workato_role
MAX_ROLES = 200  # role names offered in the filter
ITEMS_PER_PERSON = 20
TIMELINE_SIZE = 50
# People a page of a one- or two-letter search reads at most on PostgreSQL (see _short_page).
SHORT_WINDOW = 20_000


@dataclass(frozen=True)
class Filters:
    """What the Users page is asked to show; every part optional."""

    q: str = ""
    state: str = ""
    role: str = ""
    after: str = ""

    @classmethod
    def read(cls, args) -> Filters:
        """From the query string; an unknown state is ignored rather than refused."""
        state = args.get("state", "").strip()
        return cls(
            q=args.get("q", "").strip()[:200],
            state=state if state in STATES else "",
            role=args.get("role", "").strip()[:128],
            after=args.get("after", "")[:320],
        )

    @property
    def active(self) -> bool:
        return bool(self.q or self.state or self.role)

    def args(self, **changed: str) -> dict[str, str]:
        """The query string for a link, empty parts left out."""
        values = {"q": self.q, "state": self.state, "role": self.role, "after": self.after}
        values.update(changed)
        return {k: v for k, v in values.items() if v}


@dataclass(frozen=True)
class Page:
    people: list[Person]
    next_after: str | None  # the key to continue after, None on the last page
    # The last key a short search looked at, when it stopped looking there before finding
    # a whole page (people after it remain): its people are every match up to it.
    searched_to: str | None = None


def state_counts() -> dict[str, int]:
    """People per provisioning state, every state present (zeros included). Each state
    present is found by a probe of ix_people_state_key and counted on it alone (a third of
    the time PostgreSQL takes to group the table's rows)."""
    sql = text(
        """
        WITH RECURSIVE found(state) AS (
            SELECT (SELECT state FROM people ORDER BY state LIMIT 1)
            UNION ALL
            SELECT (SELECT state FROM people WHERE state > found.state ORDER BY state LIMIT 1)
            FROM found WHERE found.state IS NOT NULL
        )
        SELECT state, (SELECT count(*) FROM people WHERE people.state = found.state)
        FROM found WHERE state IS NOT NULL
        """
    )
    found = {state: n for state, n in db.session.execute(sql)}
    counts = {state: found.pop(state, 0) for state in STATES}
    counts.update(found)  # a state this page does not know yet still shows
    return counts


def needing_attention() -> int:
    """People the last plan flagged loudly (active in Workato while OneLogin says no):
    counted on ix_people_danger_key, which holds only them."""
    query = select(func.count()).select_from(Person).where(Person.danger.is_not(None))
    return db.session.scalar(query) or 0


def read_at() -> datetime | None:
    """When the newest of these rows was read from OneLogin and Workato (by a preview, a
    run or a provision-now), or None before any."""
    return db.session.scalar(select(func.max(Person.seen_at)))


def roles() -> list[str]:
    """The workato_role values people have, for the filter: a "loose index scan" of
    ix_people_role_key, each step one probe for the next role up (a few dozen roles among
    100,000 people cost a few dozen probes, not a read of every person)."""
    sql = text(
        """
        WITH RECURSIVE found(role) AS (
            SELECT (SELECT role FROM people WHERE role IS NOT NULL ORDER BY role LIMIT 1)
            UNION ALL
            SELECT (SELECT role FROM people WHERE role > found.role ORDER BY role LIMIT 1)
            FROM found WHERE found.role IS NOT NULL
        )
        SELECT role FROM found WHERE role IS NOT NULL LIMIT :limit
        """
    )
    return list(db.session.scalars(sql, {"limit": MAX_ROLES}))


def page(filters: Filters, size: int = PAGE_SIZE) -> Page:
    if filters.q and len(filters.q) < 3 and db.session.get_bind().dialect.name != "sqlite":
        return _short_page(filters, size)
    if _reads_all(filters):
        # The ids first, read off ix_people_key_search alone; then their rows.
        ids = _filtered(select(Person.id), filters)
        if filters.after:
            ids = ids.where(Person.key > filters.after)
        ids = list(db.session.scalars(ids.order_by(Person.key).limit(size + 1)))
        query = select(Person).where(Person.id.in_(ids))
    else:
        query = _filtered(select(Person), filters)
        if filters.after:
            query = query.where(Person.key > filters.after)
        query = query.limit(size + 1)
    found = list(db.session.scalars(query.order_by(Person.key)))
    more = len(found) > size
    return Page(found[:size], found[size - 1].key if more else None)


def _short_page(filters: Filters, size: int) -> Page:
    """A search of one or two letters on PostgreSQL: no trigram holds it, and reading all
    100,000 people with ILIKE takes 150 ms. The page reads the next SHORT_WINDOW people (in
    key order, with the state and role asked) at most; finding fewer than a page among
    them, it says how far it looked, and the next page goes on from there."""
    window = _filtered(select(Person.key), replace(filters, q=""))
    if filters.after:
        window = window.where(Person.key > filters.after)
    window = window.order_by(Person.key).limit(SHORT_WINDOW).subquery()
    count, last = db.session.execute(select(func.count(), func.max(window.c.key))).one()
    if not count:
        return Page([], None)
    query = _filtered(select(Person), filters).where(Person.key <= last)
    if filters.after:
        query = query.where(Person.key > filters.after)
    found = list(db.session.scalars(query.order_by(Person.key).limit(size + 1)))
    if len(found) > size:
        return Page(found[:size], found[size - 1].key)
    if count < SHORT_WINDOW:
        return Page(found, None)
    return Page(found, last, searched_to=last)


def _reads_all(filters: Filters) -> bool:
    """Whether the search reads every person (SQLite: see _search). It reads them off
    ix_people_key_search, which holds in key order all that the search and the filters
    look at: a common search stops after a page, and no row is read but the page's. The
    state's or role's index would send it to each row the long way round (five to ten
    times slower when few match), so those filters are then written so that none serves
    them."""
    return bool(filters.q) and db.session.get_bind().dialect.name == "sqlite"


def _filtered(query, filters: Filters):
    reads_all = _reads_all(filters)

    def column(attribute):
        # coalesce(x, x) is x, but no index on x serves it.
        return func.coalesce(attribute, attribute) if reads_all else attribute

    if filters.q:
        query = query.where(_search(filters.q))
    if filters.state:
        query = query.where(column(Person.state) == filters.state)
    if filters.role == NO_ROLE:
        query = query.where(column(Person.role).is_(None))
    elif filters.role:
        query = query.where(column(Person.role) == filters.role)
    return query


def _search(q: str):
    """Any part of the user name, email or display name, ignoring case.

    On SQLite that was lower(x) LIKE lower('%q%'). SQLite's LIKE itself ignores the case of
    ASCII letters, and only those, as its lower() lowers only those: LIKE alone finds the
    same people, without lowering 300,000 strings a search (five times faster). On
    PostgreSQL it is ILIKE, which the trigram index ix_people_search serves."""
    columns = (Person.user_name, Person.email, Person.display_name)
    if db.session.get_bind().dialect.name == "sqlite":
        return or_(*(column.contains(q, autoescape=True) for column in columns))
    return or_(*(column.icontains(q, autoescape=True) for column in columns))


def get(person_id: int) -> Person | None:
    return db.session.get(Person, person_id)


def items_for(person: Person, limit: int = ITEMS_PER_PERSON) -> list[Item]:
    """The sync items sent (or being sent) for this person, newest first; a preview's
    items are not, as nothing was sent."""
    query = (
        select(Item)
        .join(Run, Run.id == Item.run_id)
        .where(Item.key == person.key, Run.status != PLANNED)
        .order_by(Item.id.desc())
        .limit(limit)
    )
    return list(db.session.scalars(query))


def matching_ids(filters: Filters, limit: int, *, in_onelogin: bool = False) -> list[int]:
    """Every person the filters match (not one page), by key; at most `limit`. With
    `in_onelogin`, only those OneLogin knows (role fields live there)."""
    query = _filtered(select(Person.id), filters)
    if in_onelogin:
        query = query.where(Person.onelogin_id.is_not(None))
    query = query.order_by(Person.key).limit(limit)
    return list(db.session.scalars(query))


def timeline(person: Person, limit: int = TIMELINE_SIZE) -> list[AuditEntry]:
    """The audit entries about this person (by email or userName), newest first by when
    they happened: an event imported from OneLogin today may have happened last year."""
    names = {n for n in (person.email, person.user_name) if n}
    query = (
        select(AuditEntry)
        .where(AuditEntry.target_user.in_(names))
        .order_by(AuditEntry.occurred_at.desc(), AuditEntry.id.desc())
        .limit(limit)
    )
    return list(db.session.scalars(query))


def by_onelogin_id(onelogin_id: int) -> Person | None:
    return db.session.scalar(select(Person).where(Person.onelogin_id == onelogin_id))


def get_many(ids: list[int]) -> list[Person]:
    """The people with these ids, by key (unknown ids left out)."""
    found: list[Person] = []
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        found += db.session.scalars(select(Person).where(Person.id.in_(chunk)))
    return sorted(found, key=lambda p: p.key)
