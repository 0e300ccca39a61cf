"""Writing what a plan and a run learn about each person into the `people` table.

A plan rewrites the table to match itself in one transaction, a slice of decisions at a time
(PlanRecorder): new people inserted, changed ones updated, those neither side holds any more
deleted. Only rows whose values changed are written, so a no-op plan over 100,000 people
writes next to nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, case, delete, func, insert, select, update

from dashboard.connections.scim_models import ScimUser
from dashboard.extensions import db
from dashboard.person import Person
from dashboard.sync.models import ITEM_PENDING, ITEM_RUNNING, Item
from dashboard.sync.planner import (
    DRIFT,
    FAILED,
    IN_SYNC,
    NOT_PROVISIONED,
    ORPHANED,
    SUSPENDED,
)

people = Person.__table__
# The columns a plan decides; compared to skip unchanged rows.
PLANNED = (
    "user_name",
    "display_name",
    "email",
    "onelogin_id",
    "onelogin_status",
    "has_app",
    "had_app",
    "scim_id",
    "workato_active",
    "role",
    "roles",
    "state",
    "action",
    "reason",
    "changes",
    "danger",
    "orphan_kind",
)
# What a person's state returns to when their write did not happen (cancel, stop).
STATE_BEFORE = {"create": NOT_PROVISIONED, "update": DRIFT, "reactivate": DRIFT, "suspend": DRIFT}


def had_app(onelogin_id: int | None = None) -> dict[int, str]:
    """OneLogin id -> key of everyone (or of the one person) seen with the app in an
    earlier plan."""
    query = select(people.c.onelogin_id, people.c.key).where(
        people.c.had_app.is_(True), people.c.onelogin_id.is_not(None)
    )
    if onelogin_id is not None:
        query = query.where(people.c.onelogin_id == onelogin_id)
    return {found: key for found, key in db.session.execute(query)}


class PlanRecorder:
    """Makes the table say what a plan found, a slice of decisions at a time as the plan
    makes them: new people inserted, changed ones updated (only rows whose values changed
    are written, so a no-op plan over 100,000 people writes next to nothing), and at
    `finish` those no decision covered deleted. The caller commits, once at the end."""

    def __init__(self, seen_at: datetime) -> None:
        self.seen_at = seen_at
        self.top = db.session.scalar(select(func.max(people.c.id))) or 0
        # One byte per row there was before this plan: 1 once a decision covers it.
        self.covered = bytearray(self.top + 1)
        # Rows whose OneLogin id this plan gave to another person: written again, as a
        # change, when their own decision comes.
        self.moved: set[int] = set()

    def add(self, decisions: Iterable) -> None:
        wanted = {d.key: d for d in decisions}
        self._free_ids(wanted)
        columns = [people.c.id, people.c.key, people.c.last_error, *(people.c[n] for n in PLANNED)]
        existing = {}
        for chunk in _chunks(list(wanted), 500):
            query = select(*columns).where(people.c.key.in_(chunk))
            existing.update({row.key: row for row in db.session.execute(query)})
        inserts, updates = [], []
        for key, decision in wanted.items():
            values = _values(decision, decision.had_app_before)
            row = existing.get(key)
            if row is None:
                inserts.append(
                    {"key": key, "seen_at": self.seen_at, "last_error": decision.error, **values}
                )
                continue
            if row.id <= self.top:
                self.covered[row.id] = 1
            if (
                row.id in self.moved
                or any(_differs(getattr(row, n), values[n]) for n in PLANNED)
                or (decision.error and decision.error != row.last_error)
            ):
                error = decision.error or (row.last_error if decision.state == FAILED else None)
                updates.append(
                    {"_id": row.id, "seen_at": self.seen_at, "last_error": error, **values}
                )
        if inserts:
            db.session.execute(insert(people), inserts)
        if updates:
            changed = update(people).where(people.c.id == bindparam("_id"))
            db.session.execute(changed, updates)

    def _free_ids(self, wanted: dict[str, Any]) -> None:
        """A OneLogin id now belongs to another key (a changed userName, an orphan matched
        anew): taken from whoever holds it first, as the unique constraint is checked row
        by row."""
        owner_of = {d.onelogin_id: key for key, d in wanted.items() if d.onelogin_id is not None}
        moved = []
        for chunk in _chunks(list(owner_of), 500):
            query = select(people.c.id, people.c.key, people.c.onelogin_id).where(
                people.c.onelogin_id.in_(chunk)
            )
            moved += [r.id for r in db.session.execute(query) if owner_of[r.onelogin_id] != r.key]
        for chunk in _chunks(moved, 500):
            db.session.execute(
                update(people).where(people.c.id.in_(chunk)).values(onelogin_id=None)
            )
        self.moved.update(moved)

    def finish(self) -> None:
        """Delete the people this plan found on neither side: the rows there were before it
        that no decision covered (read by id, 10,000 at a time)."""
        after = 0
        while after < self.top:
            ids = db.session.scalars(
                select(people.c.id)
                .where(people.c.id > after, people.c.id <= self.top)
                .order_by(people.c.id)
                .limit(10_000)
            ).all()
            if not ids:
                return
            gone = [i for i in ids if not self.covered[i]]
            for chunk in _chunks(gone, 500):
                db.session.execute(delete(people).where(people.c.id.in_(chunk)))
            after = ids[-1]


def mark_pending(run_id: int) -> None:
    """Everyone with a write waiting in the run is `pending` (one statement)."""
    waiting = select(Item.key).where(
        Item.run_id == run_id, Item.status.in_((ITEM_PENDING, ITEM_RUNNING))
    )
    db.session.execute(update(people).where(people.c.key.in_(waiting)).values(state="pending"))


def record_outcomes(outcomes: list[tuple[str, str, bool, ScimUser | None, str | None]]) -> None:
    """Writes' results, as their people's states: (key, action, ok, Workato's user after it
    or None, error). One statement for each kind of result, however many people (a sync
    round's). The caller commits."""
    # Active in Workato without the app in OneLogin (an orphan an admin reactivated) is
    # still an orphan, not "in sync".
    orphan = people.c.has_app.is_(False)
    done = {
        "action": "noop",
        "changes": {},
        "danger": None,
        "last_error": None,
        "scim_id": func.coalesce(bindparam("b_scim_id"), people.c.scim_id),
    }
    kinds = {
        "active": {
            **done,
            "state": case((orphan, ORPHANED), else_=IN_SYNC),
            "reason": case(
                (orphan, "Active in Workato; OneLogin does not grant the app."),
                else_="In sync.",
            ),
            "workato_active": True,
        },
        "suspended": {
            **done,
            "state": SUSPENDED,
            "reason": "Suspended in Workato.",
            "workato_active": False,
        },
        "failed": {"state": FAILED, "last_error": bindparam("b_error")},
    }
    rows: dict[str, list[dict[str, Any]]] = {kind: [] for kind in kinds}
    for key, action, ok, user, error in outcomes:
        if not ok:
            rows["failed"].append({"b_key": key, "b_error": error})
            continue
        active = user.active if user is not None else action != "suspend"
        scim_id = user.id if user is not None else None
        rows["active" if active else "suspended"].append({"b_key": key, "b_scim_id": scim_id})
    for kind, values in kinds.items():
        if rows[kind]:
            statement = update(people).where(people.c.key == bindparam("b_key")).values(values)
            db.session.execute(statement, rows[kind])


def release_pending(run_ids: list[int]) -> None:
    """People whose write in these runs was not done (cancel, stop, crash) get their state
    back: one statement per action, however many people. The caller commits."""
    for action, state in STATE_BEFORE.items():
        waiting = select(Item.key).where(
            Item.run_id.in_(run_ids),
            Item.action == action,
            Item.status.in_((ITEM_PENDING, ITEM_RUNNING)),
        )
        db.session.execute(
            update(people)
            .where(people.c.state == "pending", people.c.key.in_(waiting))
            .values(state=state)
        )


def _values(decision, had_before: bool) -> dict[str, Any]:
    return {
        "user_name": decision.user_name,
        "display_name": decision.display_name,
        "email": decision.email,
        "onelogin_id": decision.onelogin_id,
        "onelogin_status": decision.onelogin_status,
        "has_app": decision.has_app,
        "had_app": bool(had_before or decision.has_app),
        "scim_id": decision.scim_id,
        "workato_active": decision.workato_active,
        "role": (decision.roles.get("workato_role") or None) if decision.roles else None,
        "roles": decision.roles,
        "state": decision.state,
        "action": decision.action,
        "reason": decision.reason,
        "changes": decision.changes,
        "danger": decision.danger,
        "orphan_kind": decision.orphan_kind,
    }


def _differs(old: Any, new: Any) -> bool:
    if isinstance(new, dict | list):
        return json.dumps(old, sort_keys=True) != json.dumps(new, sort_keys=True)
    return old != new


def _chunks(values: list, size: int):
    for start in range(0, len(values), size):
        yield values[start : start + size]


def record_one(decision, seen_at: datetime) -> None:
    """One person's decision (provisioning on demand), leaving everyone else as they are."""
    existing = db.session.execute(
        select(people.c.id, people.c.had_app).where(people.c.key == decision.key)
    ).first()
    values = _values(decision, bool(existing and existing.had_app))
    values |= {"seen_at": seen_at, "last_error": decision.error}
    if existing is None:
        if decision.onelogin_id is not None:  # their userName changed since the last plan
            db.session.execute(delete(people).where(people.c.onelogin_id == decision.onelogin_id))
        db.session.execute(insert(people).values(key=decision.key, **values))
    else:
        db.session.execute(update(people).where(people.c.id == existing.id).values(**values))


def dangers(keys: list[str]) -> dict[str, str]:
    """key -> the loud warning the last plan recorded, for the people that have one."""
    if not keys:
        return {}
    query = select(people.c.key, people.c.danger).where(
        people.c.key.in_(keys), people.c.danger.is_not(None)
    )
    return {key: value for key, value in db.session.execute(query)}


def ids(keys: list[str]) -> dict[str, int]:
    """key -> person id, to link a sync item to its user page."""
    if not keys:
        return {}
    query = select(people.c.key, people.c.id).where(people.c.key.in_(keys))
    return {key: value for key, value in db.session.execute(query)}
