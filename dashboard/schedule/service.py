"""The scheduled reconcile: every DASHBOARD_RECONCILE_EVERY, plan through the same planner as
a click, and with DASHBOARD_RECONCILE_APPLY=safe apply the plan through the same guard and
runner.

Time is cut into intervals aligned to the epoch (every hour on the hour for 1h, at :00 and
:30 for 30m), and each interval gets at most one reconcile across every process and
instance: inserting its row (unique on the interval's start) is the claim, so the database
decides who plans. A process that starts in an interval nobody has reconciled yet plans at
once; one that restarts later in the same interval does not plan again. While a run is
active, or the previous interval's reconcile is still planning, nothing is claimed: the
interval's reconcile waits for them to end.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from flask import current_app
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from dashboard import audit
from dashboard.connections import service as connections
from dashboard.connections.models import ONELOGIN, SCIM
from dashboard.extensions import db
from dashboard.schedule.models import (
    APPLIED,
    FAILED,
    GUARD,
    IN_SYNC,
    PLANNED,
    REFUSED,
    RUNNING,
    SKIPPED,
    ScheduledReconcile,
)
from dashboard.sync import runs
from dashboard.sync import service as sync
from dashboard.sync.models import Run
from dashboard.sync.planner import CREATE, REACTIVATE, SUSPEND, UPDATE
from dashboard.timeutil import utcnow

log = logging.getLogger(__name__)
ACTOR = "schedule"  # who the audit trail says planned and applied
WRITES = (CREATE, UPDATE, SUSPEND, REACTIVATE)
# A reconcile still `running` this long after it started lost its process (a plan reads
# every user: minutes at most, even at 100,000 users).
STALE_AFTER = timedelta(hours=2)
AUDIT_OUTCOME = {IN_SYNC: "success", APPLIED: "success", PLANNED: "success", GUARD: "refused"}


def _settings():
    return current_app.extensions["dashboard.settings"]


def interval_start(now: datetime, every: int) -> datetime:
    """The start of the interval `now` falls in (intervals aligned to the epoch)."""
    seconds = int(now.timestamp())
    return datetime.fromtimestamp(seconds - seconds % every, UTC)


@dataclass(frozen=True)
class Status:
    """What the Sync page and the Overview say about the schedule."""

    every: int  # seconds; 0: off
    apply: str  # off or safe
    last: ScheduledReconcile | None
    next_at: datetime | None  # None when off
    waiting_for: Run | None  # the active run the due reconcile waits for
    connected: bool = True  # False: waits for the OneLogin and SCIM connections

    @property
    def on(self) -> bool:
        return self.every > 0


def status(now: datetime | None = None) -> Status:
    settings = _settings()
    every, apply = settings.DASHBOARD_RECONCILE_EVERY, settings.DASHBOARD_RECONCILE_APPLY
    last = latest()
    if not every:
        return Status(every, apply, last, None, None)
    now = now or utcnow()
    start = interval_start(now, every)
    if last is not None and last.due_at >= start:
        return Status(every, apply, last, start + timedelta(seconds=every), None)
    return Status(every, apply, last, now, runs.active_run(), connected())


def connected() -> bool:
    """Whether there is anything to reconcile: OneLogin and Workato's SCIM API are saved
    with their secrets. Until then no interval is claimed (a new install is not "failed")."""
    return all(
        (connection := connections.get(kind)) is not None and connection.has_secret
        for kind in (ONELOGIN, SCIM)
    )


def latest() -> ScheduledReconcile | None:
    return db.session.scalar(
        select(ScheduledReconcile).order_by(ScheduledReconcile.due_at.desc()).limit(1)
    )


def tick(owner: str, now: datetime | None = None) -> ScheduledReconcile | None:
    """Reconcile if this interval's reconcile is due and this process wins the claim; the
    reconcile done, or None. Called every few seconds by each background loop."""
    settings = _settings()
    every = settings.DASHBOARD_RECONCILE_EVERY
    if not every:
        return None
    now = now or utcnow()
    due = interval_start(now, every)
    _retire_stale(now)
    # This interval's is done or being done; or the last one is still planning (it ran
    # past its interval: a second plan now would replace its preview before it applies).
    busy = db.session.scalar(
        select(ScheduledReconcile.id)
        .where((ScheduledReconcile.due_at >= due) | (ScheduledReconcile.outcome == RUNNING))
        .limit(1)
    )
    if busy is not None or not connected() or sync.current_active() is not None:
        db.session.commit()
        return None
    row = _claim(due, every, settings.DASHBOARD_RECONCILE_APPLY, owner, now)
    if row is None:
        return None
    _reconcile(row)
    return row


def _claim(due: datetime, every: int, apply: str, owner: str, now: datetime):
    row = ScheduledReconcile(
        due_at=due, every=every, apply=apply, claimed_by=owner, started_at=now, counts={}
    )
    db.session.add(row)
    try:
        db.session.commit()
    except IntegrityError:  # another process claimed this interval first
        db.session.rollback()
        return None
    return row


def _reconcile(row: ScheduledReconcile) -> None:
    try:
        outcome, message = _plan_and_apply(row)
    except Exception:  # never kill the background loop; the row says it failed
        db.session.rollback()
        log.exception("scheduled reconcile %s failed unexpectedly", row.id)
        outcome, message = FAILED, "An unexpected error stopped it; the server log says why."
    _finish(row, outcome, message)


def _plan_and_apply(row: ScheduledReconcile) -> tuple[str, str]:
    try:
        run, plan = sync.make_plan(ACTOR)
    except sync.AlreadyRunning as running:
        return SKIPPED, f"Run {running.run.id} started first; the next interval plans again."
    except sync.Refused as refused:  # OneLogin's API budget
        return REFUSED, str(refused)
    except sync.NotReady as not_ready:  # a connection, the template, nothing configured
        return FAILED, str(not_ready)
    row.run_id, row.counts = run.id, dict(plan.counts)
    writes = sum(plan.counts.get(action, 0) for action in WRITES)
    if not writes:
        return IN_SYNC, "Everyone is in sync: nothing to send."
    found = ", ".join(f"{plan.counts[a]} {a}" for a in WRITES if plan.counts.get(a))
    if row.apply != "safe":
        return PLANNED, (
            f"Found {found}; left for an admin to apply (DASHBOARD_RECONCILE_APPLY=off)."
        )
    try:
        sync.apply(run.id, ACTOR)  # no confirmation: a tripped guard refuses
    except sync.NeedsConfirmation as needed:
        return GUARD, f"Not applied: {needed} The plan waits on the Sync page."
    except sync.AlreadyRunning as running:
        return SKIPPED, f"Run {running.run.id} started first; the next interval plans again."
    except (sync.Refused, sync.NotReady) as refused:
        return REFUSED, f"Not applied: {refused}"
    return APPLIED, f"Found {found}; applied as run {run.id}."


def _finish(row: ScheduledReconcile, outcome: str, message: str) -> None:
    row.outcome, row.message, row.finished_at = outcome, message, utcnow()
    audit.record(
        "sync.schedule",
        actor=ACTOR,
        outcome=AUDIT_OUTCOME.get(outcome, "refused" if outcome == SKIPPED else "failed"),
        source="sync",
        details={
            "reconcile": row.id,
            "result": outcome,
            "run": row.run_id,
            "counts": row.counts,
            "message": message,
        },
    )
    db.session.commit()


def _retire_stale(now: datetime) -> None:
    """A reconcile whose process died mid-plan stays `running`: say so after STALE_AFTER."""
    db.session.execute(
        update(ScheduledReconcile)
        .where(
            ScheduledReconcile.outcome == RUNNING,
            ScheduledReconcile.started_at < now - STALE_AFTER,
        )
        .values(
            outcome=FAILED,
            finished_at=now,
            message="Its process stopped before it finished; the next interval plans again.",
        )
    )
