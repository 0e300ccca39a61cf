"""Finding Workato's SCIM rate limit while a run sends: Workato does not publish it, so the
run learns it from the answers, as TCP finds a path's capacity and AWS SDKs' "adaptive"
retry mode a service's throttling rate (additive increase, multiplicative decrease).

- **Start:** from the rate the last run settled at (api_limits), else `START` a second.
  Before the first 429 the rate grows by `STEP_FACTOR` every `STEP_SECONDS` in which it was
  what held the run back (not the writers or Workato's latency): from 10 a second it passes
  100 in under 3 seconds.
- **A 429** (for a request sent after the last cut: the ones already on the wire tell
  nothing new) cuts the rate. The first one ends the start: the limit lies between the last
  rate that went through and the one refused, so the run goes back to the first, just under.
  Later ones cut by `CUT` from the rate actually sent at: each is a second or more that no
  writer may send (Retry-After), so the run wants few of them.
- **Between 429s** the rate creeps up, by `PROBE` of itself a second at first, half that
  after each 429, so it settles just under the limit; after `QUIET_SECONDS` without one the
  probe doubles again (the limit may have been raised).
- **Announced limits** (`RateLimit-*`, `X-RateLimit-*`): the rate stays under what is left
  spread over the time until the window resets, and under `Limit / window` when a policy
  names its window.
- A number in DASHBOARD_SYNC_RATE is a ceiling nothing above which is ever tried.

Pure arithmetic on a clock: the Pace calls it under its lock.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Mapping

START = 10.0  # requests a second: the dashboard's old fixed default, safe for any workspace
FLOOR = 0.5  # never slower than this: a 429 storm still makes progress
TOP = 1000.0  # with no ceiling set: beyond what any writer pool here sends
STEP_SECONDS, STEP_FACTOR = 0.25, 1.25
BINDING = 0.8  # a step counts when the run sent at least this share of the rate
CUT_FIRST, CUT, CUT_HARD = 0.97, 0.95, 0.7
SETTLE_SPAN = 2.0  # seconds of sending that measure the limit at a later 429
# How fast the rate climbs towards the limit, of itself a second: after the start's first
# 429; from a remembered rate (the limit may have been raised since); settled, after a quiet
# minute (doubling each quiet minute up to PROBE_LEARNED).
PROBE, PROBE_LEARNED, PROBE_MIN = 0.02, 0.005, 0.00125
QUIET_SECONDS = 60.0
UNDER = 0.9  # the share of an announced allowance aimed at


class RateFinder:
    def __init__(self, *, start: float | None, ceiling: float | None, now: float) -> None:
        self.ceiling = ceiling or TOP
        self.rate = self.start = min(start or START, self.ceiling)
        # A remembered rate was found by an earlier run: no fast start, probe gently.
        self.starting = start is None
        self.probe = PROBE if start is None else PROBE_LEARNED
        self.confirmed: float | None = None  # the last start step that went through
        self.announced: float | None = None  # the cap a RateLimit header implies
        self.throttles = 0
        self._since = now  # the start step's, or the probe's, reference time
        self._last_cut = self._quiet_since = -1.0e18
        self._resume = now  # sending rates are measured from here: the start, or a hold's end
        self._sends: deque[float] = deque()  # when requests went out, the last second

    @property
    def current(self) -> float:
        rate = self.rate if self.announced is None else min(self.rate, self.announced)
        return max(FLOOR, min(rate, self.ceiling))

    def sent(self, now: float) -> None:
        self._sends.append(now)
        while self._sends and self._sends[0] < now - SETTLE_SPAN:
            self._sends.popleft()
        self._grow(now)

    def sending_rate(self, now: float, window: float = 1.0) -> float:
        """Requests a second sent in the last `window` seconds (or since the last pause)."""
        start = max(now - window, self._resume)
        span = now - start
        sent = sum(1 for t in self._sends if t >= start)
        return sent / span if span >= STEP_SECONDS else self.current

    def _grow(self, now: float) -> None:
        elapsed = now - self._since
        if self.starting:
            if elapsed < STEP_SECONDS:
                return
            sent = sum(1 for t in self._sends if t >= self._since)
            if sent >= BINDING * self.current * elapsed:
                self.confirmed = self.current
                self.rate = min(self.current * STEP_FACTOR, self.ceiling)
            self._since = now
            return
        quiet = now - max(self._last_cut, self._quiet_since) > QUIET_SECONDS
        if quiet and self.probe < PROBE_LEARNED:
            self.probe, self._quiet_since = min(PROBE_LEARNED, max(PROBE_MIN, self.probe * 2)), now
        if elapsed > 0:
            # Only while the rate is what holds the run back: else it would climb unused.
            if self.sending_rate(now) >= BINDING * self.current:
                self.rate = min(self.rate * (1 + self.probe * elapsed), self.ceiling)
            self._since = now

    def held(self, until: float) -> None:
        """No request goes out before `until` (a Retry-After): rates are measured after."""
        if until > self._resume:
            self._resume = until
        self._since = max(self._since, until)

    def throttled(self, now: float, sent_at: float) -> bool:
        """A 429 for a request sent at `sent_at`. True when it changed the rate."""
        if sent_at <= self._last_cut:
            return False
        self.throttles += 1
        sending = min(self.current, max(self.sending_rate(now), FLOOR))
        if self.starting:
            # The limit lies between the last step that went through and this one: go back
            # under the first, then climb towards the limit.
            self.starting = False
            below = self.confirmed if self.confirmed is not None else self.current / 2
            self.rate, self.probe = min(below, sending) * CUT_FIRST, PROBE
        elif now - self._resume < SETTLE_SPAN:
            # Refused again soon after a pause: the rate is well over the limit. Cut hard
            # (as TCP does), and climb again.
            self.rate, self.probe = sending * CUT_HARD, PROBE
        else:
            # The rate sent at over the last seconds is the limit and a little more (the
            # burst Workato let through before refusing). Settle under it, and stop probing:
            # the next 429 would cost every writer another pause.
            measured = min(self.current, self.sending_rate(now, SETTLE_SPAN))
            self.rate, self.probe = measured * CUT, 0.0
        self.rate = max(FLOOR, self.rate)
        self._last_cut = self._since = now
        return True

    def announce(self, headers: Mapping[str, str]) -> None:
        """Aim under a limit the response announces, if it does."""
        self.announced = announced_rate(headers)


def announced_rate(
    headers: Mapping[str, str], wall: Callable[[], float] = time.time
) -> float | None:
    """The rate a response's rate-limit headers allow (IETF RateLimit draft, or the common
    X-RateLimit-*), aimed `UNDER` it; None when it announces nothing usable. `Reset` is taken
    as seconds (a value over a day as a Unix time, as some services send)."""
    for prefix in ("RateLimit-", "X-RateLimit-"):
        remaining = _number(headers.get(prefix + "Remaining"))
        if remaining is None:
            continue
        caps = []
        reset = _number(headers.get(prefix + "Reset"))
        if reset is not None:
            if reset > 86400:
                reset = max(0.0, reset - wall())
            caps.append(remaining / max(reset, 1.0))
        window = _window(headers.get("RateLimit-Policy") or headers.get(prefix + "Policy"))
        limit = _number(headers.get(prefix + "Limit"))
        if window and limit:
            caps.append(limit / window)
        if caps:
            return max(FLOOR, UNDER * min(caps))
    return None


def _number(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        number = float(value.split(",")[0].strip())
    except ValueError:
        return None
    return number if number >= 0 else None


def _window(policy: str | None) -> float | None:
    """The window of a policy such as `100;w=60` (seconds), when named."""
    for part in (policy or "").split(",")[0].split(";")[1:]:
        name, _, value = part.strip().partition("=")
        if name.strip() == "w":
            return _number(value)
    return None
