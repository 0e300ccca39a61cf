"""OneLogin's events and Workato's activity log, imported into the audit trail beside our own
entries (source `onelogin` / `workato`), so a user's timeline tells the whole story.

Incremental: each source remembers the newest time it has seen (audit_imports) and asks only
from there; an entry already here (same source and id there) is skipped, so re-importing an
overlap adds nothing. OneLogin: the provisioning-related event types (DESIGN.md §2) about the
Workato app or about the people the dashboard knows. Workato: every activity-log entry, when
the developer API is connected.

Two imports at once (the button twice, a run's import beside `flask audit import`) both end
well, each entry imported once: an import looks for what is already here only once it holds
the audit chain's head (dashboard.audit.chain.hold), so the second waits for the first to
commit and then skips what it added; the (source, id) unique key stays the backstop. One odd
record never stops an import for good (it would fail again from the same mark each time):
a value longer than its column is cut to fit, and the details say what was cut.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from dashboard import audit
from dashboard.audit import chain
from dashboard.audit.models import AuditEntry, AuditImport
from dashboard.connections import errors
from dashboard.connections import service as connections
from dashboard.connections.clients import client_for
from dashboard.connections.models import ONELOGIN, WORKATO_API
from dashboard.connections.vault import SecretUnreadable
from dashboard.extensions import db
from dashboard.person import Person
from dashboard.timeutil import utcnow

ONELOGIN_SOURCE, WORKATO_SOURCE = "onelogin", "workato"
# Assigned a role (how users get the app), provisioned, provisioning failed, and OneLogin's
# provisioning range 51-65 (updated, suspended, removed from a role, pending approval, ...).
PROVISIONING_TYPES = frozenset({4, 25, 26, *range(51, 66)})
FAILED_TYPES = frozenset({26})
# Each import after the first starts a little before the newest time seen, as a source may
# log an event late (the ids make the overlap harmless).
OVERLAP = timedelta(minutes=10)
# Columns a source's value may overflow (external_id has its own rule: see _fit).
BOUNDED = ("actor", "action", "target_user")
KEPT = 2000  # characters of an over-long value kept in the entry's details


@dataclass
class Imported:
    source: str
    added: int = 0
    skipped: int = 0  # already here
    problem: str | None = None  # why this source could not be read (None: fine or not set up)
    configured: bool = True

    def as_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "configured": self.configured,
            "added": self.added,
            "skipped": self.skipped,
            "problem": self.problem,
        }


@dataclass
class Report:
    sources: list[Imported] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(s.problem is None for s in self.sources)

    @property
    def added(self) -> int:
        return sum(s.added for s in self.sources)


def import_all(actor: str) -> Report:
    """Import from every configured source; one failing does not stop the other. Audited."""
    report = Report([_onelogin(), _workato()])
    audit.record(
        "audit.import",
        actor=actor,
        outcome="success" if report.ok else "failed",
        details={
            s.source: (s.problem or f"{s.added} added, {s.skipped} already here")
            for s in report.sources
            if s.configured
        },
    )
    db.session.commit()
    return report


def _onelogin() -> Imported:
    result = Imported(ONELOGIN_SOURCE)
    connection = connections.with_secret(ONELOGIN)
    if connection is None:
        result.configured = False
        return result
    since = _since(ONELOGIN_SOURCE)
    try:
        with client_for(connection) as client:
            types = {t["id"]: t["name"] for t in client.event_types()}
            wanted = sorted(PROVISIONING_TYPES & set(types)) or sorted(PROVISIONING_TYPES)
            events = list(_onelogin_events(client, since, wanted))
    except (errors.ConnectionProblem, SecretUnreadable) as problem:
        return _failed(result, str(problem))
    people = _people()
    relevant = [
        e
        for e in events
        if e.get("id") is not None
        and (e.get("app_id") == connection.app_id or e.get("user_id") in people)
    ]
    _add(result, (_from_onelogin(e, types, people) for e in relevant))
    return result


def _onelogin_events(client, since: datetime | None, types: list[int]) -> Iterator[dict]:
    cursor = None
    while True:
        page, cursor = client.events(since=since, event_type_ids=types, cursor=cursor)
        yield from page
        if not cursor:
            return


def _from_onelogin(event: dict[str, Any], types: dict[int, str], people) -> dict[str, Any]:
    kind = types.get(event.get("event_type_id"), f"EVENT_{event.get('event_type_id')}")
    who = people.get(event.get("user_id"))
    details = {
        k: event[k]
        for k in ("user_name", "role_name", "app-name", "error_description", "notes")
        if event.get(k)
    }
    return {
        "external_id": str(event["id"]),
        "occurred_at": _when(event.get("created_at")),
        "actor": event.get("actor_user_name") or "OneLogin",
        "action": f"onelogin.{kind.lower()}",
        "outcome": "failed" if event.get("event_type_id") in FAILED_TYPES else "success",
        "target_user": who or event.get("user_name"),
        "details": details,
    }


def _workato() -> Imported:
    result = Imported(WORKATO_SOURCE)
    connection = connections.with_secret(WORKATO_API)
    if connection is None:
        result.configured = False
        return result
    since = _since(WORKATO_SOURCE)
    try:
        with client_for(connection) as client:
            entries = list(client.activity_logs(since=since))
    except (errors.ConnectionProblem, SecretUnreadable) as problem:
        return _failed(result, str(problem))
    _add(result, (_from_workato(e) for e in entries if e.get("id") is not None))
    return result


def _from_workato(entry: dict[str, Any]) -> dict[str, Any]:
    user = entry.get("user") if isinstance(entry.get("user"), dict) else {}
    resource = entry.get("resource") if isinstance(entry.get("resource"), dict) else {}
    details = {"resource": resource.get("name")} if resource.get("name") else {}
    if isinstance(entry.get("details"), dict):
        details |= {k: v for k, v in entry["details"].items() if isinstance(v, str | int)}
    target = resource.get("email") or (
        resource.get("name") if resource.get("type") == "User" else None
    )
    return {
        "external_id": str(entry["id"]),
        "occurred_at": _when(entry.get("timestamp")),
        "actor": user.get("email") or user.get("name") or "Workato",
        "action": f"workato.{entry.get('event_type') or 'activity'}",
        "outcome": "success",
        "target_user": target,
        "details": details,
    }


def _add(result: Imported, entries: Iterable[dict[str, Any]]) -> None:
    """Record the entries not already here, oldest first, and move the source's mark."""
    fresh = sorted((_fit(e) for e in entries), key=lambda e: e["occurred_at"])
    chain.hold()  # before looking: a racing import has committed, or waits for this one
    state = _state(result.source)
    ids = [e["external_id"] for e in fresh]
    have: set[str] = set()
    for start in range(0, len(ids), 500):
        have |= set(
            db.session.scalars(
                select(AuditEntry.external_id).where(
                    AuditEntry.source == result.source,
                    AuditEntry.external_id.in_(ids[start : start + 500]),
                )
            )
        )
    for entry in fresh:
        if entry["external_id"] in have:
            result.skipped += 1
            continue
        have.add(entry["external_id"])
        audit.record(source=result.source, **entry)
        result.added += 1
        state.last_at = max(state.last_at or entry["occurred_at"], entry["occurred_at"])
    state.imported_at, state.imported, state.problem = utcnow(), result.added, None
    db.session.commit()


def _fit(entry: dict[str, Any]) -> dict[str, Any]:
    """The entry with every value the table bounds made to fit its column: an over-long
    actor, action or target user cut (ending in "…"), an over-long id replaced by its
    SHA-256 (the same each time, so a re-import still skips it). The details say what was
    cut, with its length and the value as the source sent it (its first KEPT characters)."""
    columns = AuditEntry.__table__.c
    cut: dict[str, dict[str, Any]] = {}
    for name in BOUNDED:
        if entry.get(name) is None:
            continue
        value = entry[name] = str(entry[name])
        size = columns[name].type.length
        if len(value) > size:
            cut[name] = {"length": len(value), "sent": value[:KEPT]}
            entry[name] = value[: size - 1] + "…"
    external = entry["external_id"]
    if len(external) > columns.external_id.type.length:
        cut["external_id"] = {"length": len(external), "sent": external[:KEPT]}
        entry["external_id"] = "sha256:" + hashlib.sha256(external.encode()).hexdigest()
    if cut:
        entry["details"] = {**entry["details"], "truncated": cut}
    return entry


def _failed(result: Imported, problem: str) -> Imported:
    result.problem = problem
    chain.hold()  # one writer of the source's row at a time, as in _add
    state = _state(result.source)
    state.imported_at, state.imported, state.problem = utcnow(), 0, problem[:500]
    db.session.commit()
    return result


def _state(source: str) -> AuditImport:
    """The source's row as committed now (another import may have moved it), made the
    first time. Only with the chain's head held."""
    state = db.session.get(AuditImport, source, populate_existing=True)
    if state is None:
        state = AuditImport(source=source, imported=0)
        db.session.add(state)
    return state


def _since(source: str) -> datetime | None:
    """Where to start: everything the source still keeps the first time, then a little
    before the newest time seen."""
    last_at = db.session.scalar(select(AuditImport.last_at).where(AuditImport.source == source))
    return None if last_at is None else last_at - OVERLAP


def _people() -> dict[int, str]:
    """OneLogin id -> email (or userName) of everyone the dashboard knows."""
    rows = db.session.execute(
        select(Person.onelogin_id, Person.email, Person.user_name).where(
            Person.onelogin_id.is_not(None)
        )
    )
    return {i: email or name for i, email, name in rows}


def _when(value: Any) -> datetime:
    """A source's time as aware UTC; now, when it gave none we can read."""
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return utcnow()
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return utcnow()
