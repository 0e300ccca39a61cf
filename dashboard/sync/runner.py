"""Working through a run: claim it, send its items with bounded concurrency, commit each
outcome as it arrives, beat the heartbeat, and stop cleanly on cancel, on a stop-the-run
error, on a change to the SCIM connection (the watcher) or when too many items fail.

Worker threads only talk HTTP, and every request passes the run's gate first; this thread
alone writes the run's items (sending.py). Items are marked `running` just before they are
handed out, so after a crash the ones whose outcome is unknown are exactly those still
`running`: they are re-checked against Workato on resume. Every run goes through here, a
one-user write (a run of one item, started by its request) as much as a full sync.
"""

from __future__ import annotations

import logging
import math
import os
import socket
import threading
import time
import uuid
from collections import deque
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import replace

from flask import Flask, current_app

from dashboard import audit
from dashboard.connections import errors
from dashboard.connections import service as connections
from dashboard.connections.clients import ONE_TRY, client_for
from dashboard.connections.models import SCIM
from dashboard.connections.vault import SecretUnreadable
from dashboard.extensions import db
from dashboard.history import imports as history
from dashboard.sync import claims, handover, learned, people, runs
from dashboard.sync.executor import SUCCEEDED, Executor, Outcome
from dashboard.sync.gate import Gate
from dashboard.sync.models import (
    CANCELLED,
    FAILED,
    ITEM_FAILED,
    ITEM_PENDING,
    ITEM_SUCCEEDED,
    ONE_USER,
    RETRY,
    STOPPED,
    Run,
)
from dashboard.sync.models import SUCCEEDED as RUN_SUCCEEDED
from dashboard.sync.pace import Pace
from dashboard.sync.sending import (
    ACTOR,
    LostRun,
    Pending,
    mark_running,
    record_all,
    unfinished,
    unsend,
)
from dashboard.sync.watcher import CANCELLED_MESSAGE, Watched, Watcher

MIN_ITEMS_FOR_THRESHOLD = 10  # the failure share is judged only after this many outcomes
BATCH = 500  # items read from the database at a time
HEARTBEAT_SECONDS = 1.0  # how often a running run says it is alive (a write)
# A one-user write waits this long for another writer of the same person (a run's write in
# flight) before it gives up; a run's items wait for as long as it takes.
WAIT_FOR_PERSON_SECONDS = 30.0
DEFERRED_RETRY_SECONDS = 0.1
# Outcomes are recorded a round at a time, at most this long after they arrive; items are
# marked `running` ahead of the writers, up to MAX_AHEAD at once.
ROUND_SECONDS = 0.1
MAX_AHEAD = 200

log = logging.getLogger(__name__)
__all__ = ["LostRun", "Pending", "executor_for", "launch", "owner_id", "process"]


def owner_id() -> str:
    """Who is working: host, process and a random part (a thread per run in the web app)."""
    return f"{socket.gethostname()[:60]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _settings():
    return current_app.extensions["dashboard.settings"]


def executor_for(client, pace: Pace, **options) -> Executor:
    """The executor a run sends with, as configured."""
    settings = _settings()
    return Executor(
        client,
        pace,
        attempts=settings.DASHBOARD_SYNC_ATTEMPTS,
        backoff_base=settings.DASHBOARD_SYNC_BACKOFF_SECONDS,
        **options,
    )


def launch(run_id: int) -> None:
    """The embedded executor: a thread of this process works the run. With
    DASHBOARD_SYNC_EXECUTOR=worker, `flask sync worker` picks it up instead."""
    if _settings().DASHBOARD_SYNC_EXECUTOR != "thread" or handover.begun():
        return  # a worker takes it; or this process is stopping, and another will
    app = current_app._get_current_object()
    thread = threading.Thread(
        target=_work_in_thread, args=(app, run_id), name=f"sync-run-{run_id}", daemon=True
    )
    app.extensions.setdefault("dashboard.sync_threads", []).append(thread)
    thread.start()


def hand_over_all(app: Flask, timeout: float) -> None:
    """This process is stopping: its runs finish the writes in flight, record them and go
    back to the queue (handover), waited for up to `timeout` seconds in all."""
    handover.begin()
    deadline = time.monotonic() + timeout
    for thread in app.extensions.get("dashboard.sync_threads", []):
        thread.join(max(0.0, deadline - time.monotonic()))


def _work_in_thread(app: Flask, run_id: int) -> None:
    with app.app_context():
        try:
            process(run_id)
        except Exception:
            # The run's heartbeat stops: it shows as interrupted and can be resumed.
            log.exception("sync run %s stopped on an unexpected error", run_id)
        finally:
            db.session.remove()


def process(run_id: int, owner: str | None = None) -> Run | None:
    """Carry out a queued run to its end. None when another process claimed it first."""
    owner = owner or owner_id()
    if not runs.claim(run_id, owner):
        return None
    run = db.session.get(Run, run_id)
    one_user = run.kind == ONE_USER  # its request audits it as sync.user, with its steps
    if not one_user:
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
        log.warning("Run %s was taken over by another process: stopped touching it.", run_id)
        return db.session.get(Run, run_id)
    except Exception:
        # Leave it to the heartbeat's expiry: it shows as interrupted and can be resumed.
        db.session.rollback()
        raise
    _end(run, owner, status, message, audited=not one_user)
    if not one_user and status != handover.HANDED_OVER:
        _import_events(run)
    return db.session.get(Run, run_id)


def _import_events(run: Run) -> None:
    """OneLogin's and Workato's own record of what the run did, into the audit trail. The run
    is over whatever happens here: a failing source is said in its audit.import entry."""
    try:
        history.import_all(run.started_by or ACTOR)
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
    if run.total and not runs.has_items(run.id):
        return FAILED, (
            "Its preview was replaced while it was being applied, so it holds no writes: "
            "nothing was sent. Preview again."
        )
    gate = Gate()
    pace = Pace.for_setting(settings.DASHBOARD_SYNC_RATE, learned.rate(scim.base_url), gate=gate)
    try:
        client = client_for(scim, retry=ONE_TRY, pace=pace)
    except SecretUnreadable:
        return STOPPED, (
            "The stored SCIM token cannot be decrypted with DASHBOARD_ENCRYPTION_KEY (was a key "
            "dropped too early?): save the token again on Connections, then resume."
        )
    executor = executor_for(client, pace, sleep=gate.sleep)
    watcher = Watcher(current_app._get_current_object(), run.id, owner, gate, Watched.of(scim))
    # A one-user write belongs to the request that asked for it, which the server lets end.
    watcher.hands_over = run.kind != ONE_USER
    db.session.commit()  # no transaction stays open while Workato is waited for
    watcher.start()
    try:
        with (
            client,
            ThreadPoolExecutor(
                settings.DASHBOARD_SYNC_CONCURRENCY, thread_name_prefix=f"sync-{run.id}"
            ) as pool,
        ):
            try:
                ended = _send_all(run, owner, gate, executor, pool)
            except BaseException:
                # Nothing more goes out, also not the retries of writes still in flight.
                gate.close(STOPPED, "The run stopped on an error.", lost=True)
                raise
    finally:
        watcher.stop()
    _remember_rate(pace, scim.base_url)
    return ended


def _remember_rate(pace: Pace, base_url: str) -> None:
    """What the run found out about Workato's limit, for the next run to start from: kept
    when a 429 taught it something or the rate grew; a run of a few writes learns nothing."""
    finder = pace.finder
    if finder is None or not (finder.throttles or finder.current != finder.start):
        return
    try:
        learned.remember(base_url, finder.current)
        db.session.commit()
    except Exception:  # never worth failing a run over
        db.session.rollback()
        log.exception("Could not keep the learned SCIM rate")


def _send_all(run: Run, owner: str, gate: Gate, executor: Executor, pool) -> tuple[str, str | None]:
    settings = _settings()
    beat_every = min(settings.DASHBOARD_SYNC_LEASE_SECONDS / 4, HEARTBEAT_SECONDS)
    lease = settings.DASHBOARD_SYNC_LEASE_SECONDS
    threshold = settings.DASHBOARD_SYNC_FAILURE_THRESHOLD
    most = settings.DASHBOARD_SYNC_CONCURRENCY
    recheck_all = run.kind == RETRY
    hands_over = run.kind != ONE_USER  # see _work: a one-user write ends with its request
    waits_for_others = WAIT_FOR_PERSON_SECONDS if run.kind == ONE_USER else None
    done = failed = 0
    stop: tuple[str, str] | None = None
    in_flight: dict[Future, Pending] = {}
    last_beat = -math.inf  # the first round checks at once (a cancel may already wait)
    queue: deque[Pending] = deque()  # read, not yet marked
    ready: deque[Pending] = deque()  # marked `running` and claimed: handed to free writers
    unrecorded: list[tuple[Pending, Outcome]] = []
    last_record = time.monotonic()
    deferred: list[Pending] = []  # another writer holds the person: tried again later
    deferred_since: float | None = None
    after = 0  # items are read a batch at a time: 100,000 of them need not fit in memory
    exhausted = False
    while True:
        width = executor.pace.writers(most)
        if time.monotonic() - last_beat >= beat_every:
            ours, cancel = runs.heartbeat(run.id, owner, executor.pace.rate)
            last_beat = time.monotonic()
        else:
            # A read before every hand-out: a cancel committed, or a takeover, before a
            # writer came free stops the next write, whatever the watcher has seen yet.
            ours, cancel = runs.look(run.id, owner)
        if not ours:
            gate.close(STOPPED, "Taken over by another process.", lost=True)
        if cancel:
            gate.close(CANCELLED, CANCELLED_MESSAGE)
        if hands_over and handover.begun():  # this process is stopping: no new write
            gate.close(handover.HANDED_OVER, handover.MESSAGE)
        if gate.closed and stop is None:
            if gate.lost:
                raise LostRun(run.id)
            stop = (gate.status or STOPPED, gate.reason or "Stopped.")
        # Free writers first (their items were marked and committed in an earlier round):
        # nothing below is worth a writer's wait.
        if not _hand_out(ready, in_flight, width, stop, pool, executor, recheck_all):
            stop = _exiting(hands_over)
        # Outcomes a round at a time (a few statements for many writes: the dashboard's own
        # CPU per write), and at once when nothing else is going on or the run stops.
        if unrecorded and (
            stop is not None or not in_flight or time.monotonic() - last_record >= ROUND_SECONDS
        ):
            record_all(run, owner, unrecorded)
            unrecorded, last_record = [], time.monotonic()
            # Committed before anyone is claimed: a transaction holding the audit chain's
            # head must not wait on another writer's claim (a lock cycle).
            db.session.commit()
        if stop is not None:
            queue.clear()
            deferred.clear()
            unsend(run, owner, list(ready))  # marked, never sent: pending again
            ready.clear()
        if stop is None and not queue and not exhausted:
            queue.extend(unfinished(run.id, after, BATCH))
            after = queue[-1].id if queue else after
            exhausted = not queue
        if stop is None and not queue and deferred and not in_flight and not ready:
            if waits_for_others and time.monotonic() - deferred_since > waits_for_others:
                holder = claims.holder(deferred[0].key)
                stop = (
                    STOPPED,
                    f"A write for {deferred[0].user_name} was still in flight "
                    f"(run {holder}) after {waits_for_others:.0f} seconds: try again when "
                    "it has finished.",
                )
                deferred.clear()
            else:
                gate.sleep(DEFERRED_RETRY_SECONDS)
                queue.extend(replace(item, unknown=True) for item in deferred)
                deferred.clear()
        if stop is None and queue and len(ready) < width:
            # Marked a batch at a time, ahead of the writers: what they send in the next rounds.
            wanted = [queue.popleft() for _ in range(min(_ahead(width, executor), len(queue)))]
            marked, waiting = mark_running(run, owner, wanted, lease)
            ready.extend(marked)
            if waiting and not deferred:
                deferred_since = deferred_since or time.monotonic()
            deferred.extend(waiting)
        # The `running` marks are stored before their requests go out.
        db.session.commit()
        if not _hand_out(ready, in_flight, width, stop, pool, executor, recheck_all):
            stop = stop or _exiting(hands_over)
        if not in_flight:
            if unrecorded or ready or queue or deferred or (stop is None and not exhausted):
                continue
            break
        waiting_for = ROUND_SECONDS if unrecorded else beat_every
        finished, _ = wait(in_flight, timeout=waiting_for, return_when=FIRST_COMPLETED)
        for future in finished:
            item, outcome = in_flight.pop(future), future.result()
            unrecorded.append((item, outcome))
            done += 1
            failed += outcome.status != SUCCEEDED and not outcome.stop
            if outcome.stop and stop is None:
                stop = (gate.status, gate.reason) if gate.closed else (STOPPED, outcome.stop)
                if outcome.http_status == 401:  # the token was refused: the connection is down
                    connections.note_health(SCIM, False, outcome.stop)
                if gate.lost:
                    raise LostRun(run.id)
        if done >= MIN_ITEMS_FOR_THRESHOLD and failed / done > threshold and stop is None:
            stop = (
                STOPPED,
                f"{failed} of {done} items failed ({failed / done:.0%}), more than the "
                f"{threshold:.0%} allowed (DASHBOARD_SYNC_FAILURE_THRESHOLD): stopped so a "
                "systematic problem is not repeated for everyone. The failed items say why.",
            )
    db.session.commit()
    if stop is not None:
        return stop
    return (FAILED, f"{failed} item(s) failed.") if failed else (RUN_SUCCEEDED, None)


def _hand_out(ready, in_flight, width, stop, pool, executor, recheck_all) -> bool:
    """Give marked items to the writers that are free; False when the pool refused them:
    Python is exiting and its pools take no more work (the run must stop, not die)."""
    while stop is None and ready and len(in_flight) < width:
        try:
            future = pool.submit(executor.perform, ready[0].work(recheck_all))
        except RuntimeError:
            return False
        in_flight[future] = ready.popleft()
    return True


def _exiting(hands_over: bool) -> tuple[str, str]:
    if hands_over:
        return handover.HANDED_OVER, handover.MESSAGE
    return STOPPED, "The dashboard stopped before this write was sent: act on them again."


def _ahead(width: int, executor: Executor) -> int:
    """How many items are marked at once: what the writers send over the next rounds (two
    at the run's rate), at least two for each writer."""
    rate = executor.pace.rate
    coming = math.ceil(rate * 2 * ROUND_SECONDS) if rate else 0
    return min(max(2 * width, coming), MAX_AHEAD)


def _end(run: Run, owner: str, status: str, message: str | None, *, audited: bool) -> None:
    if status == handover.HANDED_OVER:
        _hand_over(run, owner, message or handover.MESSAGE)
        return
    if not runs.finish(run.id, owner, status, message):
        db.session.rollback()  # no longer ours: whoever took it over writes its end
        return
    people.release_pending([run.id])
    if not audited:
        db.session.commit()
        return
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
    audit.sign_digest("run")
    db.session.commit()


def _hand_over(run: Run, owner: str, message: str) -> None:
    """Back to the queue, at once: another process claims it without waiting for the lease
    (its writes in flight were recorded; the items marked ahead went back to pending)."""
    if not runs.release(run.id, owner, message):
        db.session.rollback()
        return
    audit.record(
        "sync.run.handed_over",
        actor=run.started_by or ACTOR,
        outcome="success",
        source="sync",
        details={"run": run.id, "owner": owner, "message": message},
    )
    db.session.commit()
