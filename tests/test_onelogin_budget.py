"""OneLogin's hourly API budget: the client keeps what every answer says, never crosses the
reserve left to the account's other integrations (it waits for the reset, or refuses at once
where nobody may wait), honours a 429's Retry-After or X-RateLimit-Reset; the figures are kept
where every process sees them and shown on the Sync page; and a plan that would need more
calls than are left says so before it reads anything.

OneLogin is the simulator (it counts calls per hour and answers X-RateLimit-*), over real
HTTP. Time is a fake clock the simulator, the budget and every sleep share: nothing sleeps.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import click
import pytest
import requests
from flask.cli import with_appcontext
from sqlalchemy import select

from dashboard.audit.models import AuditEntry
from dashboard.connections import budget_store, errors
from dashboard.connections.budget import OVER_BUDGET, Budget, BudgetPace
from dashboard.connections.http import RetryPolicy
from dashboard.connections.models import ONELOGIN, ApiLimit, Connection
from dashboard.connections.onelogin import OneLoginClient
from dashboard.extensions import db
from dashboard.sandbox.onelogin import OneLoginState
from dashboard.sandbox.onelogin_seed import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET
from tests.support.forms import post
from tests.support.onelogin import running
from tests.support.sync_world import World

JONAS = 52140004
HOUR = budget_store.WAIT_AT_MOST


class Clock:
    """The one clock of a test: the simulator's hour, the budget's resets, and every sleep
    (which only moves it on)."""

    def __init__(self) -> None:
        self.t = float(int(time.time()))
        self.slept: list[float] = []

    def time(self) -> float:
        return self.t

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.t, UTC)

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.t += seconds

    def at(self, seconds: float) -> str:
        """The clock time `seconds` from now, as the messages say it."""
        return f"{self.now() + timedelta(seconds=seconds):%H:%M} UTC"


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def state(clock: Clock) -> OneLoginState:
    tenant = OneLoginState.seeded()
    tenant.clock = clock.time
    return tenant


@pytest.fixture
def url(state: OneLoginState) -> Iterator[str]:
    with running(state) as base_url:
        yield base_url


@pytest.fixture
def statuses() -> list[int]:
    """Every HTTP status OneLogin answered the client with."""
    return []


@pytest.fixture
def said() -> list[str]:
    """What a waiting client announced."""
    return []


@pytest.fixture
def connect(url, clock, statuses, said) -> Iterator[Callable[..., OneLoginClient]]:
    """A client paced by a budget (reserve 10%) that may wait `patience` seconds."""
    made: list[OneLoginClient] = []

    def connect(patience: float = 0.0, budget: Budget | None = None) -> OneLoginClient:
        session = requests.Session()
        session.hooks["response"].append(
            lambda response, **_: statuses.append(response.status_code)
        )
        budget = budget or Budget(url, 0.1, now=clock.now)
        pace = BudgetPace(budget, patience, sleep=clock.sleep, announce=said.append)
        client = OneLoginClient(
            url,
            DEMO_CLIENT_ID,
            DEMO_CLIENT_SECRET,
            retry=RetryPolicy(sleep=clock.sleep),
            session=session,
            clock=clock.time,
            budget=pace,
        )
        made.append(client)
        return client

    yield connect
    for client in made:
        client.close()
        client._http.session.close()


def problem_of(call: Callable[[], object]) -> errors.ConnectionProblem:
    with pytest.raises(errors.ConnectionProblem) as caught:
        call()
    return caught.value


def shortage(left: int, reset_at: str, minutes: int) -> str:
    return (
        f"OneLogin's API budget: {left} calls left above the 10% reserve kept for other "
        f"integrations; it resets at {reset_at} (in {minutes} min)"
    )


# --- the client and its budget ---------------------------------------------------------


def test_every_answer_says_how_much_is_left_and_the_client_keeps_it(connect, state, clock):
    """After a call the budget holds OneLogin's limit, the calls remaining and the reset."""
    state.set_budget(4321, limit=5000, reset_in=1500)
    client = connect()
    client.user(JONAS)
    figures = client.budget.budget.figures
    assert (figures.limit, figures.remaining) == (5000, 4320)
    assert figures.resets_at == clock.now() + timedelta(seconds=1500)


def test_rate_limit_reads_the_budget_without_spending_a_call(connect, state):
    """GET /auth/rate_limit gives fresh figures and leaves the budget as it was."""
    state.set_budget(777, limit=1000, reset_in=900)
    client = connect()
    assert client.rate_limit().remaining == 777
    assert client.rate_limit().remaining == 777
    assert state.budget()[1] == 777
    assert client.budget.budget.figures.remaining == 777


def test_a_call_that_would_cross_the_reserve_is_refused_before_it_goes_out(
    connect, state, clock, statuses
):
    """Where nobody may wait (a page), the calls stop at the reserve: the last one is refused
    by the dashboard, saying how much is left and when it resets, and never sent."""
    state.set_budget(13, limit=100, reset_in=1800)  # a reserve of 10 calls
    client = connect(patience=0)
    for _ in range(3):
        client.user(JONAS)
    problem = problem_of(lambda: client.user(JONAS))
    assert problem.kind == OVER_BUDGET and not problem.transient
    assert problem.message == (
        shortage(0, clock.at(1800), 30) + ". Nothing was sent: try again then."
    )
    assert state.calls["get_user"] == 3
    assert state.budget()[1] == 10  # the reserve is untouched
    assert 429 not in statuses


def test_a_paced_client_waits_for_the_reset_then_carries_on(connect, state, clock, said, statuses):
    """A command may wait: paging through 450 users on a budget of 4 calls above the reserve,
    it pauses once until the hour resets, says so, and reads everyone without one 429."""
    for n in range(450):
        state.add_user("Many", f"Person{chr(97 + n // 26 % 26)}{chr(97 + n % 26)}")
    state.set_budget(14, limit=100, reset_in=1800)
    client = connect(patience=HOUR)
    reset_at = clock.at(1800)
    users = list(client.users())
    assert len(users) == len(state.users)
    assert said == [shortage(0, reset_at, 30) + ": waiting until then (Ctrl-C stops)."]
    assert sum(clock.slept) == pytest.approx(1800)
    assert max(clock.slept) <= 1.0  # in steps: Ctrl-C ends the wait at once
    assert set(statuses) == {200}


def test_a_wait_longer_than_the_client_may_wait_is_refused_at_once(connect, state, clock):
    """A wait past `patience` is not begun: the call is refused, nothing sleeps."""
    state.set_budget(10, limit=100, reset_in=1800)
    client = connect(patience=600)
    client.rate_limit()
    problem = problem_of(lambda: client.user(JONAS))
    assert problem.kind == OVER_BUDGET
    assert clock.slept == [] and state.calls["get_user"] == 0


def test_a_429_waits_for_its_retry_after(connect, state, clock, statuses):
    """A 429 holds every call back for its Retry-After (the retry's backoff, then the rest),
    and the same call then succeeds."""
    client = connect(patience=HOUR)
    client.rate_limit()
    state.throttle_next(retry_after=120, path="/api/2/users/")
    assert client.user(JONAS)["id"] == JONAS
    assert sum(clock.slept) == pytest.approx(120)
    assert statuses.count(429) == 1


def test_a_429_without_retry_after_waits_for_the_announced_reset(connect, state, clock, statuses):
    """No Retry-After: X-RateLimit-Reset says when; the call goes again after the reset."""
    state.set_budget(0, limit=100, reset_in=300)
    state.rate_retry_after = False
    client = connect(patience=HOUR)
    assert client.user(JONAS)["id"] == JONAS
    assert sum(clock.slept) == pytest.approx(300)
    assert statuses.count(429) == 1


def test_a_429_where_nobody_may_wait_is_refused_without_retries(connect, state, clock):
    """Patience 0: the 429's reset is said at once, and the call is not tried again."""
    state.set_budget(0, limit=100, reset_in=300)
    state.rate_retry_after = False
    client = connect(patience=0)
    problem = problem_of(lambda: client.user(JONAS))
    assert problem.kind == OVER_BUDGET
    assert problem.message.startswith(shortage(0, clock.at(300), 5))
    assert state.calls["get_user"] == 1 and clock.slept == []


def test_figures_are_saved_now_and_then_not_at_every_call(connect, state, clock):
    """Many calls within a moment are saved once, and once more when the client closes."""
    saved = []
    budget = Budget("x", 0.1, now=clock.now, persist=saved.append)
    client = connect(budget=budget)
    for _ in range(20):
        client.user(JONAS)
    assert len(saved) == 1
    client.close()
    assert len(saved) == 2 and saved[-1].remaining == state.budget()[1]


# --- kept for every process, shown on the Sync page ---------------------------------------


@pytest.fixture
def app(make_app):
    return make_app(DASHBOARD_SYNC_EXECUTOR="worker", DASHBOARD_SYNC_RATE=0)


def facts(body: str) -> dict[str, str]:
    """The Sync page's budget figures, label -> text."""
    section = body.split('id="onelogin-budget-title"', 1)[1].split("</section>", 1)[0]
    pairs = re.findall(r"<dt>(.*?)</dt><dd>(.*?)</dd>", section, re.S)
    return {label: re.sub(r"<[^>]+>", "", text) for label, text in pairs}


def test_the_sync_page_shows_the_budget_seen_by_a_preview(app, admin_client, make_app):
    """Before any call the page says the budget is not seen yet; after a preview it shows
    OneLogin's figures, the reserve and when it resets, and another process (another app on
    the same database) sees the same figures."""
    with World.small(app) as world:
        world.person("Ada", "Lovelace", workato_role="Admin")
        assert "Not seen yet" in admin_client.get("/sync").get_data(as_text=True)
        world.tenant.set_budget(4000, limit=5000, reset_in=1500)
        assert post(admin_client, "/sync/preview").status_code == 303
        remaining = world.tenant.budget()[1]
        shown = facts(admin_client.get("/sync").get_data(as_text=True))
    assert remaining < 4000  # the preview spent some
    assert shown["Remaining"] == f"{remaining:,}"
    assert shown["Limit"].startswith("5,000 calls an hour")
    assert shown["Reserve"].startswith("500 (10%) kept for other integrations")
    assert shown["Left for the dashboard"] == f"{remaining - 500:,} calls"
    assert re.fullmatch(r"at \d\d:\d\d UTC \(in 2[45] min\)", shown["Resets"])
    other = make_app(DASHBOARD_SYNC_EXECUTOR="worker")
    with other.app_context():
        seen = budget_store.onelogin_budget_json()
        row = db.session.scalar(select(ApiLimit).where(ApiLimit.api == ONELOGIN))
    assert seen["seen"] and (seen["limit"], seen["remaining"], seen["left"]) == (
        5000,
        remaining,
        remaining - 500,
    )
    assert row.base_url == world.onelogin_url


def test_a_plan_needing_more_calls_than_are_left_is_refused_before_it_reads(app, admin_client):
    """250 users take 3 pages, plus the app and its users: 5 calls. With 3 left above the
    reserve the preview is refused, saying needed and left and the reset, and no page of
    users or app users is read."""
    with World.small(app) as world:
        for n in range(250):
            world.person("Many", f"Person{chr(97 + n // 26)}{chr(97 + n % 26)}")
        world.tenant.set_budget(14, limit=100, reset_in=1800)
        reset_at = datetime.now(UTC) + timedelta(seconds=1800)
        response = post(admin_client, "/sync/preview")
        body = admin_client.get("/sync").get_data(as_text=True)
        assert world.tenant.calls["app_users"] == 0 and world.tenant.calls["get_app"] == 0
        with app.app_context():  # the refusal is in the audit trail, in the same words
            entry = db.session.scalars(
                select(AuditEntry).where(AuditEntry.action == "sync.plan")
            ).one()
        assert entry.outcome == "refused" and "3 calls left" in entry.details["error"]
    assert response.status_code == 303
    assert (
        "A plan needs about 5 OneLogin API calls (the app, then its users and all 250 "
        "OneLogin users page by page). OneLogin&#39;s API budget: 3 calls left above the 10% "
        f"reserve kept for other integrations; it resets at {reset_at:%H:%M} UTC (in 30 min). "
        "Preview again then, or lower DASHBOARD_ONELOGIN_RESERVE."
    ) in body


def test_flask_sync_plan_says_the_same_and_fails(app):
    """The command line refuses the same plan with the same words, and exit code 3: refused
    pending a decision (wait for the reset, or lower the reserve)."""
    with World.small(app) as world:
        for n in range(250):
            world.person("Many", f"Person{chr(97 + n // 26)}{chr(97 + n % 26)}")
        world.tenant.set_budget(14, limit=100, reset_in=1800)
        result = app.test_cli_runner().invoke(args=["sync", "plan"])
        assert world.tenant.calls["app_users"] == 0
    assert result.exit_code == 3
    assert "A plan needs about 5 OneLogin API calls" in result.output
    assert "3 calls left above the 10% reserve" in result.output


# --- who waits, who refuses ----------------------------------------------------------------


def test_pages_and_background_work_refuse_commands_wait(app):
    """A request may not wait; a command in the foreground may, up to the hour, in its own
    thread (where Ctrl-C reaches it) and not in a helper thread; the worker may not."""
    acme = Connection(kind=ONELOGIN, base_url="https://acme.onelogin.com")
    with app.test_request_context("/sync"):
        assert budget_store.pace_for(acme).patience == 0
    seen: dict[str, float] = {}

    def probe(name: str) -> click.Command:
        @click.command(name)
        @with_appcontext
        def command() -> None:
            pace = budget_store.pace_for(acme)
            seen[name] = pace.patience
            helper = threading.Thread(target=lambda: seen.update({f"{name} helper": pace.patience}))
            helper.start()
            helper.join()

        return command

    for name in ("plan", "worker"):
        app.cli.add_command(probe(name))
        assert app.test_cli_runner().invoke(args=[name]).exit_code == 0
    assert seen == {"plan": HOUR, "plan helper": 0, "worker": 0, "worker helper": 0}
