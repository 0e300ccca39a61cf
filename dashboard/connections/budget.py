"""OneLogin's hourly API budget, as the dashboard spends it (DESIGN.md §2).

OneLogin allows each account so many API calls an hour (5,000 by default), shared by every
integration of the account, and says with every answer how many are left: X-RateLimit-Limit,
X-RateLimit-Remaining and X-RateLimit-Reset (seconds until the budget is full again).

A `Budget` keeps what one account's answers last said, for every client of that account in
the process. Each client paces its calls through a `BudgetPace` (http.Pacing): before a call
goes out it checks that the call would not eat into the reserve left to the account's other
integrations (DASHBOARD_ONELOGIN_RESERVE, a share of the limit); when it would, the pace
waits for the reset, or refuses at once with a message that says when the budget resets
(the caller decides which: connections/budget_store.py says who). So the dashboard never runs
the account into 429s, which would stop every other integration of the account too.

Plain Python: no Flask, no database. Keeping the figures where every process sees them
(api_limits) is budget_store's job, through the `persist` callback; a save is made at most
every PERSIST_EVERY seconds while calls go on, never once per call.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import requests

from dashboard.connections import errors

log = logging.getLogger(__name__)

SERVICE = "OneLogin API"
# A ConnectionProblem.kind (see errors.py's list): the dashboard kept the call back to spare
# the reserve, so nothing was sent. Not transient: Http never retries it.
OVER_BUDGET = "over_budget"
PERSIST_EVERY = 15.0  # seconds between two saves of the figures while calls go on
WAIT_STEP = 1.0  # a wait sleeps in steps this long: Ctrl-C ends it at once
FALLBACK_WAIT = 60.0  # seconds, after a 429 that says neither Retry-After nor X-RateLimit-Reset
LIMIT, REMAINING, RESET = "X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Figures:
    """What OneLogin last said about the account's budget, and when."""

    limit: int
    remaining: int
    resets_at: datetime
    seen_at: datetime

    @classmethod
    def announced(cls, limit: int, remaining: int, reset: float, now: datetime) -> Figures:
        """From OneLogin's three numbers, `reset` in seconds from `now`."""
        return cls(limit, remaining, now + timedelta(seconds=reset), now)

    def reserve(self, share: float) -> int:
        """The calls kept for the other integrations (rounded up: never fewer than asked)."""
        return math.ceil(round(share * self.limit, 6))

    def left(self, share: float) -> int:
        """The calls the dashboard may still make before the reset."""
        return max(0, self.remaining - self.reserve(share))

    def has_reset(self, now: datetime) -> bool:
        """The hour is over: the budget is full again, though no answer has said so yet."""
        return now >= self.resets_at


def read_headers(headers: Mapping[str, str], now: datetime) -> Figures | None:
    """The figures in an answer's X-RateLimit-* headers (in any letter case: requests' headers
    ignore it), or None unless all three are there as whole numbers."""
    values = []
    for name in (LIMIT, REMAINING, RESET):
        text = (headers.get(name) or "").strip()
        if not (text.isascii() and text.isdigit()):
            return None
        values.append(int(text))
    limit, remaining, reset = values
    if limit == 0:
        return None
    return Figures.announced(limit, min(remaining, limit), reset, now)


def _clock_time(moment: datetime) -> str:
    return f"{moment.astimezone(UTC):%H:%M} UTC"


def in_minutes(seconds: float) -> str:
    minutes = math.ceil(max(0.0, seconds) / 60)
    return f"in {minutes} min" if minutes < 120 else f"in {minutes // 60} h {minutes % 60} min"


def share_text(share: float) -> str:
    return f"{share * 100:g}%"


def shortage(left: int, share: float, resets_at: datetime, now: datetime) -> str:
    """How the budget stands, as every refusal says it."""
    return (
        f"OneLogin's API budget: {left} call{'' if left == 1 else 's'} left above the "
        f"{share_text(share)} reserve kept for other integrations; it resets at "
        f"{_clock_time(resets_at)} ({in_minutes((resets_at - now).total_seconds())})"
    )


class Budget:
    """One OneLogin account's budget as this process knows it, shared by all its clients
    (thread-safe). `reserve` is the share of the limit left to other integrations; `persist`
    is given the figures to keep (throttled; see the module docstring)."""

    def __init__(
        self,
        base_url: str,
        reserve: float,
        *,
        now: Callable[[], datetime] = utcnow,
        persist: Callable[[Figures], None] | None = None,
    ) -> None:
        self.base_url, self.reserve, self.now = base_url, reserve, now
        self._persist = persist
        self._lock = threading.Lock()
        self._figures: Figures | None = None
        self._blocked_until: datetime | None = None  # a 429's Retry-After (or reset)
        self._dirty = False
        self._persisted_at: datetime | None = None

    @property
    def figures(self) -> Figures | None:
        with self._lock:
            return self._figures

    def adopt(self, figures: Figures) -> None:
        """Take figures another process saw (api_limits) when they are newer than ours."""
        with self._lock:
            if self._figures is None or figures.seen_at > self._figures.seen_at:
                self._figures = figures

    def observe(self, figures: Figures) -> None:
        """What OneLogin just said (an answer's headers, GET /auth/rate_limit)."""
        with self._lock:
            self._figures, self._dirty = figures, True
        self._save_if_due(urgent=figures.left(self.reserve) == 0)

    def heard(self, response: requests.Response) -> None:
        """An answer came back: keep its figures; a 429 holds every call back until its
        Retry-After, else until the X-RateLimit-Reset it announces."""
        now = self.now()
        figures = read_headers(response.headers, now)
        if response.status_code != 429:
            if figures is not None:
                self.observe(figures)
            return
        wait = errors.retry_after_seconds(response.headers.get("Retry-After"), now)
        if wait is None:
            wait = (figures.resets_at - now).total_seconds() if figures else FALLBACK_WAIT
        until = now + timedelta(seconds=wait)
        with self._lock:
            self._blocked_until = max(until, self._blocked_until or until)
            if figures is not None:
                # Nothing is left until then, whatever the header said.
                resets = max(figures.resets_at, until)
                self._figures = replace(figures, remaining=0, resets_at=resets)
                self._dirty = True
        self._save_if_due(urgent=True)

    def take(self) -> float | None:
        """None when a call may go now (it is counted against the figures, so calls made
        before their answers arrive are counted too); else the seconds until one may."""
        return self._until_next(count=True)

    def wait_needed(self) -> float | None:
        """As `take`, without counting a call."""
        return self._until_next(count=False)

    def _until_next(self, count: bool) -> float | None:
        now = self.now()
        with self._lock:
            if self._blocked_until is not None:
                if now < self._blocked_until:
                    return (self._blocked_until - now).total_seconds()
                self._blocked_until = None
            figures = self._figures
            if figures is None or figures.has_reset(now):
                return None  # not known (yet, or any more): the answer will say
            if figures.left(self.reserve) > 0:
                if count:
                    self._figures = replace(figures, remaining=figures.remaining - 1)
                    self._dirty = True
                return None
            return (figures.resets_at - now).total_seconds()

    def standing(self) -> str:
        """Why calls are held back and until when, in words (without a full stop)."""
        now = self.now()
        with self._lock:
            figures, blocked = self._figures, self._blocked_until
        if figures is not None and not figures.has_reset(now):
            resets_at = max(figures.resets_at, blocked or figures.resets_at)
            return shortage(figures.left(self.reserve), self.reserve, resets_at, now)
        resets_at = blocked or now
        return (
            f"OneLogin's API answered 429 (too many requests): it may be called again at "
            f"{_clock_time(resets_at)} ({in_minutes((resets_at - now).total_seconds())})"
        )

    def refusal(self) -> errors.ConnectionProblem:
        """The problem a call kept back raises: how many calls are left, when it resets."""
        return errors.ConnectionProblem(
            OVER_BUDGET,
            SERVICE,
            f"{self.standing()}. Nothing was sent: try again then.",
            retry_after=self.wait_needed(),
        )

    def flush(self) -> None:
        """Save the figures now if they changed since the last save."""
        self._save_if_due(urgent=True)

    def _save_if_due(self, urgent: bool) -> None:
        if self._persist is None:
            return
        now = self.now()
        with self._lock:
            due = self._persisted_at is None or (
                (now - self._persisted_at).total_seconds() >= PERSIST_EVERY
            )
            if not self._dirty or self._figures is None or not (due or urgent):
                return
            figures, self._dirty, self._persisted_at = self._figures, False, now
        self._persist(figures)  # outside the lock: it may wait for the database


class BudgetPace:
    """One client's pacing (http.Pacing) through its account's Budget. Before a call goes out:
    when the call would cross the reserve, wait for the reset if that is at most `patience`
    seconds away, else raise the budget's refusal (a ConnectionProblem, kind OVER_BUDGET).
    With `only_in`, calls made from any other thread never wait (a wait there could not be
    interrupted). A wait is announced (`announce`, a warning in the log by default) and
    sleeps in steps, so that Ctrl-C ends it at once."""

    def __init__(
        self,
        budget: Budget,
        patience: float = 0.0,
        *,
        only_in: threading.Thread | None = None,
        sleep: Callable[[float], None] = time.sleep,
        announce: Callable[[str], None] | None = None,
    ) -> None:
        self.budget, self._patience, self._only_in = budget, patience, only_in
        self._sleep = sleep
        self._announce = announce or log.warning
        self._free = threading.local()

    @property
    def patience(self) -> float:
        """How long a call made now, from this thread, may wait for the reset."""
        if self._only_in is not None and threading.current_thread() is not self._only_in:
            return 0.0
        return self._patience

    @contextmanager
    def exempt(self) -> Iterator[None]:
        """Calls OneLogin does not count (a token, GET /auth/rate_limit) go without a check."""
        before = getattr(self._free, "on", False)  # a token fetched inside one: still free
        self._free.on = True
        try:
            yield
        finally:
            self._free.on = before

    def wait(self) -> None:
        if getattr(self._free, "on", False):
            return
        while (seconds := self.budget.take()) is not None:
            if seconds > self.patience:
                raise self.budget.refusal()
            self._announce(f"{self.budget.standing()}: waiting until then (Ctrl-C stops).")
            deadline = self.budget.now() + timedelta(seconds=seconds)
            while (left := (deadline - self.budget.now()).total_seconds()) > 0:
                self._sleep(min(left, WAIT_STEP))

    def answered(self, response: requests.Response) -> None:
        self.budget.heard(response)

    def refusal_beyond_patience(self) -> errors.ConnectionProblem | None:
        """After a 429: the refusal when its wait is longer than this pace may wait, so the
        call is not retried in vain; None when a retry may wait for it."""
        seconds = self.budget.wait_needed()
        if seconds is not None and seconds > self.patience:
            return self.budget.refusal()
        return None

    def close(self) -> None:
        self.budget.flush()
