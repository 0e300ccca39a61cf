"""The gate every write of a run passes just before it is sent: closed by a stop (cancel,
SCIM disabled, its token cleared or replaced, its base URL changed) or by losing the run to
another process. No Flask, no database: the run's watcher (runner.Watcher) reads those and
says so here, every WATCH_SECONDS.

Two promises, whatever the concurrency, rate or latency of Workato:
- a stop committed in the database closes the gate within WATCH_SECONDS, and no request
  starts after that (waits for the rate or a Retry-After are cut short);
- a process that was paused (SIGSTOP, a long GC, a frozen VM) sends nothing until the watcher
  has confirmed afresh that the run is still its own: the gate remembers when it was last
  confirmed, and a confirmation older than FRESH_SECONDS is waited for first.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from dashboard.connections import errors

WATCH_SECONDS = 0.2  # how often the watcher reads the run and the SCIM connection
FRESH_SECONDS = 1.0  # a confirmation older than this is waited for before sending
CONFIRM_WAIT_SECONDS = 30.0  # no confirmation for this long: the run stops (database gone?)
SERVICE = "Workato SCIM API"


class Gate:
    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._changed = threading.Condition()
        self._closed = threading.Event()
        self.reason: str | None = None
        self.status: str | None = None  # the run's status the stop leads to
        self.lost = False  # another process took the run over: record nothing more
        self._confirmed_at = clock()

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    def now(self) -> float:
        return self._clock()

    def confirm(self, seen_at: float) -> None:
        """The watcher's read, begun at `seen_at` (this gate's clock), found the run still
        ours and nothing stopping it. Dated from before the read: a pause between reading and
        confirming must not pass an old read off as fresh."""
        with self._changed:
            self._confirmed_at = max(self._confirmed_at, seen_at)
            self._changed.notify_all()

    def close(self, status: str, reason: str, *, lost: bool = False) -> None:
        """Stop sending; the first reason given is kept."""
        with self._changed:
            if not self._closed.is_set():
                self.status, self.reason, self.lost = status, reason, lost
                self._closed.set()
            self._changed.notify_all()

    def sleep(self, seconds: float) -> None:
        """Wait, but no longer than until the gate closes."""
        if seconds > 0:
            self._closed.wait(seconds)

    def check(self) -> None:
        """Called just before a request goes out: raises a STOPPED problem when the gate is
        closed, and first waits for a fresh confirmation when the last one is old."""
        with self._changed:
            deadline = self._clock() + CONFIRM_WAIT_SECONDS
            while not self._closed.is_set() and self._clock() - self._confirmed_at > FRESH_SECONDS:
                left = deadline - self._clock()
                if left <= 0:
                    self._closed.set()
                    self.status, self.lost = "stopped", False
                    self.reason = (
                        "The run could not confirm for 30 seconds that it may go on (is the "
                        "database reachable?): stopped. Resume it once the dashboard is healthy."
                    )
                    break
                self._changed.wait(min(left, WATCH_SECONDS))
        if self._closed.is_set():
            raise errors.ConnectionProblem(errors.STOPPED, SERVICE, self.reason or "Stopped.")
