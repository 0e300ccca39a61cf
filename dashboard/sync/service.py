"""The sync's verbs as pages and commands use them: preview a plan, apply it (once, past the
suspension guard), cancel, resume or retry a run, suspend chosen orphans, start a one-user
write.

Planning reads both sides and records what it found in `people`; applying queues the
plan's run, which the in-process thread or a `flask sync worker` then carries out
(runner.launch, runner.process). Views and commands stay thin: they call these and show the
result; how a run is going is read through sync.reports, whether the sync can act through
sync.readiness.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from flask import current_app
from sqlalchemy import delete, func, insert, select

from dashboard import audit
from dashboard.connections import errors
from dashboard.connections import service as connections
from dashboard.connections.models import ONELOGIN, SCIM
from dashboard.extensions import db
from dashboard.person import Person
from dashboard.setup import service as setup
from dashboard.sync import freshness, people, planner, preview, runner, runs, sources
from dashboard.sync.guard import NeedsConfirmation, guard
from dashboard.sync.models import (
    CANCELLED,
    INTERRUPTED,
    ITEM_FAILED,
    ITEM_PENDING,
    ITEM_RUNNING,
    ONE_USER,
    PLANNED,
    QUEUED,
    RETRY,
    STOPPED,
    SUSPEND_CHOSEN,
    SYNC,
    Item,
    Run,
)
from dashboard.sync.planner import ACTIONS, ORPHANED, SUSPEND, SUSPENDED
from dashboard.sync.preview import RecordedPlan
from dashboard.sync.readiness import (
    AlreadyDone,
    NotReady,
    Refused,
    clients,
    require_budget_for_plan,
    require_scim_enabled,
    scim_json_template,
)
from dashboard.sync.render import TemplateError
from dashboard.sync.runs import AlreadyRunning
from dashboard.timeutil import utcnow

log = logging.getLogger(__name__)
PLAN_TTL = timedelta(minutes=30)  # an older preview is planned again before it is applied
RESUMABLE = (INTERRUPTED, CANCELLED, STOPPED)
TAKEOVER = "sync.run.takeover"  # a resume no one clicked (sync.takeover), audited so

__all__ = ["AlreadyDone", "AlreadyRunning", "NeedsConfirmation", "NotReady", "Refused"]


def _settings():
    return current_app.extensions["dashboard.settings"]


# --- planning --------------------------------------------------------------------------


def make_plan(actor: str) -> tuple[Run, RecordedPlan]:
    """Read both sides, decide for everyone, record it, and store the writes as a planned
    run that `apply` can start. Raises NotReady, AlreadyRunning.

    Each side is kept only as far as the template and the match need (sync.compact), and
    each decision is written as it is made, a slice at a time, in one transaction opened
    once both sides are read (sync.preview): what a plan holds does not grow with its
    decisions."""
    holder = current_active()
    if holder is not None:
        raise AlreadyRunning(holder)
    onelogin, scim, app_id = clients()
    try:
        require_budget_for_plan(onelogin)  # OneLogin's hourly API budget, before any read
    except Refused as refused:
        onelogin.close()
        scim.close()
        _plan_not_made(actor, "refused", refused)
        raise
    template = scim_json_template()
    role_fields = tuple(setup.role_fields())
    read_from = utcnow()  # the preview's time: changes from here on are checked at Apply
    db.session.commit()  # the reads above: nothing stays open while OneLogin answers
    try:
        with onelogin, scim:
            left, right = sources.read_both(
                onelogin, scim, app_id, _settings().DASHBOARD_SYNC_PAGE_SIZE, template, role_fields
            )
        decisions = planner.decide(
            template,
            left.users,
            left.app_user_ids,
            left.parameters,
            right.users,
            people.had_app(),
            patch=right.patch,
            role_fields=role_fields,
        )
        _forget_previews()
        run = Run(kind=SYNC, status=PLANNED, created_by=actor, created_at=read_from)
        db.session.add(run)
        db.session.flush()
        counts = preview.record(run, decisions, utcnow())
        del left, right, decisions  # both sides' users, let go before the commit
    except (errors.ConnectionProblem, TemplateError) as problem:
        db.session.rollback()  # the slices written so far
        if isinstance(problem, errors.ConnectionProblem):
            connections.note_problem(problem)  # the Overview, metrics and alerts see it
        _plan_not_made(actor, "failed", problem)
        raise NotReady(str(problem)) from None
    for kind in (ONELOGIN, SCIM):  # both answered every page of the plan
        connections.note_health(kind, True, "Answered the last plan's reads.", read_from)
    audit.record(
        "sync.plan",
        actor=actor,
        outcome="success",
        source="sync",
        details={"run": run.id, "counts": counts},
    )
    db.session.commit()
    return run, preview.RecordedPlan(run.id, counts)


def _plan_not_made(actor: str, outcome: str, problem: Exception) -> None:
    """A plan refused (OneLogin's budget) or failed (a connection, the template), audited in
    the words the admin is shown."""
    audit.record(
        "sync.plan", actor=actor, outcome=outcome, source="sync", details={"error": str(problem)}
    )
    db.session.commit()


def _forget_previews() -> None:
    """Only the newest preview can be applied; older ones go, with their items. The runs
    first, each only while still a preview: an Apply that queued one meanwhile keeps it
    (the row's status decides, under its lock), and so keeps its items too."""
    gone = db.session.execute(
        delete(Run.__table__).where(Run.status == PLANNED).returning(Run.__table__.c.id)
    ).all()
    ids = [row[0] for row in gone]
    for start in range(0, len(ids), 500):
        db.session.execute(delete(Item.__table__).where(Item.run_id.in_(ids[start : start + 500])))


def _add_items(run: Run, decisions: list[planner.Decision]) -> None:
    """The run's writes, inserted a thousand at a time."""
    for start in range(0, len(decisions), 1000):
        rows = [Item.row(run.id, d) for d in decisions[start : start + 1000]]
        db.session.execute(insert(Item.__table__), rows)


# --- running ---------------------------------------------------------------------------


def apply(
    run_id: int, actor: str, confirm_suspensions: int | None = None, *, start: bool = True
) -> Run:
    """Queue the previewed run, and with `start` hand it to the executor (the command line
    works it in the foreground instead). Raises Refused (stale preview: a run or the
    dashboard changed something since, or OneLogin's events cannot vouch for it; guard; SCIM
    disabled), AlreadyRunning (the active run: join it), NotReady. Users changed in
    OneLogin's console since the preview are decided again first (run.note says who)."""
    run = runs.get(run_id)
    if run is None or run.status != PLANNED:
        active = current_active()
        if active is not None:
            raise AlreadyRunning(active)
        raise Refused("That preview was replaced or already applied: preview again.")
    if utcnow() - run.created_at > PLAN_TTL:
        raise Refused("The preview is more than 30 minutes old: preview again before applying.")
    require_scim_enabled()
    holder = current_active()
    if holder is not None:  # join it; this preview is not re-decided under a running run
        raise AlreadyRunning(holder)
    # Only what is still true is sent: the dashboard's own changes in OneLogin since the
    # preview refuse it; changes made in OneLogin's console are read again (freshness).
    stale = preview_is_stale(run)
    if stale is None:
        fresh = freshness.recheck(
            run.id, run.created_at, clients(), scim_json_template(), tuple(setup.role_fields())
        )
        stale = fresh.refusal
    if stale:
        audit.record(
            "sync.run.queued",
            actor=actor,
            outcome="refused",
            source="sync",
            details={"run": run_id, "error": stale},
        )
        db.session.commit()
        raise Refused(stale)
    run = runs.get(run_id)
    if run is None or run.status != PLANNED:
        if (holder := runs.active_run()) is not None:  # applied meanwhile: join that run
            raise AlreadyRunning(holder)
        raise Refused("That preview was replaced or already applied: preview again.")
    needed = guard(run)
    if needed and confirm_suspensions != needed[0]:
        raise NeedsConfirmation(*needed)
    details = {"run": run.id, "counts": run.counts, "items": run.total}
    if run.note:
        details["note"] = run.note
    return _queue(run, actor, PLANNED, "sync.run.queued", details, start)


def preview_is_stale(preview: Run) -> str | None:
    """Why a preview no longer says what is true, or None: a run changed Workato since, or
    the dashboard changed OneLogin since it began reading (role edits, access)."""
    since = db.session.scalar(
        select(Run)
        .where(Run.finished_at > preview.created_at, Run.id != preview.id)
        .order_by(Run.finished_at.desc())
        .limit(1)
    )
    if since is None:
        return freshness.stale_because(freshness.dashboard_changes(preview.created_at))
    return (
        f"Run {since.id} changed Workato at {since.finished_at:%H:%M} UTC, after this preview: "
        "preview again so that Apply sends only what is still needed."
    )


def unfinished(run: Run) -> int:
    return db.session.scalar(
        select(func.count())
        .select_from(Item)
        .where(Item.run_id == run.id, Item.status.in_((ITEM_PENDING, ITEM_RUNNING)))
    )


def current_active() -> Run | None:
    """The queued or running run, after retiring any whose process died."""
    settings = _settings()
    runs.expire_stale(
        settings.DASHBOARD_SYNC_LEASE_SECONDS,
        queued_too=settings.DASHBOARD_SYNC_EXECUTOR == "thread",
    )
    return runs.active_run()


def cancel(run_id: int, actor: str) -> Run:
    was = runs.request_cancel(run_id)
    if was is None:
        db.session.rollback()
        raise Refused("That run is not running any more.")
    if was == QUEUED:  # cancelled before any process took it: nothing was sent
        people.release_pending([run_id])
    audit.record(
        "sync.run.cancel", actor=actor, outcome="success", source="sync", details={"run": run_id}
    )
    db.session.commit()
    return runs.get(run_id)


def resume(run_id: int, actor: str, *, start: bool = True, takeover: bool = False) -> Run:
    """Carry on with an interrupted, cancelled or stopped run: what succeeded is not sent
    again, and items whose outcome is unknown are re-checked against Workato first. A
    `takeover` is the same done by a process, not an admin (sync.takeover)."""
    current_active()  # retire a dead process's run first
    run = runs.get(run_id)
    if run is not None and run.kind == ONE_USER:
        raise Refused(
            "A write for one person is not resumed: act on them again from their page, which "
            "decides from what OneLogin and Workato hold now."
        )
    if run is None or run.status not in RESUMABLE:
        raise Refused("Only an interrupted, cancelled or stopped run can be resumed.")
    if not unfinished(run):
        raise Refused("That run has nothing left to send.")
    if not _newest(run):
        raise Refused("A newer run exists: preview and apply again instead.")
    _require_recent(run, "resumed")
    require_scim_enabled()
    if takeover:
        details = {"run": run.id, "takeover": run.takeovers + 1}
        return _queue(run, actor, run.status, TAKEOVER, details, start)
    return _queue(run, actor, run.status, "sync.run.resumed", {"run": run.id}, start)


def can_resume(run: Run, pending: int) -> bool:
    """Whether `resume` would take this run (for showing its button)."""
    resumable = run.status in RESUMABLE and run.kind != ONE_USER
    return resumable and pending > 0 and _newest(run) and _recent(run)


def _recent(run: Run) -> bool:
    return utcnow() - (run.finished_at or run.created_at) <= PLAN_TTL


def _require_recent(run: Run, done: str) -> None:
    """A run's writes were decided when it was planned: OneLogin may have changed since (a
    user suspended there must not be created). Past PLAN_TTL, plan again instead."""
    if not _recent(run):
        raise Refused(
            f"Run {run.id} ended more than 30 minutes ago, so it cannot be {done}: OneLogin "
            "may have changed since. Preview again: what it did shows as in sync."
        )


def _newest(run: Run) -> bool:
    """A sync run resumes only while no newer sync superseded its plan."""
    if run.kind != SYNC:
        return True
    newest = runs.latest(SYNC)
    return newest is not None and newest.id == run.id


def refresh_if_silent(run: Run) -> Run:
    """A run that has not reported for a lease is retired as interrupted (a write, so done
    only then: a healthy run's progress is read without one)."""
    lease = timedelta(seconds=_settings().DASHBOARD_SYNC_LEASE_SECONDS)
    if run.is_active and utcnow() - (run.heartbeat_at or run.created_at) > lease:
        current_active()
        db.session.refresh(run)
    return run


def retry_failed(run_id: int, actor: str, *, start: bool = True) -> Run:
    """A new run of only the failed items of `run_id`, each re-checked before it is sent."""
    run = runs.get(run_id)
    # Not for anyone a later run acted on (a one-user write, a newer sync): their failed
    # write was decided before it and could undo it (reactivate a leaver, say).
    acted_on_since = select(Item.key).where(Item.run_id > run_id)
    failed = list(
        db.session.scalars(
            select(Item).where(
                Item.run_id == run_id,
                Item.status == ITEM_FAILED,
                Item.key.not_in(acted_on_since),
            )
        )
    )
    if run is None or not failed:
        raise Refused(
            "That run has no failed items left to retry (the people a later run acted on are "
            "left out: their write was decided before it)."
        )
    _require_recent(run, "retried")
    require_scim_enabled()
    retry = Run(kind=RETRY, status=PLANNED, created_by=actor, retry_of=run_id, total=len(failed))
    retry.counts = {a: sum(1 for i in failed if i.action == a) for a in ACTIONS}
    db.session.add(retry)
    db.session.flush()
    for item in failed:
        db.session.add(
            Item(
                run_id=retry.id,
                key=item.key,
                user_name=item.user_name,
                onelogin_id=item.onelogin_id,
                scim_id=item.scim_id,
                action=item.action,
                changes=item.changes,
                desired=item.desired,
                request=item.request,
                note=f"Retry of item {item.id} (run {run_id}).",
            )
        )
    db.session.commit()
    return _start_now(retry, actor, start)


def suspend_chosen(names: list[str], actor: str, *, start: bool = True) -> Run:
    """A run that suspends the orphans an admin chose (by userName or email)."""
    folded = sorted({n.strip().casefold() for n in names if n.strip()})
    if not folded:
        raise Refused("Choose at least one Workato user to suspend.")
    chosen = list(
        db.session.scalars(
            select(Person).where(
                (func.lower(Person.key).in_(folded)) | (func.lower(Person.email).in_(folded))
            )
        )
    )
    found = {p.key for p in chosen} | {(p.email or "").casefold() for p in chosen}
    missing = [n for n in folded if n not in found]
    if missing:
        raise NotReady(
            f"Not a Workato user in the last plan: {', '.join(missing)}. Preview a plan first."
        )
    # Orphans, and orphans already suspended; users the app grants are OneLogin's to manage.
    granted = [p.user_name for p in chosen if p.has_app or p.state not in (ORPHANED, SUSPENDED)]
    if granted:
        raise Refused(
            f"Only orphans are suspended this way; {', '.join(granted)}: the sync manages "
            "them from OneLogin (suspend or unassign them there)."
        )
    require_scim_enabled()
    _, scim, _ = clients()
    db.session.commit()
    try:
        with scim:
            decisions = _suspensions(scim, chosen)
    except errors.ConnectionProblem as problem:
        raise NotReady(str(problem)) from None
    if not decisions:
        raise AlreadyDone("Already suspended in Workato: nothing to send.")
    run = Run(kind=SUSPEND_CHOSEN, status=PLANNED, created_by=actor, total=len(decisions))
    run.counts = {a: len(decisions) if a == SUSPEND else 0 for a in ACTIONS}
    db.session.add(run)
    db.session.flush()
    _add_items(run, decisions)
    db.session.commit()
    return _start_now(run, actor, start)


def _suspensions(scim, chosen: list[Person]) -> list[planner.Decision]:
    """Suspend decisions for those still active in Workato, read afresh."""
    patch = scim.capabilities().patch
    decisions = []
    for person in chosen:
        current = scim.find_user(person.user_name)
        if current is None or not current.active:
            continue
        decisions.append(
            planner.Decision(
                key=person.key,
                user_name=current.user_name,
                action=SUSPEND,
                state=planner.DRIFT,
                reason="Chosen by an admin.",
                scim_id=current.id,
                changes={"active": [True, False]},
                request=planner.active_request(current, False, patch),
            )
        )
    return decisions


def settle_person(key: str, actor: str) -> int:
    """An admin acted on this person and nothing needed sending (removed access to someone
    not in Workato, say): the unsent writes older runs hold for them are superseded, so a
    long run does not send them later. The number superseded; committed."""
    count = runs.supersede_unsent(
        key, f"Superseded: {actor} acted on this person directly; nothing needed sending."
    )
    db.session.commit()
    return count


def start_one_user(decision: planner.Decision, actor: str) -> int:
    """A run of the one write an admin asked for (provision now, a push after a role edit,
    the reconcile after removing access, suspend or reactivate in Workato), queued beside
    any active run: it takes no slot (runs.activate). Its request carries it out at once
    with runner.process; the person's claim keeps it from racing another write for them."""
    run = Run(kind=ONE_USER, status=PLANNED, created_by=actor, total=1)
    run.counts = {a: int(a == decision.action) for a in ACTIONS}
    db.session.add(run)
    db.session.flush()
    _add_items(run, [decision])
    run_id = run.id
    runs.activate(run_id, actor, slot=False)
    people.mark_pending(run_id)
    db.session.commit()
    return run_id


def _start_now(run: Run, actor: str, start: bool) -> Run:
    details = {"run": run.id, "kind": run.kind, "items": run.total}
    try:
        return _queue(run, actor, PLANNED, "sync.run.queued", details, start)
    except AlreadyRunning:
        # Not left behind as a preview someone could apply later by mistake.
        db.session.execute(delete(Item.__table__).where(Item.run_id == run.id))
        db.session.execute(delete(Run.__table__).where(Run.id == run.id))
        db.session.commit()
        raise


def _queue(run: Run, actor: str, from_status: str, action: str, details: dict, start: bool):
    """Activate the run, mark its people pending and audit it in one transaction (a
    worker cannot finish it in between), then hand it to the executor when `start`. A
    takeover's activation counts it (runs.activate)."""
    run_id = run.id
    try:
        runs.activate(run_id, actor, from_status=from_status, takeover=action == TAKEOVER)
    except runs.NotStartable:
        raise Refused("That run was replaced or already started: look at the Sync page.") from None
    people.mark_pending(run_id)
    audit.record(action, actor=actor, outcome="success", source="sync", details=details)
    db.session.commit()
    if start:
        runner.launch(run_id)
    return runs.get(run_id)
