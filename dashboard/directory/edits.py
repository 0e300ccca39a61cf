"""Changing users' Workato role fields: written to their OneLogin custom attributes, read
back to confirm, optionally pushed to Workato at once, and audited.

OneLogin is where the role fields live (the sync renders them into each Workato user), so an
edit here is an edit there; Workato gets it from the next sync, or at once with "push now".
One function does every edit, whether it comes from a user's page, a bulk selection, a CSV
file or the command line, so they all check, write, confirm and audit the same way.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from flask import current_app

from dashboard import audit
from dashboard.connections import errors
from dashboard.connections.scim_models import WORKATO_ROLE
from dashboard.directory.models import Person
from dashboard.directory.roles import Catalog, RoleRefused, catalog, clearing_means
from dashboard.extensions import db
from dashboard.sync import service as sync
from dashboard.sync.planner import DRIFT, IN_SYNC
from dashboard.timeutil import utcnow

READ_BATCH = 100  # OneLogin's largest users page: one read per hundred people


class EditRefused(Exception):
    """The edit was not attempted; the message says why."""


@dataclass
class Outcome:
    """What became of one person's edit."""

    person_id: int
    who: str  # email, else userName
    changes: dict[str, list[str | None]] = field(default_factory=dict)  # field -> [old, new]
    ok: bool = True
    message: str = ""
    workato: str = ""  # whether, and how, the change reached Workato
    pushed: object | None = None  # one_user.OneUser when pushed now

    def as_json(self) -> dict:
        return {
            "user": self.who,
            "ok": self.ok,
            "changes": self.changes,
            "message": self.message,
            "workato": self.workato,
        }


def role_fields() -> list[str]:
    return list(current_app.extensions["dashboard.settings"].DASHBOARD_ROLE_FIELDS)


def validate(values: Mapping[str, str | None], known: Catalog) -> tuple[dict, dict[str, str]]:
    """The values to write (None clears) and the problems, both by field."""
    fields = role_fields()
    clean: dict[str, str | None] = {}
    problems: dict[str, str] = {}
    for name, value in values.items():
        if name not in fields:
            problems[name] = f"{name} is not a role field. Role fields: {', '.join(fields)}."
            continue
        try:
            clean[name] = known.check(name, value)
        except RoleRefused as refused:
            problems[name] = str(refused)
    return clean, problems


def edit(
    people: Iterable[Person],
    values: Mapping[str, str | None] | Mapping[int, Mapping[str, str | None]],
    actor: str,
    *,
    push: bool = False,
    known: Catalog | None = None,
) -> list[Outcome]:
    """Set role fields on each person in OneLogin, confirm by reading them back, and record
    the result (the person shows as drift until Workato has it). `values` is one mapping for
    everyone, or one per person id. Raises RoleRefused before writing anything when a value
    is not a Workato role, EditRefused when OneLogin is not connected."""
    people = list(people)
    known = known or catalog()
    wanted: dict[int, dict[str, str | None]] = {}
    for person in people:
        given = values.get(person.id, {}) if _per_person(values) else values
        clean, problems = validate(given, known)  # type: ignore[arg-type]
        if problems:
            name, message = next(iter(problems.items()))
            raise RoleRefused(name, message)
        wanted[person.id] = clean
    try:
        onelogin, _app_id = sync.onelogin_client()
    except sync.NotReady as exc:
        raise EditRefused(str(exc)) from None

    outcomes: list[Outcome] = []
    with onelogin:
        for batch in _batches(people, READ_BATCH):
            outcomes += _edit_batch(onelogin, batch, wanted, actor, push)
    return outcomes


def _edit_batch(onelogin, batch: list[Person], wanted, actor: str, push: bool) -> list[Outcome]:
    outcomes = []
    known_ids = [p.onelogin_id for p in batch if p.onelogin_id is not None]
    try:
        before = _attributes(onelogin, known_ids)
    except errors.ConnectionProblem as problem:
        before, failure = {}, str(problem)
    else:
        failure = None
    written: list[tuple[Person, Outcome]] = []
    for person in batch:
        outcome = Outcome(person.id, person.email or person.user_name)
        outcomes.append(outcome)
        if person.onelogin_id is None:
            _fail(outcome, "Not a OneLogin user: role fields live on OneLogin users.", actor)
            continue
        if failure is not None or person.onelogin_id not in before:
            _fail(outcome, failure or "OneLogin no longer has this user.", actor)
            continue
        current = before[person.onelogin_id]
        changed = {
            name: [current.get(name) or None, new]
            for name, new in wanted[person.id].items()
            if (current.get(name) or None) != new
        }
        outcome.changes = changed
        if not changed:
            outcome.message = "Already so in OneLogin: nothing to change."
            if push:  # Workato may still hold older values: send what OneLogin says
                _push(person, outcome, actor)
            continue
        try:
            onelogin.set_custom_attributes(
                person.onelogin_id, {k: new for k, (_old, new) in changed.items()}
            )
        except errors.ConnectionProblem as problem:
            _fail(outcome, str(problem), actor)
            continue
        written.append((person, outcome))

    # Read back what OneLogin now holds: the write is only done when OneLogin says so.
    try:
        after = _attributes(onelogin, [p.onelogin_id for p, _ in written])
    except errors.ConnectionProblem as problem:
        after, unread = {}, f"written, but reading it back failed: {problem}"
    else:
        unread = "written, but OneLogin no longer has this user"
    for person, outcome in written:
        held = after.get(person.onelogin_id)
        kept = {
            name: (held or {}).get(name) or None for name in outcome.changes if held is not None
        }
        wrong = {n: v for n, v in kept.items() if v != outcome.changes[n][1]}
        if held is None or wrong:
            message = (
                "OneLogin kept "
                + ", ".join(f"{n} = {v or '(not set)'}" for n, v in wrong.items())
                + " after the change."
                if held is not None
                else unread[0].upper() + unread[1:] + "."
            )
            _fail(outcome, message, actor)
            continue
        _record(person, outcome.changes)
        if push:
            _push(person, outcome, actor)
        else:
            outcome.workato = "at the next sync"
            outcome.message = "Saved in OneLogin. Workato gets it at the next sync."
        cleared = [name for name, (_old, new) in outcome.changes.items() if new is None]
        outcome.message += "".join(f" {clearing_means(name)}" for name in cleared)
        audit.record(
            "roles.edit",
            actor=actor,
            outcome="success",
            target_user=outcome.who,
            details={"changes": outcome.changes, "workato": outcome.workato},
        )
        db.session.commit()
    return outcomes


def _push(person: Person, outcome: Outcome, actor: str) -> None:
    """Send this person's new roles to Workato now (the one-user provisioning)."""
    from dashboard.sync import one_user

    saved = "Saved in OneLogin" if outcome.changes else "OneLogin already held these values"
    try:
        result = one_user.provision(person.email or person.user_name, actor)
    except (sync.NotReady, sync.Refused) as exc:
        outcome.workato = f"not sent: {exc}"
        outcome.message = f"{saved}, but not sent to Workato: {exc}"
        return
    outcome.pushed = result
    if result.ok:
        outcome.workato = "sent now"
        outcome.message = f"{saved} and sent to Workato."
    else:
        failed = next((s for s in result.steps if s.ok is False), None)
        said = failed.detail if failed else "see the steps"
        outcome.workato = f"sending failed: {said}"
        outcome.message = f"{saved}, but sending to Workato failed: {said}"


def _fail(outcome: Outcome, message: str, actor: str) -> None:
    outcome.ok, outcome.message = False, message
    audit.record(
        "roles.edit",
        actor=actor,
        outcome="failed",
        target_user=outcome.who,
        details={"changes": outcome.changes, "error": message},
    )
    db.session.commit()


def _record(person: Person, changes: dict[str, list]) -> None:
    """The person's row after an edit OneLogin confirmed: the new role fields, and drift
    where Workato still holds the old value (until the next plan looks again)."""
    roles = dict(person.roles or {})
    drift = dict(person.changes or {})
    for name, (old, new) in changes.items():
        roles[name] = new
        path = f"{WORKATO_ROLE}:{name}"
        has = drift[path][0] if path in drift else old  # what Workato holds
        if has == new:
            drift.pop(path, None)
        else:
            drift[path] = [has, new]
    person.roles = roles
    person.role = roles.get("workato_role") or None
    if person.state in (IN_SYNC, DRIFT) and person.scim_id:
        person.changes = drift
        person.state = DRIFT if drift else IN_SYNC
        person.reason = (
            "Role fields changed in OneLogin; Workato gets them at the next sync."
            if drift
            else "In sync."
        )
    person.seen_at = utcnow()


def _attributes(onelogin, ids: list[int]) -> dict[int, dict[str, str | None]]:
    """OneLogin id -> custom attributes, read in one call."""
    if not ids:
        return {}
    users = onelogin.users(user_ids=ids, fields=["id", "custom_attributes"])
    return {u["id"]: dict(u.get("custom_attributes") or {}) for u in users}


def _per_person(values: Mapping) -> bool:
    return bool(values) and all(isinstance(k, int) for k in values)


def _batches(items: list, size: int):
    for start in range(0, len(items), size):
        yield items[start : start + size]
