"""The background loop: every few seconds, carry on runs whose process stopped (takeover),
reconcile if this interval's reconcile is due (dashboard.schedule) and tell the alerts what
changed (dashboard.alerts.watch).

Every process may run one: the database decides which of them reconciles an interval and
which sends an alert, so two web processes and a worker never double anything.
"""

from __future__ import annotations

import logging
import threading

from flask import Flask, current_app

from dashboard.alerts.watch import watch
from dashboard.extensions import db
from dashboard.schedule import service as schedule
from dashboard.sync import handover, runner, runs, takeover

log = logging.getLogger(__name__)
TICK_SECONDS = 10.0  # how late a due reconcile or a new alert may be noticed, at most
KEY = "dashboard.background"


def tick(owner: str) -> None:
    """One pass; never raises (the loop must outlive a bad moment of the database)."""
    for step in (carry_on_runs, lambda: schedule.tick(owner), watch):
        try:
            step()
        except Exception:
            db.session.rollback()
            log.exception("the background loop's %s failed; it tries again next tick", step)


def carry_on_runs() -> None:
    """Runs nobody is working: one whose process stopped beating is taken over (a worker
    queues it for its main loop; the embedded executor starts it here), and with the
    embedded executor a queued run another web process handed over is started here."""
    embedded = current_app.extensions["dashboard.settings"].DASHBOARD_SYNC_EXECUTOR == "thread"
    takeover.take_over(start=embedded)
    if embedded and not handover.begun() and (queued := runs.next_queued()) is not None:
        runner.launch(queued)  # the claim settles it if its own process starts it too


class Loop:
    def __init__(self, app: Flask, owner: str) -> None:
        self.app, self.owner = app, owner
        self.stopping = threading.Event()
        every = app.extensions["dashboard.settings"].DASHBOARD_RECONCILE_EVERY
        # A short interval is noticed within a third of it.
        self.seconds = min(TICK_SECONDS, every / 3) if every else TICK_SECONDS
        self.thread = threading.Thread(target=self._run, name="dashboard-background", daemon=True)

    def _run(self) -> None:
        while True:
            with self.app.app_context():
                try:
                    tick(self.owner)
                finally:
                    db.session.remove()
            if self.stopping.wait(self.seconds):
                return

    def stop(self, timeout: float | None = None) -> None:
        self.stopping.set()
        self.thread.join(timeout)


def start(app: Flask, owner: str) -> Loop:
    """This process's loop, started once."""
    loop = app.extensions.get(KEY)
    if loop is None:
        loop = app.extensions[KEY] = Loop(app, owner)
        loop.thread.start()
    return loop
