"""Handing runs over when this process stops (SIGTERM to a worker, a web process shutting
down): the writes in flight finish and are recorded, the run goes back to the queue at once,
and another process carries it on, without waiting out the lease.

Process-wide: once begun, the runs of this process close their gates (runner's watcher looks
every WATCH_SECONDS) and no new run starts here.
"""

from __future__ import annotations

import threading

HANDED_OVER = "handed_over"  # a gate's status: the run is queued again, not finished
MESSAGE = "Handed over: the process running it was asked to stop; another process carries it on."

_stopping = threading.Event()


def begin() -> None:
    _stopping.set()


def begun() -> bool:
    return _stopping.is_set()


def reset() -> None:
    """For tests, which run many apps in one process."""
    _stopping.clear()
