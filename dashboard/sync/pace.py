"""The client-side request rate of a sync, shared by its worker threads: at most `rate`
requests a second, and a pause for everyone when Workato answers 429 with Retry-After (one
thread's 429 means the others would get one too). With a gate, every wait ends when the gate
closes, and a request goes out only through an open gate."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable

from dashboard.sync.gate import Gate

MAX_BACKOFF = 30.0  # seconds: the longest wait between two tries without a Retry-After
MAX_RETRY_AFTER = 300.0  # seconds: a longer Retry-After is taken as this


class Pace:
    def __init__(
        self,
        rate: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] | None = None,
        gate: Gate | None = None,
    ) -> None:
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self.gate = gate
        self._clock = clock
        self._sleep = sleep or (gate.sleep if gate is not None else time.sleep)
        self._lock = threading.Lock()
        self._next = 0.0  # when the next request may go
        self._held_until = 0.0

    def __call__(self) -> None:
        """Wait for this request's turn."""
        with self._lock:
            now = self._clock()
            turn = max(self._next, self._held_until, now)
            self._next = turn + self.interval
        if turn > now:
            self._sleep(turn - now)
        if self.gate is not None:
            self.gate.check()

    def hold(self, seconds: float) -> None:
        """No request goes out for `seconds` (Workato said Retry-After)."""
        with self._lock:
            until = self._clock() + min(seconds, MAX_RETRY_AFTER)
            self._held_until = max(self._held_until, until)


def backoff(attempt: int, base: float = 0.5) -> float:
    """Seconds to wait before try `attempt + 1`: exponential, with full jitter on top."""
    delay = base * (2 ** (attempt - 1))
    return min(delay + random.uniform(0, delay), MAX_BACKOFF)  # noqa: S311  (not security)
