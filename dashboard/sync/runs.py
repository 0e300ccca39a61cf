"""Runs in the database: storing a plan, one active run at a time, claiming a queued run for
one process, its heartbeat, and the end of it. Every change here is one conditional
statement, so two processes (or two machines on one PostgreSQL) never both get a run.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import exists, func, select, update
from sqlalchemy.exc import IntegrityError

from dashboard.extensions import db
from dashboard.sync import claims, people
from dashboard.sync.models import (
    ACTIVE,
    CANCELLED,
    INTERRUPTED,
    ITEM_FAILED,
    ITEM_PENDING,
    ITEM_RUNNING,
    ITEM_SUCCEEDED,
    ITEM_SUPERSEDED,
    ONE_USER,
    PLANNED,
    QUEUED,
    RUNNING,
    SYNC,
    Item,
    Run,
)
from dashboard.timeutil import utcnow

runs, items = Run.__table__, Item.__table__


class AlreadyRunning(Exception):
    """Another run is queued or running; `run` is that one."""

    def __init__(self, run: Run) -> None:
        super().__init__(f"Run {run.id} is {run.status}.")
        self.run = run


def active_run() -> Run | None:
    """The run holding the one slot (a one-user write beside it holds none)."""
    return db.session.scalar(select(Run).where(Run.active == 1).limit(1))


def latest(kind: str | None = None) -> Run | None:
    """The newest run that was started, of `kind`, or of any kind but a one-user
    provisioning (which must not hide how the last sync went)."""
    query = select(Run).where(Run.status != PLANNED).order_by(Run.id.desc()).limit(1)
    query = query.where(Run.kind == kind) if kind else query.where(Run.kind != ONE_USER)
    return db.session.scalar(query)


def get(run_id: int) -> Run | None:
    return db.session.get(Run, run_id)


def preview() -> Run | None:
    """The sync preview waiting to be applied (a new plan replaces it)."""
    query = select(Run).where(Run.status == PLANNED, Run.kind == SYNC).order_by(Run.id.desc())
    return db.session.scalar(query.limit(1))


def history(limit: int) -> list[Run]:
    query = select(Run).where(Run.status != PLANNED).order_by(Run.id.desc()).limit(limit)
    return list(db.session.scalars(query))


def items_page(run_id: int, status: str, after: int, limit: int) -> list[Item]:
    """A run's items after item id `after`, of `status` when given (keyset paging)."""
    query = select(Item).where(Item.run_id == run_id, Item.id > after)
    if status:
        query = query.where(Item.status == status)
    return list(db.session.scalars(query.order_by(Item.id).limit(limit)))


class NotStartable(Exception):
    """The run is no longer in the status it was to be started from (applied twice, or
    replaced by a newer preview meanwhile)."""


def activate(
    run_id: int,
    actor: str,
    *,
    from_status: str = PLANNED,
    slot: bool = True,
    takeover: bool = False,
) -> None:
    """Make the run the active one: queued, waiting for a process to claim it. Not
    committed: the caller commits it with what goes with it (people pending, the audit
    entry). Raises AlreadyRunning with the run that holds the slot (the database settles a
    race), or NotStartable.

    A one-user write (`slot` False) takes no slot: it goes ahead beside a long run, and the
    person's claim keeps the two from writing the same person at once. A `takeover` (no one
    clicked: its process stopped) is counted; an admin's resume starts the count afresh."""
    try:
        changed = db.session.execute(
            update(runs)
            .where(runs.c.id == run_id, runs.c.status == from_status)
            .values(
                status=QUEUED,
                active=1 if slot else None,
                started_by=actor,
                cancel_requested=False,
                owner=None,
                heartbeat_at=utcnow(),  # when it was queued: see expire_stale
                takeovers=runs.c.takeovers + 1 if takeover else 0,
            )
            .returning(runs.c.id)
        ).first()
    except IntegrityError:
        db.session.rollback()
        holder = active_run()
        if holder is None:  # it finished meanwhile: try once more
            return activate(run_id, actor, from_status=from_status, slot=slot, takeover=takeover)
        raise AlreadyRunning(holder) from None
    if changed is None:
        db.session.rollback()
        holder = active_run()
        if holder is not None:
            raise AlreadyRunning(holder)
        raise NotStartable(f"Run {run_id} is no longer {from_status}.")
    return None


def claim(run_id: int, owner: str) -> bool:
    """Take a queued run for this process; False when another process took it first. The
    claims on people an earlier owner of the run left behind go: it is fenced out."""
    now = utcnow()
    claimed = db.session.execute(
        update(runs)
        .where(runs.c.id == run_id, runs.c.status == QUEUED)
        .values(
            status=RUNNING,
            owner=owner,
            heartbeat_at=now,
            started_at=func.coalesce(runs.c.started_at, now),
        )
        .returning(runs.c.id)
    ).first()
    if claimed is not None:
        claims.release_runs([run_id])
    db.session.commit()
    return claimed is not None


def has_items(run_id: int) -> bool:
    first = db.session.scalar(select(items.c.id).where(items.c.run_id == run_id).limit(1))
    return first is not None


def owned(run_id: int, owner: str):
    """True in SQL while `owner` still runs the run: the fence in every statement a worker
    writes with, so a process that lost its run (paused past the lease) changes nothing."""
    return exists().where(runs.c.id == run_id, runs.c.owner == owner, runs.c.status == RUNNING)


def still_owned(run_id: int, owner: str) -> bool:
    """Whether the run is still `owner`'s, holding its row (FOR SHARE on PostgreSQL) until the
    transaction ends: a takeover (expire, claim) waits for what this transaction writes to be
    committed, so nothing of a lost worker's lands after another took the run. SQLite's
    single writer gives the same order."""
    row = db.session.execute(
        select(runs.c.id)
        .where(runs.c.id == run_id, runs.c.owner == owner, runs.c.status == RUNNING)
        .with_for_update(read=True)
    ).first()
    return row is not None


def next_queued() -> int | None:
    """The oldest run waiting for a worker (a one-user write is run by its own request)."""
    query = select(Run.id).where(Run.status == QUEUED, Run.kind != ONE_USER)
    return db.session.scalar(query.order_by(Run.id).limit(1))


def heartbeat(run_id: int, owner: str, rate: float | None = None) -> tuple[bool, bool]:
    """(still ours, cancel requested), saying too the rate the run sends at now. Not ours
    any more means another process decided the run was interrupted: stop touching it."""
    row = db.session.execute(
        update(runs)
        .where(runs.c.id == run_id, runs.c.owner == owner, runs.c.status == RUNNING)
        .values(heartbeat_at=utcnow(), rate=None if rate is None else round(rate, 2))
        .returning(runs.c.cancel_requested)
    ).first()
    db.session.commit()
    return row is not None, bool(row and row[0])


def look(run_id: int, owner: str) -> tuple[bool, bool]:
    """(still ours, cancel requested), as `heartbeat` says it, read without a write."""
    row = db.session.execute(
        select(runs.c.owner, runs.c.status, runs.c.cancel_requested).where(runs.c.id == run_id)
    ).first()
    if row is None:
        return False, False
    return row.owner == owner and row.status == RUNNING, bool(row.cancel_requested)


def finish(run_id: int, owner: str, status: str, message: str | None) -> bool:
    done = db.session.execute(
        update(runs)
        .where(runs.c.id == run_id, runs.c.owner == owner, runs.c.status == RUNNING)
        .values(status=status, active=None, owner=None, finished_at=utcnow(), message=message)
        .returning(runs.c.id)
    ).first()
    if done is not None:
        claims.release_runs([run_id])
    return done is not None


def release(run_id: int, owner: str, message: str) -> bool:
    """Give a running run back to the queue (this process is stopping): still active, its
    people still pending, for another process to claim at once. Its claims on people go."""
    released = db.session.execute(
        update(runs)
        .where(runs.c.id == run_id, runs.c.owner == owner, runs.c.status == RUNNING)
        .values(status=QUEUED, owner=None, heartbeat_at=utcnow(), message=message)
        .returning(runs.c.id)
    ).first()
    if released is not None:
        claims.release_runs([run_id])
    return released is not None


def last_interrupted(since: datetime) -> Run | None:
    """The newest run retired as interrupted since `since` (one-user writes aside)."""
    query = select(Run).where(
        Run.status == INTERRUPTED, Run.kind != ONE_USER, Run.finished_at >= since
    )
    return db.session.scalar(query.order_by(Run.finished_at.desc(), Run.id.desc()).limit(1))


def expire_stale(lease_seconds: int, *, queued_too: bool) -> list[int]:
    """Runs whose process stopped beating (crash, restart, kill) become interrupted and
    free the slot. With the in-process executor a queued run nobody claimed within the
    lease was lost with its process too."""
    limit = utcnow() - timedelta(seconds=lease_seconds)
    statuses = (RUNNING, QUEUED) if queued_too else (RUNNING,)
    stale = runs.c.status.in_(statuses) & (runs.c.heartbeat_at < limit)
    expired = db.session.execute(
        update(runs)
        .where(stale)
        .values(
            status=INTERRUPTED,
            active=None,
            owner=None,
            finished_at=utcnow(),
            message="The process running it stopped (crash or restart). Resume it to finish.",
        )
        .returning(runs.c.id)
    ).all()
    ids = [row[0] for row in expired]
    if ids:
        people.release_pending(ids)
        claims.release_runs(ids)
    db.session.commit()
    return ids


def request_cancel(run_id: int) -> str | None:
    """Ask the run to stop. A queued run nobody claimed yet is cancelled at once (with no
    worker running it would otherwise hold the slot); a running one stops at its next
    check. The status it was in, or None when it is not active. The caller commits."""
    now = utcnow()
    cancelled = db.session.execute(
        update(runs)
        .where(runs.c.id == run_id, runs.c.status == QUEUED, runs.c.owner.is_(None))
        .values(
            status=CANCELLED,
            active=None,
            cancel_requested=True,
            finished_at=now,
            message="Cancelled before it started; nothing was sent.",
        )
        .returning(runs.c.id)
    ).first()
    if cancelled is not None:
        return QUEUED
    asked = db.session.execute(
        update(runs)
        .where(runs.c.id == run_id, runs.c.status.in_(ACTIVE))
        .values(cancel_requested=True)
        .returning(runs.c.id)
    ).first()
    return RUNNING if asked is not None else None


def item_counts(run_id: int) -> dict[tuple[str, str], int]:
    """(action, status) -> number of items."""
    rows = db.session.execute(
        select(Item.action, Item.status, func.count())
        .where(Item.run_id == run_id)
        .group_by(Item.action, Item.status)
    )
    return {(action, status): n for action, status, n in rows}


def finished_items(run_id: int, since: datetime) -> int:
    return db.session.scalar(
        select(func.count())
        .select_from(Item)
        .where(
            Item.run_id == run_id,
            Item.status.in_((ITEM_SUCCEEDED, ITEM_FAILED)),
            Item.finished_at >= since,
        )
    )


UNFINISHED = (ITEM_PENDING, ITEM_RUNNING)


def supersede(key: str, by_run: int, note: str) -> int:
    """The unfinished items of other runs for this person will never be sent: a one-user
    write decided afresh took their place (sending them later could undo it, e.g. reactivate
    a leaver). Called with the person's claim held, so none of them is in flight. The caller
    commits; the number superseded."""
    done = db.session.execute(
        update(items)
        .where(
            items.c.key == key,
            # Older runs only (a preview's too, so an Apply racing this cannot send it): a
            # newer one-user write decided later still, and goes after this one.
            items.c.run_id < by_run,
            items.c.status.in_(UNFINISHED),
        )
        .values(status=ITEM_SUPERSEDED, superseded_by=by_run, note=note, finished_at=utcnow())
        .returning(items.c.id)
    ).all()
    return len(done)


def supersede_unsent(key: str, note: str) -> int:
    """The person's writes no run is sending now (pending, or unknown in a run that is not
    running) will never be sent: see service.settle_person. The caller commits."""
    not_running = select(runs.c.id).where(runs.c.status != RUNNING)
    done = db.session.execute(
        update(items)
        .where(
            items.c.key == key,
            (items.c.status == ITEM_PENDING)
            | ((items.c.status == ITEM_RUNNING) & items.c.run_id.in_(not_running)),
        )
        .values(status=ITEM_SUPERSEDED, note=note, finished_at=utcnow())
        .returning(items.c.id)
    ).all()
    return len(done)
