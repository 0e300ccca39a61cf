"""Deciding again, at Apply, for users changed in OneLogin since a preview, and putting
those decisions into the preview: one user read from OneLogin (and their app assignment)
and from Workato, decided by the same planner as a full plan, as sync.one_user does, then
written in place of what the preview said for them (items, counts, total, their row in
`people`) and said in the run's note. Asked by sync.freshness; sends nothing to Workato.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, insert, or_, select, update

from dashboard.connections import errors
from dashboard.extensions import db
from dashboard.person import Person
from dashboard.sync import people, planner
from dashboard.sync.models import PLANNED, Item, Run
from dashboard.sync.render import render


@dataclass
class Reread:
    """One user as OneLogin and Workato hold them now, with what the events said."""

    user_id: int
    what: list[str]
    user: dict[str, Any] | None  # None: deleted in OneLogin
    has_app: bool
    workato: list[Any]  # ScimUser: under their rendered userName and their known keys


def reread(onelogin, scim, app_id, user_id, what, rows, template, parameters) -> Reread:
    """The user now: from OneLogin (None once deleted there), whether they have the app, and
    their Workato account under any userName they have had. Raises ConnectionProblem."""
    try:
        user = dict(onelogin.user(user_id))
    except errors.ConnectionProblem as problem:
        if problem.kind != errors.NOT_FOUND:
            raise
        user = None  # deleted in OneLogin
    has_app = user is not None and any(a["id"] == app_id for a in onelogin.user_apps(user_id))
    names = {row.user_name.casefold(): row.user_name for row in rows}
    if user is not None:
        name = render(template, user, parameters).get("userName")
        if isinstance(name, str) and name:
            names.setdefault(name.casefold(), name)
    workato = {}
    for name in names.values():
        found = scim.find_user(name)
        if found is not None:
            workato[found.id] = found
    return Reread(user_id, what, user, has_app, list(workato.values()))


def decide(reread: Reread, rows, template, parameters, patch, role_fields):
    """The planner's decisions for this one user (none, one, or two when their Workato
    account and their new userName's are both there). `rows`: their people rows."""
    earlier = next((row.key for row in rows if row.had_app), None)
    had = {reread.user_id: earlier} if earlier else {}
    return planner.plan(
        template,
        [reread.user] if reread.user is not None else [],
        {reread.user_id} if reread.has_app else set(),
        parameters,
        reread.workato,
        had,
        patch=patch,
        role_fields=role_fields,
    ).decisions


class Replaced(Exception):
    """The preview was replaced or applied meanwhile: nothing was written."""


def write(preview_id: int, decided, since_preview: set[int], now: datetime) -> str | None:
    """Put the fresh decisions in the preview, in one transaction, only while it is still a
    preview (else Replaced): its items, counts and total, each person's row, and the note,
    which is returned. A user re-read only for the clock margin whose plan did not change
    is not mentioned."""
    runs = Run.__table__
    counts = db.session.scalar(
        update(runs)
        .where(runs.c.id == preview_id, runs.c.status == PLANNED)
        .values(note=None)
        .returning(runs.c.counts)
    )
    if counts is None:
        db.session.rollback()
        raise Replaced
    counts = dict(counts)
    lines = []
    for reread, decisions in decided:
        keys = {d.key for d in decisions}
        rows = db.session.execute(
            select(Person.key, Person.action).where(
                or_(Person.onelogin_id == reread.user_id, Person.key.in_(keys))
            )
        ).all()
        if not rows and not decisions:
            continue  # neither covered by the plan nor now: nothing to say
        keys |= {row.key for row in rows}
        before = _items(preview_id, reread.user_id, keys)
        db.session.execute(
            delete(Item.__table__).where(
                Item.run_id == preview_id,
                or_(Item.key.in_(keys), Item.onelogin_id == reread.user_id),
            )
        )
        writes = [d for d in decisions if d.action in planner.WRITES]
        if writes:
            db.session.execute(insert(Item.__table__), [Item.row(preview_id, d) for d in writes])
        for row in rows:
            counts[row.action] = max(0, counts.get(row.action, 0) - 1)
        for decision in decisions:
            counts[decision.action] = counts.get(decision.action, 0) + 1
            people.record_one(decision, now)
        after = {d.key: (d.action, d.request) for d in writes}
        if before != after or reread.user_id in since_preview:
            lines.append(_line(reread, decisions, before != after))
    total = db.session.scalar(
        select(func.count()).select_from(Item).where(Item.run_id == preview_id)
    )
    note = rechecked_note(lines)
    db.session.execute(
        update(runs).where(runs.c.id == preview_id).values(counts=counts, total=total, note=note)
    )
    db.session.commit()
    return note


def _items(preview_id: int, user_id: int, keys: set[str]) -> dict[str, tuple]:
    rows = db.session.execute(
        select(Item.key, Item.action, Item.request).where(
            Item.run_id == preview_id, or_(Item.key.in_(keys), Item.onelogin_id == user_id)
        )
    ).all()
    return {row.key: (row.action, row.request) for row in rows}


def _line(reread: Reread, decisions, changed: bool) -> str:
    """ "ada@example.com (updated; now update)": who, what the events said, what it does."""
    user = reread.user or {}
    who = next((d.email or d.user_name for d in decisions), None)
    who = who or user.get("email") or user.get("username") or f"OneLogin user {reread.user_id}"
    if not changed:
        result = "plan unchanged"
    else:
        writes = sorted({d.action for d in decisions if d.action in planner.WRITES})
        result = f"now {', '.join(writes)}" if writes else "now nothing to send"
    return f"{who} ({', '.join(reread.what)}; {result})"


def rechecked_note(lines: list[str], shown: int = 10) -> str | None:
    """The run page's sentence: "Re-read 2 users changed in OneLogin since the preview:
    a@x (updated; now update), b@y (role removed; plan unchanged)."."""
    if not lines:
        return None
    users = "1 user" if len(lines) == 1 else f"{len(lines)} users"
    more = f", and {len(lines) - shown} more" if len(lines) > shown else ""
    return (
        f"Re-read {users} changed in OneLogin since the preview: {', '.join(lines[:shown])}{more}."
    )
