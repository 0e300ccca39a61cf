"""Trust under faults: the emergency stop stops a run already sending, within a second and
whatever Workato or the rate makes it wait for; one writer per person; no database
transaction open while Workato is waited for; a preview forgotten under a concurrent Apply
never becomes an empty run that "succeeds". Against a real scim2-server behind the fault
proxy, on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest
from freezegun import freeze_time
from sqlalchemy import delete, func, select, text

from dashboard import audit
from dashboard.audit.models import AuditEntry
from dashboard.connections import service as connections
from dashboard.connections.models import SCIM
from dashboard.extensions import db
from dashboard.sync import one_user, reports, runner, runs, service
from dashboard.sync.gate import WATCH_SECONDS
from dashboard.sync.models import ITEM_PENDING, ITEM_RUNNING, Item, Run
from dashboard.timeutil import utcnow
from tests.support.fault_proxy import FaultProxy
from tests.support.scim_server import ScimServer
from tests.support.signin import ADMIN_EMAIL, ADMINS, SignIn
from tests.support.sync_world import ACTOR, World, roles_of
from tests.support.workers import start_worker

FAST = {
    "DASHBOARD_SYNC_EXECUTOR": "worker",  # the test works the run itself
    "DASHBOARD_SYNC_BACKOFF_SECONDS": 0.01,
    "DASHBOARD_SYNC_SUSPEND_GUARD_SHARE": 1.0,
}
STOP_BOUND = 1.0  # seconds: no write may start later than this after a stop is committed


@pytest.fixture
def scim() -> Iterator[ScimServer]:
    with ScimServer() as server:
        yield server


def world_on(app, scim: ScimServer, proxy: FaultProxy) -> World:
    return World.small(app, scim_root=proxy.root_url, token=scim.token)


def letters(n: int) -> str:
    """A name part for person n (OneLogin's simulator keeps letters only): a, b, ..., ba."""
    return "".join("abcdefghijklmnopqrstuvwxyz"[int(d, 26)] for d in _base26(n))


def _base26(n: int) -> str:
    digits = "0123456789abcdefghijklmnop"
    out = ""
    while True:
        n, rest = divmod(n, 26)
        out = digits[rest] + out
        if not n:
            return out


def queued_run(app, world: World, people: int) -> int:
    for n in range(people):
        world.person("User", f"Number{letters(n)}", workato_role="Analyst")
    with app.app_context():
        run_id = service.make_plan(ACTOR)[0].id
        service.apply(run_id, ACTOR, start=False)
    return run_id


def working(app, run_id: int) -> threading.Thread:
    """The run carried out in a thread of this process, as the embedded executor does."""

    def work() -> None:
        with app.app_context():
            runner.process(run_id)

    thread = threading.Thread(target=work)
    thread.start()
    return thread


def stop_while_sending(app, proxy: FaultProxy, run_id: int, after: int, stop: Callable) -> float:
    """Work the run in a thread; once the request after the first `after` is held by a slow
    Workato, `stop()` (in an app context); let the held request go; wait for the run's end.
    When the stop was committed (monotonic time)."""
    held = proxy.hold_after(after)
    thread = working(app, run_id)
    assert held.arrived.wait(30)
    with app.app_context():
        stop()
    stopped_at = time.monotonic()
    held.release.set()
    thread.join(60)
    assert not thread.is_alive()
    return stopped_at


def writes_after(proxy: FaultProxy, moment: float) -> list[tuple[float, str, str]]:
    return [a for a in proxy.arrivals if a[1] in ("POST", "PUT", "PATCH") and a[0] > moment]


def run_document(app, run_id: int) -> dict:
    with app.app_context():
        return reports.run_json(runs.get(run_id))


# --- the emergency stop ----------------------------------------------------------------


def disable(server: ScimServer) -> None:
    connections.disable_scim(ADMIN_EMAIL, clear_token=False)


def clear_token(server: ScimServer) -> None:
    connections.disable_scim(ADMIN_EMAIL, clear_token=True)


def move_base_url(server: ScimServer) -> None:
    """The admin points SCIM somewhere else (here: past the proxy), token entered again."""
    connections.save(SCIM, actor=ADMIN_EMAIL, base_url=server.base_url, secret=server.token)


STOPS: dict[str, tuple[Callable, str]] = {
    "disable": (disable, "SCIM was disabled on Connections (the emergency stop): stopped."),
    "clear_token": (clear_token, "The SCIM token was cleared on Connections: stopped."),
    "new_base_url": (move_base_url, "The SCIM base URL changed to"),
}


@pytest.mark.parametrize("change", sorted(STOPS))
def test_a_stop_on_connections_stops_the_run_already_sending_within_a_second(
    make_app, scim, change
):
    """Four writers, one of them held by a slow Workato: after the change is committed, no
    new write starts later than a second; the held write finishes and is recorded; the run
    ends stopped with the rest pending and the reason, audited."""
    app = make_app(**FAST, DASHBOARD_SYNC_CONCURRENCY=4, DASHBOARD_SYNC_RATE=25)
    make_change, reason = STOPS[change]
    with FaultProxy(scim.root_url, hold_timeout=60) as proxy, world_on(app, scim, proxy) as world:
        run_id = queued_run(app, world, 60)
        stopped_at = stop_while_sending(app, proxy, run_id, 6, lambda: make_change(scim))

        assert writes_after(proxy, stopped_at + STOP_BOUND) == []
        document = run_document(app, run_id)
        assert document["status"] == "stopped" and reason in document["message"]
        created = len(world.workato_users())
        assert document["succeeded"] == created and 0 < created < 60
        assert document["pending"] == 60 - created  # the held write was recorded
        with app.app_context():
            finished = db.session.scalars(
                select(AuditEntry).where(AuditEntry.action == "sync.run.finished")
            ).one()
        assert finished.details["status"] == "stopped" and reason in finished.details["message"]


def test_resume_after_the_emergency_stop_sends_each_write_once(make_app, scim):
    app = make_app(**FAST, DASHBOARD_SYNC_CONCURRENCY=4, DASHBOARD_SYNC_RATE=25)
    with FaultProxy(scim.root_url, hold_timeout=60) as proxy, world_on(app, scim, proxy) as world:
        run_id = queued_run(app, world, 30)
        stop_while_sending(app, proxy, run_id, 4, lambda: disable(scim))
        with app.app_context():
            with pytest.raises(service.Refused, match="SCIM is disabled"):
                service.resume(run_id, ACTOR, start=False)
            connections.enable_scim(ADMIN_EMAIL)
            service.resume(run_id, ACTOR, start=False)
            runner.process(run_id)

        document = run_document(app, run_id)
        assert document["status"] == "succeeded" and document["succeeded"] == 30
        assert len(world.workato_users()) == 30
        assert proxy.seen("POST") == 30  # nobody created twice


def test_cancel_stops_writers_waiting_for_their_turn_at_a_low_rate(make_app, scim):
    """At one request a second, three writers wait seconds for their turn: a cancel ends
    the waits, so no write starts a second after it."""
    app = make_app(**FAST, DASHBOARD_SYNC_CONCURRENCY=4, DASHBOARD_SYNC_RATE=1)
    with FaultProxy(scim.root_url, hold_timeout=60) as proxy, world_on(app, scim, proxy) as world:
        run_id = queued_run(app, world, 12)
        cancelled_at = stop_while_sending(
            app, proxy, run_id, 1, lambda: service.cancel(run_id, ADMIN_EMAIL)
        )

        assert writes_after(proxy, cancelled_at + STOP_BOUND) == []
        document = run_document(app, run_id)
        assert document["status"] == "cancelled"
        assert document["succeeded"] == len(world.workato_users()) < 12


# --- one writer per person -----------------------------------------------------------------


def test_a_one_user_write_waits_for_the_runs_write_in_flight_for_that_person(make_app, scim):
    """A run is updating Ada when an admin suspends her directly: the suspension goes out
    only after the run's write was answered, never beside it, and Ada ends suspended."""
    app = make_app(**FAST, DASHBOARD_SYNC_CONCURRENCY=1, DASHBOARD_SYNC_RATE=0)
    with FaultProxy(scim.root_url, hold_timeout=60) as proxy, world_on(app, scim, proxy) as world:
        ada = world.person("Ada", "Lovelace", workato_role="Admin")
        world.add_workato_user("ada.lovelace@example.com", workato_role="Analyst")
        with app.app_context():
            run_id = service.make_plan(ACTOR)[0].id  # updates Ada's role
            service.apply(run_id, ACTOR, start=False)
        held = proxy.hold_matching("PATCH", r"/Users/")
        thread = working(app, run_id)
        assert held.arrived.wait(30)

        result: dict = {}

        def suspend() -> None:
            with app.app_context():
                result["done"] = one_user.set_active(
                    "ada.lovelace@example.com", "ada.lovelace@example.com", False, ADMIN_EMAIL
                )

        admin = threading.Thread(target=suspend)
        admin.start()
        with app.app_context():
            waiting = wait_for(lambda: _one_user_item_status(ACTOR_KEY), "the one-user run")
        assert waiting == ITEM_PENDING  # claimed by the run's write: it waits, unsent
        assert proxy.seen("PATCH") == 1
        released_at = time.monotonic()
        held.release.set()
        admin.join(60)
        thread.join(60)

        assert result["done"].ok
        patches = [a[0] for a in proxy.arrivals if a[1] == "PATCH"]
        assert len(patches) == 2 and patches[1] > released_at  # after, never beside
        assert world.workato_user("ada.lovelace@example.com")["active"] is False
        assert roles_of(world.workato_user("ada.lovelace@example.com")) == {"workato_role": "Admin"}
        assert ada.id  # Ada stays in OneLogin: only Workato was acted on


ACTOR_KEY = "ada.lovelace@example.com"


def _one_user_item_status(key: str) -> str | None:
    db.session.rollback()
    return db.session.scalar(
        select(Item.status)
        .join(Run, Run.id == Item.run_id)
        .where(Run.kind == "user", Item.key == key, Run.status == "running")
    )


def wait_for(probe: Callable[[], object], what: str, seconds: float = 30.0) -> object:
    """Poll observed state until `probe` gives something (not a sleep standing for it)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = probe()
        if found:
            return found
        threading.Event().wait(WATCH_SECONDS / 4)
    raise AssertionError(f"{what} never showed up")


# --- no transaction across a network call -------------------------------------------------


def test_a_slow_workato_never_holds_the_database(make_app, scim, idp):
    """While Workato holds the read-back of a Provision now (40 s if we let it), sign-ins
    and audit entries go through: no transaction stays open across the wait."""
    app = make_app(**FAST, DASHBOARD_CONNECT_TIMEOUT_SECONDS=45)
    with FaultProxy(scim.root_url, hold_timeout=40) as proxy, world_on(app, scim, proxy) as world:
        world.person("Ada", "Lovelace", workato_role="Admin")
        held = proxy.hold_matching("GET", r"/Users/[^?]+$")  # the read-back after the write
        provisioned: dict = {}

        def provision() -> None:
            with app.app_context():
                provisioned["result"] = one_user.provision(ACTOR_KEY, ADMIN_EMAIL)

        admin = threading.Thread(target=provision)
        admin.start()
        assert held.arrived.wait(30)
        others: dict = {}

        def meanwhile() -> None:
            signing_in = SignIn(app.test_client(), idp, app)
            others["sign_in"] = signing_in.as_(ADMIN_EMAIL, [ADMINS]).status_code
            with app.app_context():
                audit.record("test.meanwhile", actor=ADMIN_EMAIL, outcome="success")
                db.session.commit()
                others["audit"] = True

        other = threading.Thread(target=meanwhile)
        other.start()
        other.join(35)  # SQLite's busy timeout is 30 s: a held lock fails them by then
        held.release.set()
        admin.join(60)

        assert others == {"sign_in": 302, "audit": True}
        assert provisioned["result"].ok


# --- previews and empty runs --------------------------------------------------------------


def test_forgetting_previews_beside_a_concurrent_apply_keeps_the_applied_runs_writes(
    make_app, scim, database
):
    """A new preview forgets the old one while another process applies it: the applied run
    keeps every write (on PostgreSQL the two statements really interleave)."""
    app = make_app(**FAST)
    with FaultProxy(scim.root_url) as proxy, world_on(app, scim, proxy) as world:
        for n in range(3):
            world.person("User", f"Number{letters(n)}", workato_role="Analyst")
        with app.app_context():
            run_id = service.make_plan(ACTOR)[0].id

        applying = threading.Event()
        applied = threading.Event()

        def apply() -> None:  # the first half of Apply, held open until told
            with app.app_context():
                runs.activate(run_id, ACTOR)
                applying.set()
                applied.wait(30)
                db.session.commit()

        forgetting: dict = {}

        def forget() -> None:
            with app.app_context():
                forgetting["pid"] = _backend_pid(database.kind)
                service._forget_previews()
                db.session.commit()

        first = threading.Thread(target=apply)
        first.start()
        assert applying.wait(30)
        second = threading.Thread(target=forget)
        second.start()
        if database.kind == "postgresql":
            with app.app_context():
                wait_for(lambda: _waits_on_a_lock(forgetting.get("pid")), "the lock wait")
        applied.set()
        first.join(30)
        second.join(30)

        with app.app_context():
            kept = db.session.scalar(select(func.count()).where(Item.run_id == run_id))
            assert runs.get(run_id).status == "queued" and kept == 3
            runner.process(run_id)
        assert run_document(app, run_id)["succeeded"] == 3


def _backend_pid(kind: str) -> int | None:
    if kind != "postgresql":
        return None
    pid = db.session.scalar(text("SELECT pg_backend_pid()"))
    db.session.commit()
    return pid


def _waits_on_a_lock(pid: int | None) -> bool:
    if pid is None:
        return False
    waiting = db.session.scalar(
        text("SELECT wait_event_type FROM pg_stat_activity WHERE pid = :pid"), {"pid": pid}
    )
    db.session.rollback()
    return waiting == "Lock"


def test_a_run_whose_writes_were_lost_fails_instead_of_succeeding_empty(make_app, scim):
    app = make_app(**FAST)
    with FaultProxy(scim.root_url) as proxy, world_on(app, scim, proxy) as world:
        run_id = queued_run(app, world, 2)
        with app.app_context():
            db.session.execute(delete(Item.__table__).where(Item.run_id == run_id))
            db.session.commit()
            runner.process(run_id)
        document = run_document(app, run_id)
        assert document["status"] == "failed"
        assert "holds no writes: nothing was sent" in document["message"]
        assert proxy.seen("POST") == 0


def test_a_stopped_write_whose_try_may_have_landed_is_rechecked_on_resume(make_app, scim):
    """A 503 leaves a create's outcome unknown; a cancel before its retry keeps it unknown
    (running), so the resume reads Workato first instead of creating twice."""
    app = make_app(**{**FAST, "DASHBOARD_SYNC_BACKOFF_SECONDS": 5}, DASHBOARD_SYNC_CONCURRENCY=1)
    with FaultProxy(scim.root_url) as proxy, world_on(app, scim, proxy) as world:
        run_id = queued_run(app, world, 1)
        proxy.answer_next(1, 503)  # the create may or may not have landed
        thread = working(app, run_id)
        with app.app_context():
            wait_for(lambda: proxy.seen("POST") == 1, "the first create")
            service.cancel(run_id, ADMIN_EMAIL)  # during the 5 s backoff
        thread.join(30)
        with app.app_context():
            item = db.session.scalars(select(Item).where(Item.run_id == run_id)).one()
            assert item.status == ITEM_RUNNING  # unknown: re-checked on resume
        assert run_document(app, run_id)["status"] == "cancelled"
        assert proxy.seen("POST") == 1  # the cancel cut the backoff short
        with app.app_context():
            service.resume(run_id, ACTOR, start=False)
            runner.process(run_id)
        assert run_document(app, run_id)["status"] == "succeeded"
        assert len(world.workato_users()) == 1


# --- fenced workers ------------------------------------------------------------------------


def test_a_worker_paused_past_its_lease_sends_and_records_nothing_after_it_wakes(make_app, scim):
    """A `flask sync worker` is paused (SIGSTOP) with a create in flight; its lease passes and
    the run is taken over and finished elsewhere; woken (SIGCONT), the paused worker writes
    nothing more: each user created once, each create recorded once."""
    app = make_app(**FAST, DASHBOARD_SYNC_CONCURRENCY=1, DASHBOARD_SYNC_RATE=0)
    with FaultProxy(scim.root_url, hold_timeout=60) as proxy, world_on(app, scim, proxy) as world:
        run_id = queued_run(app, world, 6)
        held = proxy.hold_matching("POST", r"/Users$")  # the first create waits in Workato
        worker = start_worker(app, "--once")
        try:
            assert held.arrived.wait(60), worker.stderr.read() if worker.stderr else ""
            os.kill(worker.pid, signal.SIGSTOP)
            held.release.set()  # Workato creates the user while the worker sleeps
            assert held.forwarded.wait(30)
            with app.app_context():
                with freeze_time(utcnow() + timedelta(minutes=5)):  # the lease passes
                    assert service.current_active() is None
                service.resume(run_id, ACTOR, start=False)
                runner.process(run_id)  # the takeover: re-checks the first create, sends the rest
            finished = run_document(app, run_id)
            os.kill(worker.pid, signal.SIGCONT)
            _, said = worker.communicate(timeout=60)
        finally:
            if worker.poll() is None:
                os.kill(worker.pid, signal.SIGCONT)
                worker.kill()
                worker.communicate(timeout=10)

        assert "taken over by another process" in said
        assert finished["status"] == "succeeded" and finished["succeeded"] == 6
        assert run_document(app, run_id) == finished  # the woken worker changed nothing
        assert proxy.seen("POST") == 6 and len(world.workato_users()) == 6
        with app.app_context():
            creates = db.session.scalar(
                select(func.count()).where(AuditEntry.action == "sync.create")
            )
        assert creates == 6


# --- what a one-user write leaves behind ------------------------------------------------------


GRACE = "grace.hopper@example.com"


def test_removing_access_from_someone_not_yet_in_workato_supersedes_the_runs_create(make_app, scim):
    """A long run is about to create Grace when her access is removed: the reconcile sends
    nothing (she is not in Workato), and the run must not create her later either."""
    app = make_app(**FAST, DASHBOARD_SYNC_RATE=0)
    with FaultProxy(scim.root_url) as proxy, world_on(app, scim, proxy) as world:
        grace = world.person("Grace", "Hopper", workato_role="Analyst")
        with app.app_context():
            run_id = service.make_plan(ACTOR)[0].id  # creates Grace
            service.apply(run_id, ACTOR, start=False)
        world.revoke(grace.id)
        with app.app_context():
            result = one_user.provision(GRACE, ADMIN_EMAIL)
            item = db.session.scalars(select(Item).where(Item.run_id == run_id)).one()
            assert item.status == "superseded" and ADMIN_EMAIL in item.note
            runner.process(run_id)
        assert result.ok
        assert world.workato_user(GRACE) is None
        assert proxy.seen("POST") == 0


def test_retrying_failures_leaves_out_people_acted_on_since(make_app, scim):
    """Ada's create failed in run X; an admin then provisioned her directly. Retry failed
    must not send X's old write for her: it was decided before."""
    app = make_app(**FAST, DASHBOARD_SYNC_RATE=0, DASHBOARD_SYNC_CONCURRENCY=1)
    with FaultProxy(scim.root_url) as proxy, world_on(app, scim, proxy) as world:
        world.person("Ada", "Lovelace", workato_role="Admin")
        with app.app_context():
            failed_run = service.make_plan(ACTOR)[0].id
            service.apply(failed_run, ACTOR, start=False)
        proxy.answer_next(1, 400)  # the create: refused
        with app.app_context():
            runner.process(failed_run)
            assert run_document(app, failed_run)["status"] == "failed"
        proxy.clear()
        with app.app_context():
            assert one_user.provision(ACTOR_KEY, ADMIN_EMAIL).ok
            with pytest.raises(service.Refused, match="a later run acted on"):
                service.retry_failed(failed_run, ADMIN_EMAIL, start=False)
        assert world.workato_user(ACTOR_KEY)["active"] is True


def _run_with_item(kind: str, status: str, *, active: int | None = None) -> int:
    run = Run(kind=kind, status=status, created_by=ACTOR, total=1, active=active)
    run.counts = {"create": 1}
    run.finished_at = None if status in ("queued", "running") else utcnow()
    db.session.add(run)
    db.session.flush()
    db.session.add(Item(run_id=run.id, key=ACTOR_KEY, user_name=ACTOR_KEY, action="create"))
    db.session.commit()
    return run.id


def test_a_one_user_write_is_not_resumed_and_holds_no_slot(app):
    """A stopped one-user write is acted on again from the person's page, never resumed (in
    worker mode it would sit queued in the sync's slot); beside a queued sync, the active run
    is the sync, so `flask sync cancel` and the Sync page's Cancel reach the right one."""
    with app.app_context():
        stopped = _run_with_item("user", "stopped")
        assert not service.can_resume(runs.get(stopped), 1)
        with pytest.raises(service.Refused, match="act on them again"):
            service.resume(stopped, ADMIN_EMAIL, start=False)
        _run_with_item("user", "running")  # a one-user write in flight: no slot
        sync_run = _run_with_item("sync", "queued", active=1)
        assert service.current_active().id == sync_run


def test_a_one_user_write_supersedes_older_runs_only(app):
    """Two one-user writes for one person: the newer decision is never superseded by the
    older one (it goes after it instead)."""
    with app.app_context():
        older = _run_with_item("sync", "running")
        mine = _run_with_item("user", "running")
        newer = _run_with_item("user", "queued")
        assert runs.supersede(ACTOR_KEY, mine, "test") == 1
        db.session.commit()
        status = dict(db.session.execute(select(Item.run_id, Item.status)).all())
    assert status == {older: "superseded", mine: "pending", newer: "pending"}


def test_reactivating_someone_deleted_in_workato_fails_instead_of_succeeding(scim):
    from dashboard.connections.scim import ScimClient
    from dashboard.sync.executor import FAILED, Executor, Work
    from dashboard.sync.pace import Pace

    with ScimClient(scim.base_url, scim.token) as client:
        executor = Executor(client, Pace(0), attempts=2, backoff_base=0.01)
        work = Work("gone@example.com", "reactivate", {}, None, recheck=True)
        outcome = executor.perform(work)
    assert outcome.status == FAILED and outcome.http_status == 404
    assert "no longer in Workato" in outcome.error
