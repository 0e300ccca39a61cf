"""Automatic takeover: a run whose process stopped beating (crash, kill, reboot) is resumed
by another process once the lease passes, with nobody clicking, exactly as an admin's Resume
would (what succeeded is not sent again; items of unknown outcome are re-checked first).

Called by every background loop (dashboard.background): a `flask sync worker` queues it for
its own main loop; a web process with the embedded executor starts it in a thread, so a web
process that restarts carries on the run it was working. The database settles who takes it
(runs.activate from `interrupted` is one conditional statement). After MAX_TAKEOVERS a run
stops with a message instead: something in it may be what kills its workers.
"""

from __future__ import annotations

from sqlalchemy import update

from dashboard import audit
from dashboard.extensions import db
from dashboard.sync import runs, service
from dashboard.sync.models import INTERRUPTED, STOPPED, Run
from dashboard.timeutil import utcnow

ACTOR = "takeover"  # who the audit trail says resumed it
MAX_TAKEOVERS = 3
GAVE_UP = (
    "Its process stopped {n} times and another took it over each time: stopped so that it "
    "does not loop. Look at its items and the servers' logs; Resume it by hand once the cause "
    "is fixed."
)


def take_over(*, start: bool) -> Run | None:
    """Resume the run the lease retired, if it may be resumed; the run queued, or None.
    `start`: start it in this process (the embedded executor) rather than leave it queued
    for a worker."""
    service.current_active()  # retires a run whose process stopped beating
    if runs.active_run() is not None:
        return None
    run = runs.last_interrupted(utcnow() - service.PLAN_TTL)
    if run is None or not service.can_resume(run, service.unfinished(run)):
        return None
    if run.takeovers >= MAX_TAKEOVERS:
        _give_up(run)
        return None
    try:
        return service.resume(run.id, ACTOR, start=start, takeover=True)
    except (service.Refused, service.AlreadyRunning, service.NotReady):
        # Another process took it first, SCIM is disabled, or a newer run exists: the run
        # stays interrupted (an admin sees why on its page).
        db.session.rollback()
        return None


def _give_up(run: Run) -> None:
    message = GAVE_UP.format(n=run.takeovers + 1)
    stopped = db.session.execute(
        update(Run)
        .where(Run.id == run.id, Run.status == INTERRUPTED, Run.takeovers == run.takeovers)
        .values(status=STOPPED, message=message)
        .returning(Run.id)
    ).first()
    if stopped is None:  # another process settled it first
        db.session.rollback()
        return
    audit.record(
        service.TAKEOVER,
        actor=ACTOR,
        outcome="refused",
        source="sync",
        details={"run": run.id, "takeovers": run.takeovers, "message": message},
    )
    db.session.commit()
