"""Timing a page's query the way the benchmarks report it: the first run (cold), then the
median and the 95th percentile of the repeats, each in a fresh transaction as each request
has."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

LIMIT_MS = 100.0  # what a page may take (issue 14: p95 under 100 ms)


@dataclass(frozen=True)
class Timing:
    first: float  # ms, the first run (a cold cache)
    median: float  # ms, of the repeats
    p95: float  # ms, of the repeats (nearest rank)
    result: object  # what the last run returned

    @property
    def ratio(self) -> float:
        """p95 over the limit: under 1 is within it."""
        return self.p95 / LIMIT_MS


def percentile(times: list[float], share: float) -> float:
    """The nearest-rank percentile: the smallest time at least `share` of the runs took."""
    ordered = sorted(times)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def timed(call: Callable[[], object], repeat: int, after: Callable[[], None]) -> Timing:
    """Run `call` once cold and `repeat` more times; `after` runs after each (a rollback,
    so that each run starts a fresh transaction)."""
    times = []
    result = None
    for _ in range(max(2, repeat + 1)):
        started = time.perf_counter()
        result = call()
        times.append((time.perf_counter() - started) * 1000)
        after()
    rest = times[1:]
    return Timing(times[0], percentile(rest, 0.5), percentile(rest, 0.95), result)


def table(title: str, rows: list[tuple[str, Timing, object]], width: int = 60) -> None:
    """One line a measurement: first, median and p95 in ms, what it found, p95 / limit."""
    print(f"{title:<{width}}{'first':>8}{'median':>8}{'p95':>8}{'found':>7}{'ratio':>7}")
    for name, t, found in rows:
        print(f"{name:<{width}}{t.first:>8.1f}{t.median:>8.1f}{t.p95:>8.1f}{found!s:>7}"
              f"{t.ratio:>7.2f}")  # fmt: skip


def summary(label: str, rows: list[tuple[str, Timing, object]], slowest: int = 5) -> None:
    """How many, the typical median, the slowest p95s, and how many reach the limit."""
    medians = sorted(t.median for _, t, _ in rows)
    ranked = sorted(rows, key=lambda r: r[1].p95, reverse=True)
    over = sum(1 for _, t, _ in rows if t.p95 >= LIMIT_MS)
    print(
        f"{len(rows)} {label}: median of the medians {medians[len(medians) // 2]:.1f} ms; "
        f"{over} with a p95 at or over {LIMIT_MS:.0f} ms. Slowest p95:"
    )
    for name, t, found in ranked[:slowest]:
        print(f"  {t.p95:7.1f} ms (median {t.median:.1f}, found {found})  {name}")


def groups(title: str, rows: list[tuple[str, Timing, object]], key) -> None:
    """Per group (`key` of a row's name): how many, the median of their medians, the
    slowest p95 and which."""
    found: dict[str, list] = {}
    for row in rows:
        found.setdefault(key(row[0]), []).append(row)
    print(f"{title:<28}{'combinations':>13}{'median':>8}{'worst p95':>11}  worst")
    for name, members in found.items():
        medians = sorted(t.median for _, t, _ in members)
        worst = max(members, key=lambda r: r[1].p95)
        print(f"{name:<28}{len(members):>13}{medians[len(medians) // 2]:>8.1f}"
              f"{worst[1].p95:>11.1f}  {worst[0]}")  # fmt: skip
