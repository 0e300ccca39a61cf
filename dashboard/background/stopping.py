"""A web process that stops (gunicorn's SIGTERM, `flask run`'s Ctrl-C) hands the runs it
works with the embedded executor over to another process (dashboard.sync.handover), from
the moment it is told to stop: not at exit, by when Python has shut its thread pools and a
run could neither send nor hand over (it would wait out the lease instead)."""

from __future__ import annotations

import atexit
import os
import signal
import threading

from flask import Flask

from dashboard.sync import handover
from dashboard.sync.runner import hand_over_all


def hand_over_when_stopping(app: Flask, seconds: float) -> None:
    atexit.register(hand_over_all, app, seconds)  # Ctrl-C, sys.exit: whatever ends it
    if threading.current_thread() is not threading.main_thread():
        return  # signal handlers are the main thread's (gunicorn loads the app there)
    previous = signal.getsignal(signal.SIGTERM)

    def on_sigterm(signum, frame) -> None:
        handover.begin()  # the runs stop sending now; their writes in flight are recorded
        if callable(previous):
            previous(signum, frame)  # gunicorn's own: finish the requests, then exit
            return
        # No handler of the server's (`flask run`): wait for the handover, then die of it.
        hand_over_all(app, seconds)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTERM)

    signal.signal(signal.SIGTERM, on_sigterm)
