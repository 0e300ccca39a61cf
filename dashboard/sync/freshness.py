"""Apply sends only what is still true: what changed in OneLogin since a preview was read.

A preview may be up to 30 minutes old when it is applied. Two kinds of change can make it
wrong, and Apply (sync.service.apply) asks here about both before anything is queued:

- The dashboard's own changes in OneLogin (role edits inline, in bulk, by CSV or `flask
  roles import`; giving access; removing it three ways). Each is audited, so any recorded
  after the preview began reading makes the preview stale: `dashboard_changes` finds them,
  `stale_because` says which (who, what, when). Apply refuses: preview again.
- Changes made in OneLogin's own console. Apply reads OneLogin's events since the preview
  (`read_events`: a few pages at most), re-reads every user they concern that the plan
  covered or who may newly have the app, decides for them again with the planner, and puts
  that decision in the preview in place of the old one (`recheck`, with sync.redecide),
  saying so in the run's `note`. Where the events cannot be read, a preview older than
  EVENTS_GRACE is refused rather than guessed at.

Nothing here sends anything to Workato, and no database transaction stays open while
OneLogin or Workato is asked.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update

from dashboard.audit.models import AuditEntry
from dashboard.connections import errors
from dashboard.extensions import db
from dashboard.person import Person
from dashboard.sync import redecide
from dashboard.sync.models import PLANNED, Run
from dashboard.sync.render import TemplateError
from dashboard.timeutil import utcnow

# The audited actions that change OneLogin, in words. A failed removal that took the user
# out of some roles first ("removed" in its details) changed OneLogin too.
DASHBOARD_CHANGES = {
    "roles.edit": "role fields changed",
    "access.grant": "given the Workato app",
    "access.remove_app": "Workato app removed",
    "access.deactivate": "deactivated",
    "access.delete": "deleted",
}
EVENTS_GRACE = timedelta(minutes=5)  # younger, a preview goes ahead when events are unreadable
SKEW = timedelta(seconds=10)  # events are asked from a little earlier: clocks differ
MAX_PAGES = 4  # of 50 events: more changed than Apply re-reads one by one
MAX_USERS = 25
SHOWN = 5  # changes named in a refusal; users named in a note: 10

# OneLogin's event types that change what a plan reads about a user (GET /api/1/events/types):
# its attributes, status, existence or roles. 55 is the simulator's role removal
# (sandbox.onelogin_seed); in a real tenant it is a provisioning event, harmless to re-read.
USER_EVENTS = {
    4: "role added",
    13: "created",
    14: "updated",
    15: "deactivated",
    16: "activated",
    17: "deleted",
    21: "suspended",
    32: "reactivated",
    55: "role removed",
    147: "role added",
    148: "role removed",
    149: "role added",
    150: "role removed",
}
ROLE_ADDED = frozenset(k for k, v in USER_EVENTS.items() if v == "role added")
# The app added to or removed from a role: every member's access changed at once.
APP_EVENTS = {1: "added to", 2: "removed from"}
EVENT_TYPES = sorted({*USER_EVENTS, *APP_EVENTS})


# --- the dashboard's own changes (the audit trail) -------------------------------------


@dataclass(frozen=True)
class Change:
    """One change the dashboard made in OneLogin."""

    who: str
    what: str
    actor: str
    at: datetime


def dashboard_changes(since: datetime, limit: int = 200) -> list[Change]:
    """The dashboard's changes in OneLogin recorded at or after `since`, oldest first."""
    entries = db.session.scalars(
        select(AuditEntry)
        .where(
            AuditEntry.source == "dashboard",
            AuditEntry.action.in_(DASHBOARD_CHANGES),
            AuditEntry.outcome.in_(("success", "failed")),
            AuditEntry.occurred_at >= since,
        )
        .order_by(AuditEntry.id)
        .limit(limit)
    )
    return [
        _change(e) for e in entries if e.outcome == "success" or (e.details or {}).get("removed")
    ]


def _change(entry: AuditEntry) -> Change:
    what = DASHBOARD_CHANGES[entry.action]
    details = entry.details or {}
    changes = details.get("changes")
    if entry.action == "roles.edit" and isinstance(changes, dict) and changes:
        what = ", ".join(
            f"{name} {_value(old)} → {_value(new)}" for name, (old, new) in changes.items()
        )
    elif entry.outcome != "success":
        what = f"removed from {', '.join(details['removed'])} (then failed)"
    return Change(entry.target_user or "several users", what, entry.actor, entry.occurred_at)


def _value(value: Any) -> str:
    return str(value) if value else "(not set)"


def stale_because(changes: list[Change]) -> str | None:
    """Why the preview is stale, naming the changes (who, what, by whom, when), or None."""
    if not changes:
        return None
    said = "; ".join(
        f"{c.who}: {c.what} (by {c.actor} at {c.at:%H:%M} UTC)" for c in changes[:SHOWN]
    )
    more = f"; and {len(changes) - SHOWN} more" if len(changes) > SHOWN else ""
    return (
        f"Changed in OneLogin from the dashboard after this preview was read: {said}{more}. "
        "Preview again so that Apply sends only what is still true."
    )


# --- OneLogin's events (its console) ---------------------------------------------------


class TooManyEvents(Exception):
    """More changed in OneLogin than Apply re-reads: preview again."""


def read_events(onelogin, since: datetime) -> list[dict[str, Any]]:
    """The events of EVENT_TYPES since `since`, at most MAX_PAGES pages. Raises
    TooManyEvents past that, and ConnectionProblem when OneLogin does not answer."""
    events: list[dict[str, Any]] = []
    cursor = None
    for _ in range(MAX_PAGES):
        page, cursor = onelogin.events(since=since, event_type_ids=EVENT_TYPES, cursor=cursor)
        events += page
        if not cursor:
            return events
    raise TooManyEvents(
        f"More than {len(events)} changes were made in OneLogin since the preview: "
        "preview again so that Apply sends only what is still true."
    )


@dataclass
class Concern:
    """Who the events concern: OneLogin user id -> what happened, in words, oldest first."""

    users: dict[int, list[str]] = field(default_factory=dict)
    # Those with an event stamped after the preview began reading; the others were asked
    # for only because clocks differ (SKEW), and are not mentioned unless their plan changed.
    since_preview: set[int] = field(default_factory=set)
    refusal: str | None = None


def concerned(
    events: Iterable[Mapping[str, Any]], app_id: int, covered: set[int], read_from: datetime
) -> Concern:
    """The users to decide for again: those the plan covered (`covered`: OneLogin ids with
    a row in `people`, no-ops included) and anyone given a role, who may now have the app.
    Refuses when the app itself was added to or removed from a role, or too many changed."""
    concern = Concern()
    ordered = sorted(events, key=lambda e: e.get("id") or 0)
    wanted = set(covered)
    for event in ordered:
        kind = event.get("event_type_id")
        if kind in APP_EVENTS and event.get("app_id") == app_id:
            role = event.get("role_name") or f"role {event.get('role_id')}"
            concern.refusal = (
                f"The Workato app was {APP_EVENTS[kind]} the OneLogin role {role} at "
                f"{_when(event)}: the access of everyone in it changed. Preview again so "
                "that Apply sends only what is still true."
            )
            return concern
        if kind in ROLE_ADDED:
            wanted.add(event.get("user_id"))
    for event in ordered:
        kind, user_id = event.get("event_type_id"), event.get("user_id")
        if kind in USER_EVENTS and isinstance(user_id, int) and user_id in wanted:
            said = concern.users.setdefault(user_id, [])
            if USER_EVENTS[kind] not in said:
                said.append(USER_EVENTS[kind])
            if _at(event) is None or _at(event) >= read_from:
                concern.since_preview.add(user_id)
    if len(concern.users) > MAX_USERS:
        concern.refusal = (
            f"{len(concern.users)} users changed in OneLogin since the preview, more than "
            f"Apply re-reads ({MAX_USERS}): preview again so that Apply sends only what is "
            "still true."
        )
    return concern


def _at(event: Mapping[str, Any]) -> datetime | None:
    try:
        return datetime.fromisoformat(str(event.get("created_at")))
    except ValueError:
        return None


def _when(event: Mapping[str, Any]) -> str:
    moment = str(event.get("created_at") or "")
    return f"{moment[11:16]} UTC" if len(moment) >= 16 else "an unknown time"


# --- deciding again for those users ----------------------------------------------------


@dataclass
class Recheck:
    """What Apply learnt: a reason to refuse, or a note for the run page (or neither)."""

    refusal: str | None = None
    note: str | None = None


def recheck(
    preview_id: int,
    read_from: datetime,
    clients: tuple[Any, Any, int],
    template: Mapping[str, Any],
    roles: tuple[str, ...],
) -> Recheck:
    """Read OneLogin's events since the preview began reading (`read_from`), decide again
    for the users they concern and write those decisions into the preview. `clients` is
    (OneLogin client, SCIM client, the app's id); `roles` the role fields."""
    onelogin, scim, app_id = clients
    now = utcnow()
    db.session.commit()  # no transaction stays open while OneLogin answers
    try:
        with onelogin, scim:
            try:
                events = read_events(onelogin, read_from - SKEW)
            except errors.ConnectionProblem as problem:
                return _noted(preview_id, _unreadable(problem, now - read_from))
            except TooManyEvents as exc:
                return Recheck(refusal=str(exc))
            ids = {e["user_id"] for e in events if isinstance(e.get("user_id"), int)}
            known = _people(ids)
            db.session.commit()
            concern = concerned(events, app_id, set(known), read_from)
            if concern.refusal or not concern.users:
                return Recheck(refusal=concern.refusal)
            parameters = dict(onelogin.app(app_id).get("parameters") or {})
            patch = scim.capabilities().patch
            rereads = [
                redecide.reread(
                    onelogin, scim, app_id, uid, what, known.get(uid, []), template, parameters
                )
                for uid, what in concern.users.items()
            ]
    except errors.ConnectionProblem as problem:
        return Recheck(
            refusal=f"A user changed in OneLogin since the preview could not be read again: "
            f"{problem} Preview again."
        )
    try:
        decided = [
            (r, redecide.decide(r, known.get(r.user_id, []), template, parameters, patch, roles))
            for r in rereads
        ]
    except TemplateError as exc:
        return Recheck(refusal=f"The SCIM template cannot be rendered: {exc} Preview again.")
    try:
        return Recheck(note=redecide.write(preview_id, decided, concern.since_preview, now))
    except redecide.Replaced:
        return Recheck(refusal="That preview was replaced or already applied: preview again.")


def _unreadable(problem: errors.ConnectionProblem, age: timedelta) -> Recheck:
    minutes = max(1, round(age.total_seconds() / 60))
    if age > EVENTS_GRACE:
        return Recheck(
            refusal=f"OneLogin's events could not be read ({problem}), and this preview was "
            f"read {minutes} minutes ago: changes made in OneLogin since could not be "
            "checked. Preview again."
        )
    return Recheck(
        note=f"OneLogin's events could not be read ({problem}): changes made in OneLogin "
        f"in the {round(age.total_seconds())} s since the preview were not re-checked."
    )


def _noted(preview_id: int, checked: Recheck) -> Recheck:
    """Keep the note on the preview, only while it is still one."""
    if checked.note is not None:
        runs = Run.__table__
        db.session.execute(
            update(runs)
            .where(runs.c.id == preview_id, runs.c.status == PLANNED)
            .values(note=checked.note)
        )
        db.session.commit()
    return checked


def _people(ids: set[int]) -> dict[int, list[Any]]:
    """OneLogin id -> the people rows the last plan (or a one-user write) left for them."""
    if not ids:
        return {}
    rows = db.session.execute(
        select(
            Person.onelogin_id, Person.key, Person.user_name, Person.action, Person.had_app
        ).where(Person.onelogin_id.in_(sorted(ids)))
    ).all()
    found: dict[int, list[Any]] = {}
    for row in rows:
        found.setdefault(row.onelogin_id, []).append(row)
    return found
