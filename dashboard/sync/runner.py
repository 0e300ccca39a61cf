"""Working through a run: claim it, send its items with bounded concurrency, commit each
outcome as it arrives, beat the heartbeat, and stop cleanly on cancel, on a stop-the-run
error or when too many items fail.

Worker threads only talk HTTP; this thread alone touches the database. Items are marked
`running` just before they are handed out, so after a crash the ones whose outcome is
unknown are exactly those still `running`: they are re-checked against Workato on resume.
"""

from __future__ import annotations

import logging
import math
import os
import socket
import time
import uuid
from collections import deque
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

from flask import current_app
from sqlalchemy import select, update

from dashboard import audit
from dashboard.audit import imports as audit_imports
from dashboard.connections import errors
from dashboard.connections import service as connections
from dashboard.connections.clients import ONE_TRY, client_for
from dashboard.connections.models import SCIM
from dashboard.connections.vault import SecretUnreadable
from dashboard.directory import records
from dashboard.extensions import db
from dashboard.sync import runs
from dashboard.sync.executor import SUCCEEDED, Executor, Outcome, Work
from dashboard.sync.models import (
    CANCELLED,
    FAILED,
    ITEM_FAILED,
    ITEM_PENDING,
    ITEM_RUNNING,
    ITEM_SUCCEEDED,
    RETRY,
    STOPPED,
    Item,
    Run,
)
from dashboard.sync.models import SUCCEEDED as RUN_SUCCEEDED
from dashboard.sync.pace import Pace
from dashboard.timeutil import utcnow

items = Item.__table__
MIN_ITEMS_FOR_THRESHOLD = 10  # the failure share is judged only after this many outcomes
ACTOR = "sync"
BATCH = 500  # items read from the database at a time
HEARTBEAT_SECONDS = 1.0  # how often a running run says it is alive (a write)


log = logging.getLogger(__name__)


class LostRun(Exception):
    """Another process declared this run interrupted (our heartbeat was late): stop."""


def owner_id() -> str:
    """Who is working: host, process and a random part (a thread per run in the web app)."""
    return f"{socket.gethostname()[:60]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _settings():
    return current_app.extensions["dashboard.settings"]


def executor_for(client, pace: Pace) -> Executor:
    """The executor a run (or provisioning one user) sends with, as configured."""
    settings = _settings()
    return Executor(
        client,
        pace,
        attempts=settings.DASHBOARD_SYNC_ATTEMPTS,
        backoff_base=settings.DASHBOARD_SYNC_BACKOFF_SECONDS,
    )


def process(run_id: int, owner: str | None = None) -> Run | None:
    """Carry out a queued run to its end. None when another process claimed it first."""
    owner = owner or owner_id()
    if not runs.claim(run_id, owner):
        return None
    run = db.session.get(Run, run_id)
    audit.record(
        "sync.run.started",
        actor=run.started_by or ACTOR,
        outcome="success",
        source="sync",
        details={"run": run_id, "kind": run.kind, "items": run.total, "owner": owner},
    )
    db.session.commit()
    try:
        status, message = _work(run, owner)
    except errors.ConnectionProblem as problem:
        status, message = STOPPED, problem.message
    except LostRun:
        db.session.rollback()
        return db.session.get(Run, run_id)
    except Exception:
        # Leave it to the heartbeat's expiry: it shows as interrupted and can be resumed.
        db.session.rollback()
        raise
    _end(run, owner, status, message)
    _import_events(run)
    return db.session.get(Run, run_id)


def _import_events(run: Run) -> None:
    """OneLogin's and Workato's own record of what the run did, into the audit trail. The run
    is over whatever happens here: a failing source is said in its audit.import entry."""
    try:
        audit_imports.import_all(run.started_by or ACTOR)
    except Exception:  # an import must never turn a finished run into an error
        db.session.rollback()
        log.exception("Importing OneLogin and Workato events after run %s failed", run.id)


def _work(run: Run, owner: str) -> tuple[str, str | None]:
    settings = _settings()
    scim = connections.get(SCIM)
    if scim is None or not scim.has_secret:
        return STOPPED, "There is no SCIM connection: save one on Connections."
    if not scim.enabled:
        return STOPPED, "SCIM is disabled on Connections: re-enable it to run."
    pace = Pace(settings.DASHBOARD_SYNC_RATE)
    try:
        client = client_for(scim, retry=ONE_TRY, pace=pace)
    except SecretUnreadable:
        return STOPPED, (
            "The stored SCIM token cannot be decrypted with DASHBOARD_ENCRYPTION_KEY (was a key "
            "dropped too early?): save the token again on Connections, then resume."
        )
    executor = executor_for(client, pace)
    beat_every = settings.DASHBOARD_SYNC_LEASE_SECONDS / 4
    threshold = settings.DASHBOARD_SYNC_FAILURE_THRESHOLD
    width = settings.DASHBOARD_SYNC_CONCURRENCY
    recheck_all = run.kind == RETRY
    done = failed = 0
    stop: tuple[str, str] | None = None
    in_flight: dict[Future, Pending] = {}
    last_beat = -math.inf  # the first round checks at once (a cancel may already wait)
    queue: deque[Pending] = deque()
    after = 0  # items are read a batch at a time: 100,000 of them need not fit in memory
    with client, ThreadPoolExecutor(width, thread_name_prefix=f"sync-{run.id}") as pool:
        while True:
            # Before anything is sent: a cancel (even one made while queued) or a lost
            # lease (this process was paused for longer than it) stops the sending first.
            if time.monotonic() - last_beat >= min(beat_every, HEARTBEAT_SECONDS):
                ours, cancel = runs.heartbeat(run.id, owner)
                last_beat = time.monotonic()
                if not ours:
                    raise LostRun(run.id)
            else:
                cancel = runs.cancel_requested(run.id)  # a read: cheap enough every round
            if cancel and stop is None:
                stop = (CANCELLED, "Cancelled; the items not yet sent are left pending.")
                queue.clear()
            if stop is None and not queue:
                queue.extend(_unfinished(run.id, after, BATCH))
                after = queue[-1].id if queue else after
            batch = []
            if stop is None and queue and len(in_flight) < width:
                batch = [queue.popleft() for _ in range(min(width - len(in_flight), len(queue)))]
                _mark_running(batch)
            # One commit a round: the last round's outcomes, and the `running` marks that
            # must be stored before their requests go out.
            db.session.commit()
            for item in batch:
                in_flight[pool.submit(executor.perform, item.work(recheck_all))] = item
            if not in_flight:
                break
            finished, _ = wait(in_flight, timeout=beat_every, return_when=FIRST_COMPLETED)
            for future in finished:
                item = in_flight.pop(future)
                outcome = future.result()
                _record(run, item, outcome)
                done += 1
                failed += outcome.status != SUCCEEDED
                if outcome.stop and stop is None:
                    stop = (STOPPED, outcome.stop)
            if done >= MIN_ITEMS_FOR_THRESHOLD and failed / done > threshold and stop is None:
                stop = (
                    STOPPED,
                    f"{failed} of {done} items failed ({failed / done:.0%}), more than the "
                    f"{threshold:.0%} allowed (DASHBOARD_SYNC_FAILURE_THRESHOLD): stopped so a "
                    "systematic problem is not repeated for everyone. The failed items say why.",
                )
            if stop is not None:
                queue.clear()
    if stop is not None:
        return stop
    return (FAILED, f"{failed} item(s) failed.") if failed else (RUN_SUCCEEDED, None)


@dataclass(frozen=True)
class Pending:
    """An item as read for sending: plain values, so no database session is involved."""

    id: int
    key: str
    user_name: str
    action: str
    attempts: int
    unknown: bool  # still `running` from an earlier process: its outcome is unknown
    request: dict[str, Any] | None
    desired: dict[str, Any] | None
    scim_id: str | None

    def work(self, recheck_all: bool) -> Work:
        recheck = recheck_all or self.unknown
        return Work(
            self.user_name, self.action, self.request or {}, self.desired, recheck, self.scim_id
        )


def _unfinished(run_id: int, after: int, limit: int) -> list[Pending]:
    rows = db.session.execute(
        select(
            items.c.id,
            items.c.key,
            items.c.user_name,
            items.c.action,
            items.c.attempts,
            items.c.status,
            items.c.request,
            items.c.desired,
            items.c.scim_id,
        )
        .where(
            items.c.run_id == run_id,
            items.c.status.in_((ITEM_PENDING, ITEM_RUNNING)),
            items.c.id > after,
        )
        .order_by(items.c.id)
        .limit(limit)
    )
    return [
        Pending(
            r.id,
            r.key,
            r.user_name,
            r.action,
            r.attempts,
            r.status == ITEM_RUNNING,
            r.request,
            r.desired,
            r.scim_id,
        )
        for r in rows
    ]


def _mark_running(batch: list[Pending]) -> None:
    ids = [item.id for item in batch]
    db.session.execute(update(items).where(items.c.id.in_(ids)).values(status=ITEM_RUNNING))


def _record(run: Run, item: Pending, outcome: Outcome) -> None:
    ok = outcome.status == SUCCEEDED
    attempts = item.attempts + outcome.attempts
    # A write refused for the whole run (401, SCIM disabled) was not applied: it stays
    # pending, so resuming once the token is fixed sends it.
    status = ITEM_SUCCEEDED if ok else ITEM_PENDING if outcome.stop else ITEM_FAILED
    values = {
        "status": status,
        "attempts": attempts,
        "http_status": outcome.http_status,
        "error": outcome.error,
        "duration_ms": outcome.duration_ms,
        "request": outcome.request,
        "response": outcome.response,
        "note": outcome.note,
        "finished_at": utcnow(),
    }
    if outcome.user is not None:
        values["scim_id"] = outcome.user.id
    db.session.execute(update(items).where(items.c.id == item.id).values(**values))
    if status != ITEM_PENDING:
        records.record_outcome(item.key, item.action, ok, outcome.user, outcome.error)
    audit.record(
        f"sync.{item.action}",
        actor=ACTOR,
        outcome="success" if ok else "failed",
        target_user=item.user_name,
        source="sync",
        details={
            "run": run.id,
            "item": item.id,
            "http_status": outcome.http_status,
            "attempts": attempts,
            **({"error": outcome.error} if outcome.error else {}),
            **({"note": outcome.note} if outcome.note else {}),
        },
    )


def _end(run: Run, owner: str, status: str, message: str | None) -> None:
    if not runs.finish(run.id, owner, status, message):
        db.session.rollback()  # no longer ours: whoever took it over writes its end
        return
    records.release_pending([run.id])
    counts = runs.item_counts(run.id)
    left = sum(n for (_, s), n in counts.items() if s == ITEM_PENDING)
    audit.record(
        "sync.run.finished",
        actor=run.started_by or ACTOR,
        outcome="success" if status == RUN_SUCCEEDED else "failed",
        source="sync",
        details={
            "run": run.id,
            "status": status,
            "succeeded": sum(n for (_, s), n in counts.items() if s == ITEM_SUCCEEDED),
            "failed": sum(n for (_, s), n in counts.items() if s == ITEM_FAILED),
            "pending": left,
            **({"message": message} if message else {}),
        },
    )
    db.session.commit()
