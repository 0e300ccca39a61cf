"""Provisioning one user on demand, with every step shown: read the user from OneLogin,
render the template, find them in Workato, act, read back and compare. The same planner
decides, and the write is a run of one item carried out by the same runner as a full sync
(claimed, fenced, recorded by the same code), so one user gets exactly what a sync would do.

It goes ahead while a full run is active: the person's claim keeps the two from writing the
same person at once, and the run's unsent item for the person is superseded (a leaver is
suspended now, not after the run, and the run does not undo it). No database transaction is
open while OneLogin or Workato is waited for."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select

from dashboard import audit
from dashboard.connections import errors
from dashboard.connections.scim_models import ScimUser
from dashboard.extensions import db
from dashboard.setup import service as setup
from dashboard.sync import compare, people, planner, readiness, runner, runs, service
from dashboard.sync.models import ITEM_SUCCEEDED, ITEM_SUPERSEDED, Item
from dashboard.sync.render import TemplateError, render
from dashboard.timeutil import utcnow


@dataclass
class Step:
    title: str
    ok: bool | None  # None: not reached
    detail: str


@dataclass
class OneUser:
    email: str
    steps: list[Step] = field(default_factory=list)
    decision: planner.Decision | None = None
    run_id: int | None = None

    @property
    def ok(self) -> bool:
        return all(step.ok is not False for step in self.steps)

    def as_json(self) -> dict:
        return {
            "email": self.email,
            "ok": self.ok,
            "action": self.decision.action if self.decision else None,
            "state": self.decision.state if self.decision else None,
            "run": self.run_id,
            "steps": [{"title": s.title, "ok": s.ok, "detail": s.detail} for s in self.steps],
        }


TITLES = (
    "Read from OneLogin",
    "Render the template",
    "Find in Workato",
    "Act",
    "Read back and compare",
)


def provision(email: str, actor: str, *, known: tuple[int, str] | None = None) -> OneUser:
    """Raises readiness.NotReady when a connection or the template is missing, and
    readiness.Refused while SCIM is disabled on Connections.

    `known` is the person's OneLogin id and Workato userName as last seen: when OneLogin no
    longer has a user with this email (deleted there), the Workato user of that name is
    the one to reconcile, and it is suspended as a sync would."""
    result = OneUser(email.strip())
    readiness.require_scim_enabled()
    onelogin, scim, app_id = readiness.clients()
    template = readiness.scim_json_template()
    db.session.commit()  # the reads above: nothing stays open while OneLogin answers
    steps = iter(TITLES)

    def step(ok: bool | None, detail: str) -> None:
        result.steps.append(Step(next(steps), ok, detail))

    try:
        with onelogin, scim:
            _provision(result, step, onelogin, scim, app_id, template, actor, known)
    except (errors.ConnectionProblem, TemplateError) as problem:
        step(False, str(problem))
    for title in TITLES[len(result.steps) :]:
        result.steps.append(Step(title, None, "Not reached."))
    audit.record(
        "sync.user",
        actor=actor,
        outcome="success" if result.ok else "failed",
        target_user=result.email,
        source="sync",
        details={
            "action": result.decision.action if result.decision else None,
            "steps": _summary(result),
        },
    )
    db.session.commit()
    return result


ACTIVE_TITLES = ("Find in Workato", "Act", "Read back")


def set_active(user_name: str, key: str, active: bool, actor: str) -> OneUser:
    """Suspend (`active` False) or reactivate one Workato user directly, whatever OneLogin
    says: for an orphan, or while OneLogin is unreachable. Only `active` changes. The next
    sync still applies OneLogin's view (a user OneLogin grants the app is reactivated).
    Raises readiness.NotReady / readiness.Refused as provision does."""
    result = OneUser(user_name)
    readiness.require_scim_enabled()
    scim = readiness.scim_client()
    db.session.commit()
    titles = iter(ACTIVE_TITLES)

    def step(ok: bool | None, detail: str) -> None:
        result.steps.append(Step(next(titles), ok, detail))

    wanted = "active" if active else "suspended"
    try:
        with scim:
            current = scim.find_user(user_name)
            if current is None:
                step(False, f"Workato has no user {user_name}.")
            else:
                step(True, f"Found as SCIM id {current.id} ({_activity(current)}).")
                sent = True
                if current.active == active:
                    step(True, f"Already {wanted}: nothing sent.")
                else:
                    decision = planner.Decision(
                        key=key,
                        user_name=current.user_name,
                        action=planner.REACTIVATE if active else planner.SUSPEND,
                        state=planner.DRIFT,
                        reason="Chosen by an admin.",
                        scim_id=current.id,
                        changes={"active": [not active, active]},
                        request=planner.active_request(current, active, scim.capabilities().patch),
                    )
                    result.decision = decision
                    sent, _ = _act(result, step, decision, actor)
                if sent:
                    fresh = scim.get_user(current.id)
                    if fresh is None:
                        step(False, "Workato no longer has the user.")
                    else:
                        step(fresh.active == active, f"Workato says: {_activity(fresh)}.")
    except errors.ConnectionProblem as problem:
        step(False, str(problem))
    for title in ACTIVE_TITLES[len(result.steps) :]:
        result.steps.append(Step(title, None, "Not reached."))
    audit.record(
        "workato.reactivate" if active else "workato.suspend",
        actor=actor,
        outcome="success" if result.ok else "failed",
        target_user=user_name,
        details={"steps": _summary(result)},
    )
    db.session.commit()
    return result


def _activity(user: ScimUser) -> str:
    return "active" if user.active else "suspended"


def _summary(result: OneUser) -> list[str]:
    return [
        f"{s.title}: {'ok' if s.ok else 'failed' if s.ok is False else '-'}" for s in result.steps
    ]


def _provision(result, step, onelogin, scim, app_id, template, actor, known) -> None:
    matches = [u for u in onelogin.users(email=result.email) if _same(u.get("email"), result.email)]
    parameters = dict(onelogin.app(app_id).get("parameters") or {})
    user = matches[0] if matches else None
    has_app = False
    if user is None:
        step(True, "No OneLogin user has this email: looking for a Workato user only.")
    else:
        has_app = any(a["id"] == app_id for a in onelogin.user_apps(user["id"]))
        status = "suspended" if user.get("status") in planner.SUSPENDED_IN_ONELOGIN else "active"
        grant = "has the Workato app" if has_app else "does not have the Workato app"
        step(True, f"{user.get('firstname', '')} {user.get('lastname', '')}: {status}, {grant}.")

    if user is None:
        step(None, "Nothing to render: not in OneLogin.")
        name = known[1] if known else result.email
    else:
        desired = render(template, user, parameters)
        name = desired.get("userName") or ""
        roles = desired.get(planner.WORKATO_ROLE) or {}
        shown = ", ".join(f"{k} = {v}" for k, v in roles.items() if v) or "no role fields"
        step(bool(name), f"userName {name or '(empty)'}; {shown}.")
        if not name:
            return

    workato = scim.find_user(name)
    step(
        True,
        f"Found as SCIM id {workato.id} ({'active' if workato.active else 'suspended'})."
        if workato
        else "Not in Workato.",
    )

    onelogin_id = user["id"] if user is not None else known[0] if known else None
    had = people.had_app(onelogin_id) if onelogin_id is not None else {}
    db.session.commit()
    plan = planner.plan(
        template,
        [user] if user else [],
        {user["id"]} if user and has_app else set(),
        parameters,
        [workato] if workato else [],
        had,
        patch=scim.capabilities().patch,
        role_fields=tuple(setup.role_fields()),
    )
    if not plan.decisions:
        service.settle_person(name.casefold(), actor)  # a run must not send them later
        if user is None:
            step(False, "Neither OneLogin nor Workato has a user with this email.")
        else:
            step(True, "Does not have the Workato app and is not in Workato: nothing to do.")
        return
    decision = result.decision = plan.decisions[0]
    people.record_one(decision, utcnow())
    db.session.commit()
    if decision.action == planner.ORPHAN:
        step(
            None,
            "Nothing sent: OneLogin does not grant this user the app, so the sync "
            "leaves the Workato account alone. Suspend it on the user's page if it should "
            "not have access.",
        )
        step(None, "Not compared: OneLogin says nothing about this user's Workato access.")
        return
    if decision.action not in planner.WRITES:
        service.settle_person(decision.key, actor)  # a run must not send them later
        step(True, f"Nothing to send: {decision.reason}")
        scim_id = workato.id if workato is not None else decision.scim_id
    else:
        done, scim_id = _act(result, step, decision, actor)
        if not done:
            return
    if scim_id is None:
        step(None, "Nothing to compare: not in Workato.")
        return
    fresh = scim.get_user(scim_id)
    if decision.action == planner.SUSPEND:
        # A suspension changes `active` alone: a leaver's other values are left as they were.
        left = {"active": [True, False]} if fresh and fresh.active else {}
    elif fresh and decision.desired:
        left = compare.differences(decision.desired, fresh.raw)
    else:
        left = {}
    if fresh is None:
        step(False, "Workato no longer has the user.")
    elif left:
        step(
            False,
            "Still different: " + "; ".join(f"{p}: {o!r} → {n!r}" for p, (o, n) in left.items()),
        )
    else:
        step(
            True,
            f"Workato holds what the template sends from OneLogin "
            f"({'active' if fresh.active else 'suspended'}).",
        )


def _act(result, step, decision, actor) -> tuple[bool, str | None]:
    """Send the decision's write as a run of one item; whether it succeeded, and the
    user's SCIM id as known after it."""
    run_id = result.run_id = service.start_one_user(decision, actor)
    runner.process(run_id)
    run = runs.get(run_id)
    item = db.session.scalar(select(Item).where(Item.run_id == run_id))
    ok = item.status == ITEM_SUCCEEDED
    request = item.request or {}
    sent = f"{decision.action}: {request.get('method')} {request.get('path')}"
    http_status, error, message = item.http_status, item.error, run.message
    scim_id = item.scim_id or decision.scim_id
    db.session.commit()  # read: the read-back that follows waits on Workato
    if item.status == ITEM_SUPERSEDED:
        step(False, f"Not sent: run {item.superseded_by}, asked after this one, acted first.")
        return False, None
    if not ok:
        step(False, f"{sent} failed: {error or message}")
        return False, None
    step(True, f"{sent} answered {http_status}.")
    return True, scim_id


def _same(left, right) -> bool:
    return isinstance(left, str) and left.casefold() == right.casefold()
