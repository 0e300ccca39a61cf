"""Automatic takeover and graceful handover (issue 16), in one process against scim2-server
behind a fault proxy: a run whose process stopped beating is resumed once the lease passes,
with nobody clicking, sending nothing twice; after three takeovers it stops with a message;
a stopping process hands its run back to the queue at once, its writes in flight recorded.

The same with real processes (SIGKILL, SIGTERM, gunicorn): tests/test_instances.py."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta

import pytest
from freezegun import freeze_time
from sqlalchemy import func, select, update

from dashboard.audit.models import AuditEntry
from dashboard.extensions import db
from dashboard.sync import handover, runner, runs, takeover
from dashboard.sync.models import ITEM_RUNNING, Item, Run
from dashboard.timeutil import utcnow
from tests.support.fault_proxy import FaultProxy
from tests.support.scim_server import ScimServer
from tests.test_sync_safety import FAST, queued_run, run_document, world_on

LEASE = 60


@pytest.fixture
def app(make_app):
    return make_app(**FAST, DASHBOARD_SYNC_RATE=0, DASHBOARD_SYNC_LEASE_SECONDS=LEASE)


@pytest.fixture
def scim() -> Iterator[ScimServer]:
    with ScimServer() as server:
        yield server


@pytest.fixture(autouse=True)
def _no_handover_left() -> Iterator[None]:
    """The handover is process-wide: a test that begins one ends it."""
    yield
    handover.reset()


def died_mid_run(app, run_id: int, sent: int) -> None:
    """A process claimed the run, sent `sent` writes (marked running: their outcome is
    unknown to the database) and died: its heartbeat stopped."""
    with app.app_context():
        assert runs.claim(run_id, "a-process-that-died")
        first = db.session.scalars(
            select(Item.id).where(Item.run_id == run_id).order_by(Item.id).limit(sent)
        ).all()
        db.session.execute(update(Item).where(Item.id.in_(first)).values(status=ITEM_RUNNING))
        db.session.commit()


def after_the_lease(app, fn):
    with app.app_context(), freeze_time(utcnow() + timedelta(seconds=LEASE + 5)):
        return fn()


def audited(app, action: str) -> list[tuple[str, str, dict]]:
    with app.app_context():
        rows = db.session.scalars(
            select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)
        )
        return [(e.actor, e.outcome, e.details) for e in rows]


def test_a_run_whose_process_died_is_taken_over_and_nothing_is_sent_twice(app, scim):
    with FaultProxy(scim.root_url) as proxy, world_on(app, scim, proxy) as world:
        run_id = queued_run(app, world, 5)
        # The dead process's first two creates reached Workato; the database never heard.
        for n in range(2):
            with app.app_context():
                user = db.session.scalars(
                    select(Item).where(Item.run_id == run_id).order_by(Item.id).offset(n)
                ).first()
            world.post_user(user.desired)
        died_mid_run(app, run_id, sent=2)

        with app.app_context():
            assert takeover.take_over(start=False) is None  # the lease has not passed
        taken = after_the_lease(app, lambda: takeover.take_over(start=False))
        assert taken is not None and taken.id == run_id
        with app.app_context():
            assert (runs.get(run_id).status, runs.get(run_id).takeovers) == ("queued", 1)
            before = proxy.seen("POST")
            runner.process(run_id)
        finished = run_document(app, run_id)
        assert len(world.workato_users()) == 5

    assert finished["status"] == "succeeded" and finished["succeeded"] == 5
    # The two the dead process sent were re-checked and found; only three creates went out.
    assert proxy.seen("POST") - before == 3
    assert audited(app, "sync.run.takeover") == [
        ("takeover", "success", {"run": run_id, "takeover": 1})
    ]


def test_after_three_takeovers_the_run_stops_instead_of_looping(app, scim):
    with FaultProxy(scim.root_url) as proxy, world_on(app, scim, proxy) as world:
        run_id = queued_run(app, world, 2)
        for expected in (1, 2, 3):
            died_mid_run(app, run_id, sent=0)
            taken = after_the_lease(app, lambda: takeover.take_over(start=False))
            assert taken is not None
            with app.app_context():
                assert runs.get(run_id).takeovers == expected
        died_mid_run(app, run_id, sent=0)
        assert after_the_lease(app, lambda: takeover.take_over(start=False)) is None

        with app.app_context():
            run = runs.get(run_id)
            assert run.status == "stopped" and run.active is None
            assert run.message.startswith("Its process stopped 4 times")
        assert proxy.seen("POST") == 0
        assert [o for _, o, _ in audited(app, "sync.run.takeover")] == [
            "success",
            "success",
            "success",
            "refused",
        ]
        # An admin's Resume starts the count afresh.
        with app.app_context():
            from dashboard.sync import service

            service.resume(run_id, "admin@example.com", start=False)
            assert runs.get(run_id).takeovers == 0


def test_a_stopping_process_hands_its_run_over_at_once(make_app, scim):
    """The write in flight finishes and is recorded; the run is queued again at once (no
    lease to wait out); another process finishes it; everyone is created once."""
    # One writer: nothing else is sent while the first create is held.
    app = make_app(**FAST, DASHBOARD_SYNC_RATE=0, DASHBOARD_SYNC_CONCURRENCY=1)
    with FaultProxy(scim.root_url) as proxy, world_on(app, scim, proxy) as world:
        run_id = queued_run(app, world, 6)
        held = proxy.hold_matching("POST", r"/Users$")
        first_owner = threading.Thread(target=_work, args=(app, run_id, "stopping-process"))
        first_owner.start()
        assert held.arrived.wait(30)
        handover.begin()  # SIGTERM, or the web process exiting
        held.release.set()
        first_owner.join(30)
        assert not first_owner.is_alive()

        with app.app_context():
            run = runs.get(run_id)
            assert (run.status, run.owner, run.active) == ("queued", None, 1)
            done = db.session.scalar(
                select(func.count()).where(Item.run_id == run_id, Item.status == "succeeded")
            )
            assert done == 1  # the write in flight was recorded; nothing after it was sent
            assert runs.next_queued() == run_id  # a worker's next look takes it
        handover.reset()  # another process, not stopping
        with app.app_context():
            runner.process(run_id, "another-process")
        finished = run_document(app, run_id)
        assert len(world.workato_users()) == 6

    assert finished["status"] == "succeeded" and finished["succeeded"] == 6
    assert proxy.seen("POST") == 6
    (_actor, outcome, details) = audited(app, "sync.run.handed_over")[0]
    assert outcome == "success" and details["owner"] == "stopping-process"


def _work(app, run_id: int, owner: str) -> None:
    with app.app_context():
        runner.process(run_id, owner)
        db.session.remove()


def test_a_run_an_admin_stopped_is_not_taken_over(app, scim):
    """Cancelled or stopped runs wait for an admin; only the lease's interruptions are
    taken over."""
    with FaultProxy(scim.root_url) as proxy, world_on(app, scim, proxy) as world:
        run_id = queued_run(app, world, 2)
        with app.app_context():
            from dashboard.sync import service

            service.cancel(run_id, "admin@example.com")
        assert after_the_lease(app, lambda: takeover.take_over(start=False)) is None
        with app.app_context():
            assert db.session.get(Run, run_id).status == "cancelled"
        assert proxy.seen("POST") == 0
