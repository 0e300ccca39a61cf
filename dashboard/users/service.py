"""Read queries for the Users pages: the last-seen state the sync recorded in `people`.

Nothing here calls OneLogin or Workato. Lists are paged by key (`key > after`), never by
OFFSET, and the only counts are the one per state and the one of people needing attention,
so 100,000 people stay fast: a state or role filter walks ix_people_state_key /
ix_people_role_key in key order and stops after one page.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, or_, select

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


def state_counts() -> dict[str, int]:
    """People per provisioning state, every state present (zeros included)."""
    rows = db.session.execute(select(Person.state, func.count()).group_by(Person.state))
    found = {state: n for state, n in rows}
    counts = {state: found.pop(state, 0) for state in STATES}
    counts.update(found)  # a state this page does not know yet still shows
    return counts


def needing_attention() -> int:
    """People the last plan flagged loudly (active in Workato while OneLogin says no)."""
    query = select(func.count()).select_from(Person).where(Person.danger.is_not(None))
    return db.session.scalar(query) or 0


def read_at() -> datetime | None:
    """When the newest of these rows was read from OneLogin and Workato (by a preview, a
    run or a provision-now), or None before any."""
    return db.session.scalar(select(func.max(Person.seen_at)))


def roles() -> list[str]:
    """The workato_role values people have, for the filter."""
    query = (
        select(Person.role).where(Person.role.is_not(None)).distinct().order_by(Person.role)
    ).limit(MAX_ROLES)
    return list(db.session.scalars(query))


def page(filters: Filters, size: int = PAGE_SIZE) -> Page:
    query = _filtered(select(Person), filters)
    if filters.after:
        query = query.where(Person.key > filters.after)
    found = list(db.session.scalars(query.order_by(Person.key).limit(size + 1)))
    more = len(found) > size
    return Page(found[:size], found[size - 1].key if more else None)


def _filtered(query, filters: Filters):
    if filters.state:
        query = query.where(Person.state == filters.state)
    if filters.role == NO_ROLE:
        query = query.where(Person.role.is_(None))
    elif filters.role:
        query = query.where(Person.role == filters.role)
    if filters.q:
        query = query.where(
            or_(
                Person.user_name.icontains(filters.q, autoescape=True),
                Person.email.icontains(filters.q, autoescape=True),
                Person.display_name.icontains(filters.q, autoescape=True),
            )
        )
    return query


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
