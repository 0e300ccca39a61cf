"""The client-side request rate of a run, shared by its writer threads: requests go out at
most `current` a second, a 429 with Retry-After pauses every writer (one thread's 429 means
the others would get one too), and with DASHBOARD_SYNC_RATE=auto (or under a number) the rate
itself is found as the run goes (rate.py). With a gate, every wait ends when the gate closes,
and a request goes out only through an open gate."""

from __future__ import annotations

import math
import random
import threading
import time
from collections.abc import Callable

import requests

from dashboard.sync.gate import Gate
from dashboard.sync.rate import RateFinder

MAX_BACKOFF = 30.0  # seconds: the longest wait between two tries without a Retry-After
MAX_RETRY_AFTER = 300.0  # seconds: a longer Retry-After is taken as this
FIRST_WRITERS = 4  # before Workato's answer time is known


class Pace:
    """`rate` requests a second, fixed (0: no limit), or with `finder` found as it goes."""

    def __init__(
        self,
        rate: float = 0.0,
        *,
        finder: RateFinder | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] | None = None,
        gate: Gate | None = None,
    ) -> None:
        self.finder = finder
        self.gate = gate
        self._fixed = rate
        self._clock = clock
        self._sleep = sleep or (gate.sleep if gate is not None else time.sleep)
        self._lock = threading.Lock()
        self._next = 0.0  # when the next request may go
        self._held_until = 0.0
        self._sent_at = threading.local()  # per writer: when its request went out
        self.latency: float | None = None  # Workato's answer time, smoothed (seconds)

    @classmethod
    def for_setting(cls, setting: float | str, learned: float | None, **options) -> Pace:
        """The pace DASHBOARD_SYNC_RATE asks for: `auto`, found from `learned` (or the
        start); a number, found under it as a ceiling; 0, no client-side limit."""
        if setting == 0:
            return cls(0.0, **options)
        ceiling = None if setting == "auto" else float(setting)
        start = learned if setting == "auto" else min(learned or ceiling, ceiling)
        clock = options.get("clock", time.monotonic)
        return cls(finder=RateFinder(start=start, ceiling=ceiling, now=clock()), **options)

    @property
    def rate(self) -> float | None:
        """Requests a second now; None when not limited."""
        with self._lock:
            if self.finder is not None:
                return self.finder.current
            return self._fixed or None

    def wait(self) -> None:
        """Wait for this request's turn. A hold that starts while waiting (another writer's
        429) delays it too: the turn is taken again after the hold."""
        while True:
            with self._lock:
                now = self._clock()
                rate = self.finder.current if self.finder is not None else self._fixed
                turn = max(self._next, self._held_until, now)
                self._next = turn + (1.0 / rate if rate > 0 else 0.0)
                held = self._held_until
            if turn > now:
                self._sleep(turn - now)
            if self.gate is not None:
                self.gate.check()
            with self._lock:
                now = self._clock()
                if self._held_until <= held or self._held_until <= now:
                    if self.finder is not None:
                        self.finder.sent(now)
                    self._sent_at.value = now
                    return

    def answered(self, response: requests.Response) -> None:
        """What the answer says about the limit: a 429 cuts the rate, RateLimit headers cap
        it (the wait a 429 asks for comes through `hold`, from whoever retries); and how long
        Workato took, for how many writers the rate needs."""
        sent_at = getattr(self._sent_at, "value", None)
        with self._lock:
            now = self._clock()
            if sent_at is not None:
                took = now - sent_at
                self.latency = took if self.latency is None else 0.8 * self.latency + 0.2 * took
            if self.finder is None:
                return
            if response.status_code == 429:
                self.finder.throttled(now, sent_at or 0.0)
            self.finder.announce(response.headers)

    def writers(self, most: int) -> int:
        """How many writers keep the rate busy (Little's law: the rate times Workato's answer
        time, and half again for its jitter), at most `most`."""
        with self._lock:
            rate = self.finder.current if self.finder is not None else self._fixed
            latency = self.latency
        if not rate:
            return most
        if latency is None:  # nothing answered yet
            return min(most, FIRST_WRITERS)
        return max(1, min(most, math.ceil(rate * latency * 1.5) + 1))

    def hold(self, seconds: float) -> None:
        """No request goes out for `seconds` (Workato said Retry-After)."""
        with self._lock:
            until = self._clock() + min(seconds, MAX_RETRY_AFTER)
            self._held_until = max(self._held_until, until)
            if self.finder is not None:
                self.finder.held(self._held_until)


def backoff(attempt: int, base: float = 0.5) -> float:
    """Seconds to wait before try `attempt + 1`: exponential, with full jitter on top."""
    delay = base * (2 ** (attempt - 1))
    return min(delay + random.uniform(0, delay), MAX_BACKOFF)  # noqa: S311  (not security)
