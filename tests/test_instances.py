"""Several instances and workers, for real (issue 16): gunicorn instances of `app:app` and
`flask sync worker` processes, each its own process group with its own instance folder, all on
one PostgreSQL database, sharing what an operator shares between machines (SECRET_KEY,
DASHBOARD_ENCRYPTION_KEY, the audit signing key, the sign-in limits' Redis, the load
balancer's SAML_SP_BASE_URL). OneLogin is the suite's simulator and Workato scim2-server behind
the fault proxy, both served from this process.

A session made on one instance works on the other; Apply clicked on both at once makes one
run; a worker killed mid-run (SIGKILL) is taken over by the other once the lease passes, and
one stopped with SIGTERM hands its run over at once, each user created exactly once; /readyz
says whether the schema is migrated; with the embedded executor, a web process killed mid-run
carries the run on when it is started again. The takeover and handover times are measured and
printed (pytest -s shows them).

PostgreSQL only: several machines share one PostgreSQL (SQLite is the one-process default).
"""

from __future__ import annotations

import re
import signal
import threading
from collections.abc import Iterator

import pytest
import requests
from sqlalchemy import select

from dashboard.extensions import db
from dashboard.sync import runs
from dashboard.sync.models import Item, Run
from tests.support.fault_proxy import FaultProxy
from tests.support.fresh_database import fresh_database
from tests.support.instances import Browser, Cluster, Shared, claims_after, entries, until
from tests.support.redis_db import redis_database
from tests.support.scim_server import ScimServer
from tests.support.signin import ADMIN_EMAIL, ADMINS
from tests.support.sync_world import World
from tests.test_sync_safety import letters, queued_run

# Several machines share one PostgreSQL; the suite's CI=true rule for it holds here too.
pytestmark = pytest.mark.parametrize("database", ["postgresql"], indirect=True)

PEOPLE = 6
LEASE = "5"  # seconds, where the lease is not the point
RUN_SECONDS = 90.0  # a run's end, takeovers included, on a loaded machine
RECHECKED = "Already done: Workato holds the wanted state (re-checked)."
APPLY = re.compile(r'action="(/sync/runs/(\d+)/apply)"')
# Interrupted is not an end here: another process takes the run over.
FINAL = ("succeeded", "failed", "stopped", "cancelled")


@pytest.fixture
def shared(tmp_path) -> Iterator[Shared]:
    with redis_database() as url:
        yield Shared.make(tmp_path / "keys", url)


@pytest.fixture
def app(make_app, shared):
    """The test's own view of the installation: it saves the connections and reads the
    database; it never works a run."""
    return make_app(**shared.app_settings(), DASHBOARD_SYNC_EXECUTOR="worker")


@pytest.fixture
def scim() -> Iterator[ScimServer]:
    with ScimServer() as server:
        yield server


@pytest.fixture
def proxy(scim) -> Iterator[FaultProxy]:
    with FaultProxy(scim.root_url, hold_timeout=120) as proxy:
        yield proxy


@pytest.fixture
def world(app, scim, proxy) -> Iterator[World]:
    with World.small(app, scim_root=proxy.root_url, token=scim.token) as world:
        yield world


@pytest.fixture
def cluster(app, shared, tmp_path) -> Iterator[Cluster]:
    """Stopped before the world and the database: torn down first, as asked for last."""
    with Cluster(app, shared, tmp_path / "machines") as cluster:
        yield cluster


@pytest.fixture
def browser(idp, app) -> Browser:
    return Browser(idp, app.extensions["dashboard.saml"])


def signed_in(browser: Browser, site: str) -> Browser:
    answer = browser.sign_in(site, ADMIN_EMAIL, [ADMINS])
    assert answer.status_code == 302 and answer.headers["Location"] == "/", answer.text
    return browser


def people(world: World, n: int = PEOPLE) -> None:
    for k in range(n):
        world.person("User", f"Number{letters(k)}", workato_role="Analyst")


def run_of(app, run_id: int) -> Run:
    with app.app_context():
        run = runs.get(run_id)
        db.session.expunge(run)
        db.session.remove()
        return run


def items_of(app, run_id: int) -> list[Item]:
    with app.app_context():
        found = db.session.scalars(select(Item).where(Item.run_id == run_id)).all()
        db.session.expunge_all()
        db.session.remove()
        return found


def owner_while_held(app, run_id: int, held) -> str:
    """The owner of the run whose create the proxy holds."""
    assert held.arrived.wait(RUN_SECONDS), "no create reached Workato"
    owner = run_of(app, run_id).owner
    assert owner, "the run is sending with no owner"
    return owner


def finished(app, run_id: int, cluster: Cluster) -> Run:
    """The run once it has ended; the processes still running must not have exited."""
    alive = [p for p in cluster.processes if p.alive()]
    return until(
        f"run {run_id} to end",
        lambda: (run := run_of(app, run_id)).status in FINAL and run,
        alive,
        timeout=RUN_SECONDS,
        every=0.2,
    )


def created_once(
    app, run_id: int, world: World, proxy: FaultProxy, people: int = PEOPLE
) -> list[Item]:
    """Every person is in Workato once, through one create each; the run's items say so."""
    users = world.workato_users()
    items = items_of(app, run_id)
    assert len(users) == people
    assert proxy.seen("POST") == people  # no create sent twice, none lost
    assert sorted(i.key for i in items) == sorted(users)
    assert {(i.action, i.status) for i in items} == {("create", "succeeded")}
    return items


# --- 1. sessions ---------------------------------------------------------------------------


def test_a_session_made_on_one_instance_works_on_the_other_and_ends_on_both(cluster, browser):
    a, b = cluster.webs("a", "b")
    signed_in(browser, a.url)
    nobody = Browser(browser.idp, browser.saml)
    assert nobody.get(b.url + "/users").status_code == 302  # B asks a stranger to sign in

    # The next request lands on B, carrying the cookie A set.
    on_b = browser.holding_session_of(browser)
    page = on_b.page(b.url + "/users")
    assert "Sign out" in page and "badge-admin" in page

    out = on_b.post(b.url + "/logout", page)
    assert out.status_code == 302
    # A's copy of the very same cookie is signed out too: the session ended everywhere.
    again = browser.get(a.url + "/users")
    assert again.status_code == 302 and "/saml/login" in again.headers["Location"]


# --- 2. one run however many click ---------------------------------------------------------


def test_apply_clicked_on_both_instances_at_once_makes_one_run(app, cluster, world, proxy, browser):
    people(world)
    a, b = cluster.webs("a", "b")
    cluster.workers("w1", "w2")
    on_a = signed_in(browser, a.url)
    on_b = signed_in(Browser(browser.idp, browser.saml), b.url)
    assert on_a.post(a.url + "/sync/preview", on_a.page(a.url + "/sync")).status_code == 303

    page_a, page_b = on_a.page(a.url + "/sync"), on_b.page(b.url + "/sync")
    path, run_id = APPLY.search(page_a).groups()
    assert APPLY.search(page_b)[1] == path, "both instances show the same preview"
    run_id = int(run_id)

    clicks = [(on_a, a.url, page_a), (on_b, b.url, page_b)]
    barrier, answers = threading.Barrier(len(clicks)), [None] * len(clicks)

    def click(n: int) -> None:
        who, site, page = clicks[n]
        barrier.wait(30)
        answers[n] = who.post(site + path, page, htmx=True)

    threads = [threading.Thread(target=click, args=(n,)) for n in range(len(clicks))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    statuses = sorted(answer.status_code for answer in answers)
    assert statuses == [200, 409], [(a.status_code, a.text[:300]) for a in answers]
    refused = next(a for a in answers if a.status_code == 409)
    # The refusal shows the run the other click queued, not an error alone.
    assert "already" in refused.text and f"Run {run_id}" in refused.text, refused.text

    run = finished(app, run_id, cluster)
    assert run.status == "succeeded", (run.message, cluster.said())
    with app.app_context():
        started = db.session.scalars(select(Run.id).where(Run.status != "planned")).all()
    assert started == [run_id]  # the one preview became the one run; nothing else started
    queued = entries(app, "sync.run.queued", run_id)
    assert [e.outcome for e in queued] == ["success"]
    created_once(app, run_id, world, proxy)


# --- 3. SIGKILL: taken over once the lease passes -------------------------------------------


def test_a_worker_killed_mid_run_is_taken_over_and_nobody_is_created_twice(
    app, cluster, world, proxy
):
    run_id = queued_run(app, world, PEOPLE)
    held = proxy.hold_matching("POST", r"/Users$")
    cluster.workers("w1", "w2", DASHBOARD_SYNC_LEASE_SECONDS=LEASE)
    first = owner_while_held(app, run_id, held)
    sending = cluster.owning(first)
    survivor = next(p for p in cluster.processes if p is not sending)

    killed = cluster.kill(sending, signal.SIGKILL)
    sending.popen.wait(30)
    # The create it was waiting for reaches Workato after all: the database never hears.
    held.release.set()
    assert held.forwarded.wait(30)

    run = finished(app, run_id, cluster)
    assert run.status == "succeeded", (run.message, cluster.said())
    assert sending.popen.returncode == -signal.SIGKILL and survivor.alive()
    items = created_once(app, run_id, world, proxy)
    # The one whose answer was lost was re-checked, found and not sent again.
    assert [i.note for i in items if i.note] == [RECHECKED]
    takeover = entries(app, "sync.run.takeover", run_id)
    assert [(e.actor, e.outcome, e.details) for e in takeover] == [
        ("takeover", "success", {"run": run_id, "takeover": 1})
    ]
    (claim,) = claims_after(app, run_id, first)
    assert claim.details["owner"] == survivor.owner and run.takeovers == 1

    queued_after, took = takeover[0].at.timestamp() - killed, claim.at.timestamp() - killed
    print(
        f"\nTakeover after SIGKILL: claimed by the other worker {took:.1f} s after the kill "
        f"(queued again after {queued_after:.1f} s; lease {LEASE} s)."
    )
    # Not before the lease passed (the last heartbeat was at most a second before the kill).
    assert took >= int(LEASE) - 1


# --- 4. SIGTERM: handed over at once ---------------------------------------------------------


def test_sigterm_hands_the_run_over_without_waiting_for_the_lease(app, cluster, world, proxy):
    run_id = queued_run(app, world, PEOPLE)
    held = proxy.hold_matching("POST", r"/Users$")
    # The default lease: a takeover would take a minute; the handover must not.
    cluster.workers("w1", "w2", DASHBOARD_SYNC_LEASE_SECONDS="60")
    first = owner_while_held(app, run_id, held)
    sending = cluster.owning(first)
    other = next(p for p in cluster.processes if p is not sending)

    stopped = cluster.kill(sending, signal.SIGTERM)
    held.release.set()  # the write in flight finishes
    assert sending.popen.wait(30) == 0, sending.said()

    (handed,) = entries(app, "sync.run.handed_over", run_id)
    assert handed.outcome == "success" and handed.details["owner"] == first
    # Its write in flight was recorded before it let go, and nothing was sent after it.
    recorded = [i for i in items_of(app, run_id) if i.finished_at and i.finished_at <= handed.at]
    assert [i.status for i in recorded] == ["succeeded"]

    run = finished(app, run_id, cluster)
    assert run.status == "succeeded", (run.message, cluster.said())
    items = created_once(app, run_id, world, proxy)
    assert not [i.note for i in items if i.note]  # nothing of unknown outcome to re-check
    assert run.takeovers == 0 and entries(app, "sync.run.takeover", run_id) == []
    (claim,) = claims_after(app, run_id, first)
    assert claim.details["owner"] == other.owner

    took = claim.at.timestamp() - stopped
    print(
        f"\nHandover after SIGTERM: claimed by the other worker {took:.1f} s after the signal "
        f"(handed over after {handed.at.timestamp() - stopped:.1f} s; lease 60 s)."
    )
    assert took < 15  # a poll of the other worker, not the lease


# --- 5. readiness ----------------------------------------------------------------------------


def test_readyz_answers_503_before_flask_db_upgrade_and_200_after(cluster, tmp_path):
    with fresh_database("postgresql", tmp_path) as url:
        web = cluster.web("new", DATABASE_URL=url)
        try:
            before = requests.get(web.url + "/readyz", timeout=30)
            assert before.status_code == 503
            assert "flask db upgrade" in before.json()["reason"]
            assert requests.get(web.url + "/healthz", timeout=30).status_code == 200

            upgrade = cluster.run_flask("deploy", "db", "upgrade", DATABASE_URL=url)
            assert upgrade.returncode == 0, upgrade.stderr
            # Both gunicorn workers see it (each request goes to either).
            after = [requests.get(web.url + "/readyz", timeout=30) for _ in range(4)]
            assert [a.status_code for a in after] == [200] * 4, [a.text for a in after]
            assert after[0].json()["status"] == "ready"
        finally:
            cluster.kill(web, signal.SIGTERM)  # before its database is dropped
            web.popen.wait(30)


# --- 6. the embedded executor ----------------------------------------------------------------

EMBEDDED = {"DASHBOARD_SYNC_EXECUTOR": "thread", "DASHBOARD_SYNC_LEASE_SECONDS": LEASE}


def applied_on(browser: Browser, site: str) -> int:
    """Preview, then Apply, on `site`: the run, queued (and with the embedded executor
    started by the web process that took the click)."""
    assert browser.post(site + "/sync/preview", browser.page(site + "/sync")).status_code == 303
    page = browser.page(site + "/sync")
    path, run_id = APPLY.search(page).groups()
    assert browser.post(site + path, page, htmx=True).status_code == 200
    return int(run_id)


def pid_of(owner: str) -> int:
    return int(owner.rsplit(":", 2)[1])


def test_a_web_process_killed_mid_run_carries_the_run_on_when_started_again(
    app, cluster, world, proxy, browser
):
    """DASHBOARD_SYNC_EXECUTOR=thread: the run is worked by the web process that took the
    Apply; the machine dies (the whole gunicorn group, SIGKILL) and is started again."""
    people(world)
    web = cluster.web("a", **EMBEDDED)
    held = proxy.hold_matching("POST", r"/Users$")
    run_id = applied_on(signed_in(browser, web.url), web.url)
    first = owner_while_held(app, run_id, held)
    assert web.holds(pid_of(first))

    killed = cluster.kill(web, signal.SIGKILL)
    web.popen.wait(30)
    held.release.set()
    assert held.forwarded.wait(30)
    again = cluster.restart(web)

    run = finished(app, run_id, cluster)
    assert run.status == "succeeded", (run.message, cluster.said())
    items = created_once(app, run_id, world, proxy)
    assert [i.note for i in items if i.note] == [RECHECKED]
    assert [e.actor for e in entries(app, "sync.run.takeover", run_id)] == ["takeover"]
    (claim,) = claims_after(app, run_id, first)
    assert again.holds(pid_of(claim.details["owner"]))
    took = claim.at.timestamp() - killed
    print(
        f"\nEmbedded executor, SIGKILL: the restarted web process claimed the run {took:.1f} s "
        f"after the kill (lease {LEASE} s)."
    )


def test_a_web_process_told_to_stop_hands_its_run_to_the_other_instance(
    app, cluster, world, proxy, browser
):
    """DASHBOARD_SYNC_EXECUTOR=thread, two instances: SIGTERM to the one sending (gunicorn's
    graceful stop) stops its writes at once, records the one in flight and hands the run to
    the other instance, which carries it on without waiting for the (default) lease. Several
    writers, paced, so that writes are still to go when the signal comes: before, Python's
    exit shut the run's thread pool first, the run died with it and waited out the lease."""
    for n in range(40):
        world.person("User", f"Number{letters(n)}", workato_role="Analyst")
    slow = {**EMBEDDED, "DASHBOARD_SYNC_LEASE_SECONDS": "60", "DASHBOARD_SYNC_RATE": "4"}
    a, b = cluster.webs("a", "b", **slow, DASHBOARD_SYNC_CONCURRENCY="4")
    run_id = applied_on(signed_in(browser, a.url), a.url)
    held = proxy.hold_matching("POST", r"/Users$")
    first = owner_while_held(app, run_id, held)
    sending = a if a.holds(pid_of(first)) else b
    other = b if sending is a else a

    stopped = cluster.kill(sending, signal.SIGTERM)
    until(
        "the run handed over",
        lambda: entries(app, "sync.run.handed_over", run_id),
        timeout=20,
        every=0.1,
    )
    held.release.set()
    assert sending.popen.wait(60) == 0, sending.said()

    run = finished(app, run_id, cluster)
    assert run.status == "succeeded", (run.message, cluster.said())
    created_once(app, run_id, world, proxy, people=40)
    assert run.takeovers == 0 and entries(app, "sync.run.takeover", run_id) == []
    claim = claims_after(app, run_id, first)[0]
    assert other.holds(pid_of(claim.details["owner"]))
    took = claim.at.timestamp() - stopped
    print(
        f"\nEmbedded executor, SIGTERM: the other instance claimed the run {took:.1f} s after "
        "the signal (lease 60 s)."
    )
    assert took < 30  # the other instance's background loop (10 s), not the lease
