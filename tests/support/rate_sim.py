"""A run's writers against a rate-limited Workato, simulated on a virtual clock, so how the
rate finder (dashboard/sync/rate.py) behaves over a whole run can be checked exactly and in
milliseconds.

Workato is modelled as the benchmark's throttling proxy behaves (tests/support/
throttle_proxy.py): a token bucket of `limit` requests a second holding a tenth of a second
of them (at least 2), answering 429 with Retry-After in whole seconds (at least 1) when
empty. The writers are `writers` threads, each waiting `latency` seconds for its answer,
paced as dashboard/sync/pace.py paces them: turns `1 / rate` apart, none during a
Retry-After, and a 429 retried after it.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass, field

from dashboard.sync.rate import RateFinder


@dataclass
class Outcome:
    seconds: float
    throttled: int
    final_rate: float
    highest_rate: float
    rates: list[tuple[float, float]] = field(default_factory=list)  # (time, rate) at changes

    def ratio(self, writes: int, limit: float) -> float:
        """Of what the limit allows: 1.0 is every write at exactly the limit."""
        return (writes / limit) / self.seconds


def simulate(
    limit: float,
    writes: int,
    *,
    latency: float = 0.02,
    writers: int = 4,
    start: float | None = None,
    ceiling: float | None = None,
) -> Outcome:
    burst = max(2.0, limit / 10)
    tokens, filled_at = burst, 0.0
    finder = RateFinder(start=start, ceiling=ceiling, now=0.0)
    now = next_turn = held_until = 0.0
    answers: list[tuple[float, float, float]] = []  # (arrives, sent_at, retry_after or 0)
    done = throttled = 0
    outcome = Outcome(0.0, 0, finder.current, finder.current, [(0.0, finder.current)])
    while done < writes:
        turn = max(next_turn, held_until, now)
        # Answers that arrive before the next turn (or free a writer) come first.
        while answers and (len(answers) >= writers or answers[0][0] <= turn):
            arrives, sent_at, retry_after = heapq.heappop(answers)
            now = max(now, arrives)
            if retry_after:
                finder.throttled(now, sent_at)
                held_until = max(held_until, now + retry_after)
                finder.held(held_until)
            else:
                done += 1
            turn = max(next_turn, held_until, now)
        if done >= writes:
            break
        now = turn
        finder.sent(now)
        rate = finder.current
        next_turn = now + 1.0 / rate
        if rate != outcome.rates[-1][1]:
            outcome.rates.append((now, rate))
            outcome.highest_rate = max(outcome.highest_rate, rate)
        tokens, filled_at = min(burst, tokens + (now - filled_at) * limit), now
        if tokens >= 1:
            tokens -= 1
            heapq.heappush(answers, (now + latency, now, 0.0))
        else:
            throttled += 1
            wait = max(1, math.ceil((1 - tokens) / limit))
            heapq.heappush(answers, (now + latency, now, float(wait)))
    outcome.seconds, outcome.throttled, outcome.final_rate = now, throttled, finder.current
    return outcome
