"""DASHBOARD_SYNC_RATE=auto: a run finds Workato's SCIM rate limit from its answers, settles
just under it, and the next run starts from what it learned (issue 14).

The rate finder is checked over whole runs on a virtual clock (tests/support/rate_sim.py);
the wiring (pace, runner, learned rate, run page, `sync status --json`) through a real run
against scim2-server behind a rate-limiting proxy.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import requests
from sqlalchemy import select

from dashboard.connections.models import SCIM, ApiLimit
from dashboard.extensions import db
from dashboard.sync import runner, service
from dashboard.sync.pace import Pace
from dashboard.sync.rate import START, RateFinder, announced_rate
from tests.support.rate_sim import simulate
from tests.support.scim_server import ScimServer
from tests.support.signin import signed_in_admin
from tests.support.sync_world import ACTOR, World
from tests.support.throttle_proxy import ThrottleProxy

# --- over whole runs, on a virtual clock --------------------------------------------------


def test_auto_finds_a_limit_of_50_a_second_and_settles_just_under_it():
    run = simulate(50, 2000)

    assert run.ratio(2000, 50) >= 0.9
    assert 0.9 * 50 <= run.final_rate <= 50
    assert run.throttled <= 5  # each 429 stops every writer for a second


def test_auto_at_5_a_second_keeps_429s_to_a_few():
    run = simulate(5, 300)

    assert run.ratio(300, 5) >= 0.85
    assert run.throttled <= 30  # at most 10% of the creates
    assert 0.9 * 5 <= run.final_rate <= 5


@pytest.mark.parametrize("limit", [3, 12, 37, 80, 140])
def test_auto_settles_under_any_limit_it_meets(limit):
    run = simulate(limit, int(limit * 40))

    assert run.final_rate <= limit * 1.01  # 1% over empties a 0.1 s burst in 10 s at most
    assert run.ratio(int(limit * 40), limit) >= 0.85


def test_the_old_fixed_default_used_a_fifth_of_a_50_a_second_limit():
    # What "auto" replaces: 10 a second, whatever Workato allows.
    fixed = simulate(50, 2000, start=START, ceiling=START)
    assert fixed.ratio(2000, 50) < 0.21


def test_a_learned_rate_starts_the_next_run_there():
    first = simulate(50, 2000)
    second = simulate(50, 2000, start=first.final_rate)

    assert second.rates[0][1] == first.final_rate  # no climb from 10 a second
    assert second.ratio(2000, 50) > first.ratio(2000, 50)
    assert second.throttled <= 2


def test_a_learned_rate_above_a_lowered_limit_comes_down_at_once():
    run = simulate(20, 800, start=50)

    assert run.final_rate <= 20
    assert run.ratio(800, 20) >= 0.8


def test_a_number_is_a_ceiling_never_passed():
    run = simulate(200, 3000, ceiling=30)

    assert run.highest_rate <= 30
    assert run.throttled == 0
    assert run.ratio(3000, 30) >= 0.95  # at the ceiling, from the first request


def test_429s_for_requests_already_on_the_wire_cut_the_rate_once():
    finder = RateFinder(start=40, ceiling=None, now=0.0)
    for n in range(40):
        finder.sent(n / 40)
    assert finder.throttled(1.0, sent_at=0.99)
    cut = finder.current
    # Three more writers' requests were sent before that answer came back.
    assert not any(finder.throttled(1.01, sent_at=s) for s in (0.97, 0.98, 0.995))
    assert finder.current == cut < 40


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"RateLimit-Remaining": "100", "RateLimit-Reset": "10"}, 9.0),
        ({"X-RateLimit-Remaining": "300", "X-RateLimit-Reset": "60"}, 4.5),
        (
            {
                "RateLimit-Limit": "600",
                "RateLimit-Remaining": "599",
                "RateLimit-Policy": "600;w=60",
            },
            9.0,
        ),
        ({"RateLimit-Remaining": "0", "RateLimit-Reset": "5"}, 0.5),  # never below the floor
        ({"RateLimit-Remaining": "many"}, None),
        ({}, None),
    ],
)
def test_announced_limits_are_aimed_under(headers, expected):
    found = announced_rate(requests.structures.CaseInsensitiveDict(headers))
    assert found == (pytest.approx(expected) if expected is not None else None)


def test_an_announced_allowance_caps_the_rate():
    finder = RateFinder(start=40, ceiling=None, now=0.0)
    finder.announce({"RateLimit-Remaining": "50", "RateLimit-Reset": "10"})
    assert finder.current == pytest.approx(4.5)
    finder.announce({})  # a later answer without the headers: the cap is gone
    assert finder.current == 40


class Clock:
    def __init__(self) -> None:
        self.now = 0.0
        self.on_sleep = None

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        if self.on_sleep is not None:
            self.on_sleep, hook = None, self.on_sleep
            hook()
        self.now += seconds


def test_a_retry_after_that_starts_while_a_writer_waits_delays_it_too():
    clock = Clock()
    pace = Pace(10.0, clock=clock, sleep=clock.sleep)
    pace.wait()  # goes at once; the next turn is 0.1 s later
    # While the second writer waits for its turn, another writer's 429 asks for 2 seconds.
    clock.on_sleep = lambda: pace.hold(2.0)
    pace.wait()
    assert clock.now >= 2.0


# --- a real run -----------------------------------------------------------------------------

LIMIT = 40.0  # Workato's, enforced by the proxy; the dashboard is told nothing


@pytest.fixture
def scim() -> Iterator[ScimServer]:
    with ScimServer() as server:
        yield server


def test_a_run_on_the_defaults_finds_the_limit_keeps_it_and_shows_it(make_app, scim, idp):
    app = make_app(DASHBOARD_SYNC_EXECUTOR="worker", DASHBOARD_SYNC_BACKOFF_SECONDS=0.01)
    people = 160
    with (
        ThrottleProxy(scim.root_url, rate=LIMIT) as proxy,
        World.small(app, scim_root=proxy.root_url, token=scim.token) as world,
    ):
        for n in range(people):
            world.person("User", "Number" + "".join("abcdefghij"[int(d)] for d in f"{n:03}"))
        with app.app_context():
            run_id = service.make_plan(ACTOR)[0].id
            service.apply(run_id, ACTOR, start=False)
            run = runner.process(run_id)
            kept = db.session.scalar(select(ApiLimit).where(ApiLimit.api == SCIM))
            kept_rate, kept_url = kept.rate, kept.base_url
        counts, throttled, _ = proxy.snapshot()

        assert run.status == "succeeded"
        assert len(world.workato_users()) == people
        assert counts["POST"] == people + throttled  # each 429 sent again once, nothing lost
        assert throttled <= people * 0.1
        # It learned more than the old fixed 10 a second, and never more than the limit.
        assert START < kept_rate <= LIMIT * 1.05
        assert kept_url == world.scim_url

        status = app.test_cli_runner().invoke(args=["sync", "status", "--json"])
        document = json.loads(status.output)
        assert document["rate"]["setting"] == "auto"
        assert document["rate"]["learned"] == kept_rate
        assert START < document["rate"]["run"] <= LIMIT * 1.05

        page = signed_in_admin(app, idp).get(f"/sync/runs/{run_id}").get_data(as_text=True)
        assert "requests a second" in page


class Answer:
    status_code = 201
    headers: dict[str, str] = {}  # noqa: RUF012


def answered_after(pace: Pace, clock: Clock, seconds: float, times: int = 10) -> None:
    for _ in range(times):
        pace.wait()
        clock.now += seconds
        pace.answered(Answer())


def test_as_many_writers_as_the_rate_needs_at_workatos_answer_time():
    clock = Clock()
    pace = Pace(50.0, clock=clock, sleep=clock.sleep)
    assert pace.writers(16) == 4  # before any answer

    answered_after(pace, clock, 0.02)  # a quick Workato: 50/s needs one or two at a time
    assert pace.writers(16) == 3
    answered_after(pace, clock, 0.3, times=30)  # a slow one: 15 in flight at 50/s
    assert pace.writers(16) == 16
    assert pace.writers(8) == 8  # DASHBOARD_SYNC_CONCURRENCY is the most
