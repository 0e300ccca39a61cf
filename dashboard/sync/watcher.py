"""The watcher of a run being sent: a thread that reads, every WATCH_SECONDS, whether the
run is still this process's, whether someone asked to cancel it, and whether the Workato SCIM
connection it sends through is still the one it started with (enabled, same base URL, same
token). It closes the run's gate on any of those, so the emergency stop on Connections stops
a run already sending, whatever it is waiting for; otherwise it confirms the gate.

Reads only, each in its own short transaction, with its own app context and session.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import datetime

from flask import Flask
from sqlalchemy import select

from dashboard.connections.models import SCIM, Connection
from dashboard.extensions import db
from dashboard.sync import handover
from dashboard.sync.gate import WATCH_SECONDS, Gate
from dashboard.sync.models import CANCELLED, RUNNING, STOPPED, Run

log = logging.getLogger(__name__)
CANCELLED_MESSAGE = "Cancelled; the items not yet sent are left pending."
RESUME = "The items not yet sent are left pending: resume the run from the Sync page"


@dataclass(frozen=True)
class Watched:
    """What the run's SCIM client was built from: a change to any of it stops the run."""

    enabled: bool
    base_url: str
    has_secret: bool
    secret_saved_at: datetime | None

    @classmethod
    def of(cls, connection: Connection | None) -> Watched | None:
        if connection is None:
            return None
        return cls(
            connection.enabled,
            connection.base_url,
            connection.has_secret,
            connection.secret_saved_at,
        )

    def stop_reason(self, now: Watched | None) -> str | None:
        """Why the run must stop, given the connection as it is now; None to go on."""
        if now is None or not now.has_secret:
            return f"The SCIM token was cleared on Connections: stopped. {RESUME} with a new one."
        if not now.enabled:
            return (
                "SCIM was disabled on Connections (the emergency stop): stopped. "
                f"{RESUME} once SCIM is enabled again."
            )
        if now.base_url != self.base_url:
            return (
                f"The SCIM base URL changed to {now.base_url}: stopped, so that no write of this "
                f"run goes out unchecked. {RESUME} to go on against the new address."
            )
        if now.secret_saved_at != self.secret_saved_at:
            return (
                f"The SCIM token was replaced on Connections: stopped. {RESUME} to go on with "
                "the new token."
            )
        return None


class Watcher:
    def __init__(
        self, app: Flask, run_id: int, owner: str, gate: Gate, started_with: Watched | None
    ) -> None:
        self.app, self.run_id, self.owner, self.gate = app, run_id, owner, gate
        self.started_with = started_with
        self.hands_over = True  # False: the run ends here even while the process stops
        self._done = threading.Event()
        self._thread = threading.Thread(
            target=self._watch, name=f"sync-{run_id}-watcher", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._done.set()
        self._thread.join(timeout=10)

    def _watch(self) -> None:
        with self.app.app_context():
            try:
                while not self._done.is_set() and not self.gate.closed:
                    try:
                        self.look()
                    except Exception:
                        # Not confirmed: the gate waits, and stops the run if this lasts.
                        db.session.rollback()
                        log.exception("Watching run %s failed", self.run_id)
                    self._done.wait(WATCH_SECONDS)
            finally:
                db.session.remove()

    def look(self) -> None:
        seen_at = self.gate.now()
        run = db.session.execute(
            select(Run.owner, Run.status, Run.cancel_requested).where(Run.id == self.run_id)
        ).first()
        connection = db.session.scalar(select(Connection).where(Connection.kind == SCIM))
        now = Watched.of(connection)
        db.session.rollback()  # a read: no transaction stays open between looks
        if run is None or run.owner != self.owner or run.status != RUNNING:
            self.gate.close(STOPPED, "Taken over by another process.", lost=True)
            return
        if run.cancel_requested:
            self.gate.close(CANCELLED, CANCELLED_MESSAGE)
            return
        if self.hands_over and handover.begun():  # stopping: another process carries it on
            self.gate.close(handover.HANDED_OVER, handover.MESSAGE)
            return
        reason = self.started_with.stop_reason(now) if self.started_with else None
        if reason:
            self.gate.close(STOPPED, reason)
            return
        self.gate.confirm(seen_at)
