"""`flask sync worker`: work queued runs in this process, and keep the schedule and the
alerts going (dashboard.background.loop) while it waits."""

from __future__ import annotations

import signal
import threading

import click
from flask import current_app
from flask.cli import with_appcontext

from dashboard.background import loop
from dashboard.extensions import db
from dashboard.sync import handover, runner, runs, service
from dashboard.sync.models import QUEUED

POLL_SECONDS = 2.0


@click.command("worker")
@click.option(
    "--once",
    is_flag=True,
    help="Work the queued runs, then exit (no schedule, no alerts: those need a worker "
    "that keeps running, or the web process).",
)
@with_appcontext
def worker_command(once):
    """Work queued runs in this process (DASHBOARD_SYNC_EXECUTOR=worker), take over runs
    whose worker stopped, reconcile on the schedule (DASHBOARD_RECONCILE_EVERY) and send
    alerts. SIGTERM hands the run in hand over to another worker. Several workers, on several
    machines, may share one database: each run, each interval's reconcile and each alert is
    taken by one of them."""
    stopping = threading.Event()
    owner = runner.owner_id()
    background = None

    def stop(*_) -> None:
        # The run in hand finishes its writes in flight and goes back to the queue at once
        # (sync.handover): another worker carries it on without waiting for the lease.
        stopping.set()
        handover.begin()

    if not once:
        signal.signal(signal.SIGTERM, stop)
        background = loop.start(current_app._get_current_object(), owner)
    click.echo(f"Sync worker {owner} waiting for runs.", err=True)
    while not stopping.is_set():
        db.session.expire_all()
        service.current_active()
        run_id = runs.next_queued()
        if run_id is not None:
            run = runner.process(run_id, owner)
            if run is not None and run.status == QUEUED:  # SIGTERM: handed over
                click.echo(f"Run {run.id}: handed over to another process.", err=True)
            elif run is not None:
                click.echo(f"Run {run.id}: {run.status}.", err=True)
            continue
        if once:
            break
        stopping.wait(POLL_SECONDS)
    if background is not None:
        background.stop(timeout=loop.TICK_SECONDS)
