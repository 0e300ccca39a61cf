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
from dashboard.extensions import db
from dashboard.person import Person
from dashboard.sync import one_user, readiness
from dashboard.sync import service as sync
from dashboard.sync.planner import DRIFT, IN_SYNC
from dashboard.timeutil import utcnow
from dashboard.users.roles import Catalog, RoleRefused, catalog, clearing_means

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
    pushed: one_user.OneUser | None = None  # the steps, when pushed now


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
    values: Mapping[int, Mapping[str, str | None]],
    actor: str,
    *,
    push: bool = False,
    known: Catalog | None = None,
) -> list[Outcome]:
    """Set role fields (`values` by person id) on each person in OneLogin, confirm by reading
    them back, and record the result (the person shows as drift until Workato has it).

    Raises RoleRefused (with every problem by field) before writing anything when a value is
    not a Workato role, and EditRefused when OneLogin is not connected or a sync run is
    active (it would send the values it read before the edit and mark them in sync). Both
    are audited as refused."""
    people = list(people)
    known = known or catalog()
    wanted = check([(p, values.get(p.id, {})) for p in people], actor, known)
    onelogin = ready(people, actor)

    outcomes: list[Outcome] = []
    stop: str | None = None
    unrendered = readiness.unrendered_role_fields()
    with onelogin:
        for batch in _batches(people, READ_BATCH):
            if stop is None:
                done, stop = _edit_batch(onelogin, batch, wanted, actor, push, unrendered)
                outcomes += done
            else:
                outcomes += [_not_attempted(p, stop) for p in batch]
    skipped = [o.who for o in outcomes if o.message.startswith(NOT_ATTEMPTED)]
    if skipped:
        audit.record(
            "roles.edit",
            actor=actor,
            outcome="failed",
            details={"error": stop, "not_attempted": skipped},
        )
        db.session.commit()
    return outcomes


def check(
    pairs: list[tuple[Person, Mapping[str, str | None]]], actor: str, known: Catalog
) -> dict[int, dict[str, str | None]]:
    """The values to write by person id; RoleRefused (audited) naming every problem of the
    first person whose values are refused."""
    wanted: dict[int, dict[str, str | None]] = {}
    for person, values in pairs:
        clean, problems = validate(values, known)
        if problems:
            _refused([p for p, _ in pairs], actor, {"problems": problems})
            name, message = next(iter(problems.items()))
            raise RoleRefused(name, message, problems)
        wanted[person.id] = clean
    return wanted


def ready(people: list[Person], actor: str):
    """The OneLogin client to edit with; EditRefused (audited) while a sync run is active
    (it would send the values it read before the edit and call them in sync) or when
    OneLogin is not connected."""
    active = sync.current_active()
    if active is not None:
        message = (
            f"Run {active.id} is {active.status}: change role fields when it has finished "
            "(it would send the values it read before your change and call them in sync)."
        )
        _refused(people, actor, {"error": message})
        raise EditRefused(message)
    try:
        onelogin, _app_id = readiness.onelogin_client()
    except readiness.NotReady as exc:
        _refused(people, actor, {"error": str(exc)})
        raise EditRefused(str(exc)) from None
    return onelogin


NOT_ATTEMPTED = "Not attempted"
# Answers every further write would get too: the batch stops at the first one.
STOPS_THE_BATCH = (errors.UNAUTHORIZED, errors.FORBIDDEN, errors.RATE_LIMITED)


def _edit_batch(
    onelogin, batch: list[Person], wanted, actor: str, push: bool, unrendered: list[str]
) -> tuple[list[Outcome], str | None]:
    """Up to a hundred people: one read, a write each, one read back. Returns the outcomes
    and, when OneLogin refused in a way every further write would meet too, why."""
    outcomes = []
    known_ids = [p.onelogin_id for p in batch if p.onelogin_id is not None]
    try:
        before = _attributes(onelogin, known_ids)
    except errors.ConnectionProblem as problem:
        if problem.kind in STOPS_THE_BATCH:
            return [_not_attempted(p, str(problem)) for p in batch], str(problem)
        before, failure = {}, str(problem)
    else:
        failure = None
    written: list[tuple[Person, Outcome]] = []
    stop: str | None = None
    for person in batch:
        if stop is not None:
            outcomes.append(_not_attempted(person, stop))
            continue
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
            if problem.kind in STOPS_THE_BATCH:
                stop = str(problem)
            continue
        written.append((person, outcome))

    # Read back what OneLogin now holds: the write is only done when OneLogin says so.
    try:
        after = _attributes(onelogin, [p.onelogin_id for p, _ in written])
    except errors.ConnectionProblem as problem:
        after, unread = {}, f"Written, but reading it back failed: {problem}"
    else:
        unread = "Written, but OneLogin no longer has this user."
    for person, outcome in written:
        held = after.get(person.onelogin_id)
        if held is None:
            _fail(outcome, unread, actor)
            continue
        wrong = {n: held.get(n) or None for n in outcome.changes}
        wrong = {n: v for n, v in wrong.items() if v != outcome.changes[n][1]}
        if wrong:
            kept = ", ".join(f"{n} = {v or '(not set)'}" for n, v in wrong.items())
            _fail(outcome, f"OneLogin kept {kept} after the change.", actor)
            continue
        _record(person, outcome.changes)
        if push:
            _push(person, outcome, actor)
        else:
            outcome.workato = "at the next sync"
            outcome.message = "Saved in OneLogin. Workato gets it at the next sync."
        unsent = [name for name in outcome.changes if name in unrendered]
        if unsent:
            outcome.workato += f" (not {', '.join(unsent)}: not in the SCIM template)"
            outcome.message += (
                f" {', '.join(unsent)} is not in the SCIM template, so Workato never gets it: "
                "add it to the template (Setup) and to OneLogin's."
            )
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
    return outcomes, stop


def _not_attempted(person: Person, why: str) -> Outcome:
    return Outcome(
        person.id, person.email or person.user_name, ok=False, message=f"{NOT_ATTEMPTED}: {why}"
    )


def _refused(people: list[Person], actor: str, details: dict) -> None:
    one = people[0] if len(people) == 1 else None
    audit.record(
        "roles.edit",
        actor=actor,
        outcome="refused",
        target_user=(one.email or one.user_name) if one else None,
        details={**details, "users": len(people)},
    )
    db.session.commit()


def _push(person: Person, outcome: Outcome, actor: str) -> None:
    """Send this person's new roles to Workato now (the one-user provisioning)."""
    saved = "Saved in OneLogin" if outcome.changes else "OneLogin already held these values"
    try:
        result = one_user.provision(person.email or person.user_name, actor)
    except (readiness.NotReady, readiness.Refused) as exc:
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


def _batches(items: list, size: int):
    for start in range(0, len(items), size):
        yield items[start : start + size]
