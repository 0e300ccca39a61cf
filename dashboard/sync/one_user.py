"""Provisioning one user on demand, with every step shown: read the user from OneLogin,
render the template, find them in Workato, act, read back and compare. The same planner and
executor as a full run decide and send, so one user gets exactly what a sync would do."""

from __future__ import annotations

from dataclasses import dataclass, field

from dashboard import audit
from dashboard.connections import errors
from dashboard.connections.scim_models import ScimUser
from dashboard.directory import records
from dashboard.extensions import db
from dashboard.setup import service as setup
from dashboard.sync import compare, planner, runner, service
from dashboard.sync.executor import SUCCEEDED, Work
from dashboard.sync.models import (
    FAILED,
    ITEM_FAILED,
    ITEM_RUNNING,
    ITEM_SUCCEEDED,
    ONE_USER,
    RUNNING,
    Item,
    Run,
)
from dashboard.sync.models import SUCCEEDED as RUN_SUCCEEDED
from dashboard.sync.pace import Pace
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
    """Raises service.NotReady when a connection or the template is missing, and
    service.Refused while SCIM is disabled on Connections or a run is active.

    `known` is the person's OneLogin id and Workato userName as last seen: when OneLogin no
    longer has a user with this email (deleted there), the Workato user of that name is
    the one to reconcile, and it is suspended as a sync would."""
    result = OneUser(email.strip())
    require_no_run("provision one user")
    onelogin, scim, app_id = service.clients()
    template = service.scim_json_template()
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
    Raises service.NotReady / service.Refused as provision does."""
    result = OneUser(user_name)
    require_no_run("suspend or reactivate a user")
    scim = service.scim_client()
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
                    sent, _answer = _act(result, step, scim, decision, actor)
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


def require_no_run(doing: str) -> None:
    service.require_scim_enabled()
    active = service.current_active()
    if active is not None:
        # One writer at a time: the run may be about to write this very user.
        raise service.Refused(f"Run {active.id} is {active.status}: {doing} when it has finished.")


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
    had = records.had_app(onelogin_id) if onelogin_id is not None else {}
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
        if user is None:
            step(False, "Neither OneLogin nor Workato has a user with this email.")
        else:
            step(True, "Does not have the Workato app and is not in Workato: nothing to do.")
        return
    decision = result.decision = plan.decisions[0]
    records.record_one(decision, utcnow())
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
        step(True, f"Nothing to send: {decision.reason}")
        after = workato
    else:
        done, after = _act(result, step, scim, decision, actor)
        if not done:
            return

    scim_id = after.id if after is not None else decision.scim_id
    if scim_id is None:
        step(None, "Nothing to compare: not in Workato.")
        return
    fresh = scim.get_user(scim_id)
    left = (
        compare.differences(decision.desired or {}, fresh.raw) if fresh and decision.desired else {}
    )
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


def _act(result, step, scim, decision, actor) -> tuple[bool, ScimUser | None]:
    """Send the decision's write; whether it succeeded, and the user Workato answered with
    (None after a 204)."""
    executor = runner.executor_for(scim, Pace(0))
    # Recorded before it is sent: a crash meanwhile leaves an item whose outcome is known
    # to be unknown (its run shows as interrupted, and resuming re-checks it).
    now = utcnow()
    run = Run(
        kind=ONE_USER,
        status=RUNNING,
        created_by=actor,
        started_by=actor,
        started_at=now,
        heartbeat_at=now,
        total=1,
        counts={a: int(a == decision.action) for a in planner.ACTIONS},
    )
    db.session.add(run)
    db.session.flush()
    item = Item(
        run_id=run.id,
        key=decision.key,
        user_name=decision.user_name,
        onelogin_id=decision.onelogin_id,
        scim_id=decision.scim_id,
        action=decision.action,
        status=ITEM_RUNNING,
        changes=decision.changes,
        desired=decision.desired,
        request=decision.request,
    )
    db.session.add(item)
    db.session.commit()

    outcome = executor.perform(
        Work(
            decision.user_name,
            decision.action,
            decision.request or {},
            decision.desired,
            scim_id=decision.scim_id,
        )
    )
    ok = outcome.status == SUCCEEDED
    run.status, run.finished_at = (RUN_SUCCEEDED if ok else FAILED), utcnow()
    run.message = None if ok else outcome.error
    item.status = ITEM_SUCCEEDED if ok else ITEM_FAILED
    item.scim_id = outcome.user.id if outcome.user else decision.scim_id
    item.attempts, item.http_status, item.error = (
        outcome.attempts,
        outcome.http_status,
        outcome.error,
    )
    item.duration_ms, item.note, item.finished_at = outcome.duration_ms, outcome.note, utcnow()
    item.request, item.response = outcome.request, outcome.response
    records.record_outcome(decision.key, decision.action, ok, outcome.user, outcome.error)
    result.run_id = run.id
    request = outcome.request or {}
    sent = f"{decision.action}: {request.get('method')} {request.get('path')}"
    if not ok:
        step(False, f"{sent} failed: {outcome.error}")
        return False, None
    step(True, f"{sent} answered {outcome.http_status}.")
    return True, outcome.user


def _same(left, right) -> bool:
    return isinstance(left, str) and left.casefold() == right.casefold()
