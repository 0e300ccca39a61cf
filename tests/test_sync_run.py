"""Full runs against the OneLogin simulator and a real scim2-server process: provisioning,
drift, suspension both ways, orphans, failures (429, 5xx, 401, a failing share), one run at
a time, and a worker killed mid-run and resumed."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta

import pytest
from freezegun import freeze_time
from sqlalchemy import func, select

from dashboard.connections import service as connections
from dashboard.connections.models import SCIM
from dashboard.extensions import db
from dashboard.person import Person
from dashboard.sync import reports, runner, runs, service
from dashboard.sync.models import ITEM_PENDING, ITEM_SUCCEEDED, Item, Run
from dashboard.timeutil import utcnow
from tests.support.fault_proxy import FaultProxy
from tests.support.scim_server import ScimServer
from tests.support.sync_world import ACTOR, World, roles_of
from tests.support.workers import start_worker

FAST = {
    "DASHBOARD_SYNC_EXECUTOR": "worker",  # the test works the run itself
    "DASHBOARD_SYNC_BACKOFF_SECONDS": 0.01,
    "DASHBOARD_SYNC_RATE": 0,
    "DASHBOARD_SYNC_SUSPEND_GUARD_SHARE": 1.0,  # these tiny workspaces suspend large shares
}


@pytest.fixture
def scim() -> Iterator[ScimServer]:
    with ScimServer() as server:
        yield server


@pytest.fixture
def app(make_app):
    return make_app(**FAST)


def world_on(app, scim: ScimServer, proxy: FaultProxy | None = None) -> World:
    root = proxy.root_url if proxy else scim.root_url
    return World.small(app, scim_root=root, token=scim.token)


def sync(app, confirm: int | None = None) -> tuple[dict, dict | None]:
    """Plan, apply and work the run here; (the plan's counts, the run's JSON or None)."""
    with app.app_context():
        run, plan = service.make_plan(ACTOR)
        if not run.total:
            return plan.counts, None
        service.apply(run.id, ACTOR, confirm, start=False)
        runner.process(run.id)
        return plan.counts, reports.run_json(runs.get(run.id))


def people(app) -> dict[str, Person]:
    with app.app_context():
        return {p.key: p for p in db.session.scalars(select(Person))}


def test_first_provision_brings_every_granted_user_into_workato(app, scim):
    with world_on(app, scim) as world:
        world.person("Ada", "Lovelace", workato_role="Admin", workato_role_prod="Analyst")
        world.person("Alan", "Turing", workato_role="Operator")
        world.person("Grace", "Hopper", status=2, workato_role="Analyst")  # suspended
        world.person("Hedy", "Lamarr", app=False, workato_role="Analyst")  # no app
        world.add_workato_user("workspace.owner@example.com", workato_role="Admin")

        counts, run = sync(app)

        assert counts == {
            "create": 2,
            "update": 0,
            "suspend": 0,
            "reactivate": 0,
            "noop": 1,
            "orphan": 1,
        }
        assert run["status"] == "succeeded" and run["failed"] == []
        workato = world.workato_users()
        assert roles_of(workato["ada.lovelace@example.com"]) == {
            "workato_role": "Admin",
            "workato_role_prod": "Analyst",
        }
        assert workato["alan.turing@example.com"]["active"] is True
        # Suspended and never provisioned: not created; no app: not created.
        assert "grace.hopper@example.com" not in workato
        assert "hedy.lamarr@example.com" not in workato
        assert workato["workspace.owner@example.com"]["active"] is True  # the orphan: untouched
        states = {k: p.state for k, p in people(app).items()}
        assert states["ada.lovelace@example.com"] == "in_sync"
        assert states["grace.hopper@example.com"] == "suspended"
        assert states["workspace.owner@example.com"] == "orphaned"

        again, nothing = sync(app)
        assert nothing is None and again["noop"] == 3 and again["orphan"] == 1


def test_drift_sends_only_the_changed_role(app, scim):
    with world_on(app, scim) as world:
        ada = world.person("Ada", "Lovelace", workato_role="Admin", workato_role_test="Analyst")
        sync(app)
        world.tenant.set_custom_attributes(ada.id, {"workato_role": "Operator"})

        with app.app_context():
            run, plan = service.make_plan(ACTOR)
            run_id = run.id
            item = db.session.scalar(select(Item).where(Item.run_id == run_id))
        assert plan.counts["update"] == 1
        path = "urn:ietf:params:scim:schemas:workato:1.0:WorkatoRole:workato_role"
        assert item.changes == {path: ["Admin", "Operator"]}
        assert item.request["method"] == "PATCH"  # scim2-server announces PATCH
        assert item.request["body"]["Operations"] == [
            {"op": "replace", "path": path, "value": "Operator"}
        ]
        assert people(app)["ada.lovelace@example.com"].state == "drift"

        with app.app_context():
            service.apply(run_id, ACTOR, start=False)
            runner.process(run_id)
        assert roles_of(world.workato_user("ada.lovelace@example.com")) == {
            "workato_role": "Operator",
            "workato_role_test": "Analyst",
        }
        assert people(app)["ada.lovelace@example.com"].state == "in_sync"


def test_suspension_in_onelogin_suspends_and_reactivation_reactivates(app, scim):
    with world_on(app, scim) as world:
        ada = world.person("Ada", "Lovelace", workato_role="Admin")
        sync(app)

        world.tenant.users[ada.id].status = 2
        counts, run = sync(app)
        assert counts["suspend"] == 1 and run["status"] == "succeeded"
        assert world.workato_user("ada.lovelace@example.com")["active"] is False
        assert people(app)["ada.lovelace@example.com"].state == "suspended"

        world.tenant.users[ada.id].status = 1
        counts, run = sync(app)
        assert counts["reactivate"] == 1 and run["status"] == "succeeded"
        assert world.workato_user("ada.lovelace@example.com")["active"] is True


def test_losing_the_app_or_being_deleted_after_a_sync_suspends(app, scim):
    with world_on(app, scim) as world:
        ada = world.person("Ada", "Lovelace", workato_role="Admin")
        alan = world.person("Alan", "Turing", workato_role="Operator")
        sync(app)

        world.revoke(ada.id)
        del world.tenant.users[alan.id]
        with app.app_context():
            _run, plan = service.make_plan(ACTOR)
        dangers = {d.user_name: d.danger for d in plan.decisions if d.action == "suspend"}
        assert set(dangers) == {"ada.lovelace@example.com", "alan.turing@example.com"}
        assert "no longer grants the app" in dangers["ada.lovelace@example.com"]
        assert "deleted in OneLogin" in dangers["alan.turing@example.com"]

        counts, run = sync(app)
        assert counts["suspend"] == 2 and run["status"] == "succeeded"
        workato = world.workato_users()
        assert not workato["ada.lovelace@example.com"]["active"]
        assert not workato["alan.turing@example.com"]["active"]


def test_a_leaver_unknown_to_earlier_syncs_is_an_orphan_flagged_but_untouched(app, scim):
    with world_on(app, scim) as world:
        world.person("Noah", "Williams", app=False, workato_role="Operator")
        world.add_workato_user("noah.williams@example.com", workato_role="Operator")

        counts, run = sync(app)

        assert counts["orphan"] == 1 and run is None
        noah = people(app)["noah.williams@example.com"]
        assert noah.state == "orphaned" and noah.orphan_kind == "known"
        assert "possibly a leaver" in noah.danger
        assert world.workato_user("noah.williams@example.com")["active"] is True


def test_a_429_storm_is_waited_out_and_nothing_is_lost(make_app, scim):
    # Enough tries that even one writer meeting all eight 429s in a row still gets through:
    # which writer meets them is up to the thread scheduler.
    app = make_app(**FAST, DASHBOARD_SYNC_ATTEMPTS=9)
    with FaultProxy(scim.root_url) as proxy, world_on(app, scim, proxy) as world:
        for n in range(6):
            world.person("User", f"Number{'abcdef'[n]}", workato_role="Analyst")
        with app.app_context():
            run_id = service.make_plan(ACTOR)[0].id
            service.apply(run_id, ACTOR, start=False)
        posts_before = proxy.seen("POST")
        proxy.answer_next(8, 429, retry_after="0")
        with app.app_context():
            runner.process(run_id)
            document = reports.run_json(runs.get(run_id))
            attempts = db.session.scalar(select(func.sum(Item.attempts)))

        assert document["status"] == "succeeded"
        assert len(world.workato_users()) == 6
        # Each throttled create was sent again as it was (no re-check needed after a 429):
        # 8 answered by the storm, then one that reached Workato per user.
        assert proxy.seen("POST") - posts_before == 6 + 8
        assert attempts == 6 + 8


def test_a_5xx_burst_is_retried_after_a_re_check_and_nothing_is_created_twice(app, scim):
    with FaultProxy(scim.root_url) as proxy, world_on(app, scim, proxy) as world:
        for n in range(4):
            world.person("User", f"Number{'abcd'[n]}", workato_role="Analyst")
        with app.app_context():
            run_id = service.make_plan(ACTOR)[0].id
            service.apply(run_id, ACTOR, start=False)
        proxy.answer_next(3, 503)
        with app.app_context():
            runner.process(run_id)
            document = reports.run_json(runs.get(run_id))
            items = list(db.session.scalars(select(Item).where(Item.run_id == run_id)))

        assert document["status"] == "succeeded"
        assert sorted(world.workato_users()) == [f"user.number{c}@example.com" for c in "abcd"]
        assert sum(i.attempts for i in items) == 4 + 3
        assert all(i.status == ITEM_SUCCEEDED for i in items)


def test_a_rejected_token_stops_the_run_at_once(app, scim):
    with world_on(app, scim) as world:
        for n in range(12):
            world.person("User", f"Number{'abcdefghijkl'[n]}", workato_role="Analyst")
        with app.app_context():
            run_id = service.make_plan(ACTOR)[0].id
            connections.save(SCIM, actor=ACTOR, base_url=world.scim_url, secret="wrong-token")
            service.apply(run_id, ACTOR, start=False)
            runner.process(run_id)
            done = runs.get(run_id)
            pending = db.session.scalar(
                select(func.count()).where(Item.run_id == run_id, Item.status == ITEM_PENDING)
            )
        assert done.status == "stopped"
        assert "rejected the SCIM token" in done.message
        assert pending == 12  # refused, not applied: all left for a resume
        assert world.workato_users() == {}

        with app.app_context():
            connections.save(SCIM, actor=ACTOR, base_url=world.scim_url, secret=world.token)
            service.resume(run_id, ACTOR, start=False)
            runner.process(run_id)
            assert runs.get(run_id).status == "succeeded"
        assert len(world.workato_users()) == 12


def test_a_failing_share_above_the_threshold_stops_the_run(make_app, scim):
    app = make_app(**FAST, DASHBOARD_SYNC_CONCURRENCY=1)
    with FaultProxy(scim.root_url) as proxy, world_on(app, scim, proxy) as world:
        for n in range(20):
            world.person("User", f"Number{chr(97 + n)}", workato_role="Analyst")
        with app.app_context():
            run_id = service.make_plan(ACTOR)[0].id
            service.apply(run_id, ACTOR, start=False)
        proxy.answer_next(20, 400)
        with app.app_context():
            runner.process(run_id)
            document = reports.run_json(runs.get(run_id))
        assert document["status"] == "stopped"
        assert "more than the 25% allowed" in document["message"]
        assert len(document["failed"]) == 10 and document["pending"] == 10
        # Each failed item says what Workato answered, in words an admin can act on.
        assert {(f["http_status"], f["error"]) for f in document["failed"]} == {
            (400, "Workato SCIM API refused the request (400).")
        }


def test_cancelling_a_queued_run_sends_nothing_and_resume_finishes_it(make_app, scim):
    app = make_app(**FAST, DASHBOARD_SYNC_CONCURRENCY=1)
    with world_on(app, scim) as world:
        for n in range(5):
            world.person("User", f"Number{'abcde'[n]}", workato_role="Analyst")
        with app.app_context():
            run_id = service.make_plan(ACTOR)[0].id
            service.apply(run_id, ACTOR, start=False)
            assert people(app)["user.numbere@example.com"].state == "pending"
            service.cancel(run_id, ACTOR)
            assert runner.process(run_id) is None  # nothing left to claim
            cancelled = reports.run_json(runs.get(run_id))
            assert service.current_active() is None  # the slot is free at once
        assert cancelled["status"] == "cancelled" and cancelled["pending"] == 5
        assert world.workato_users() == {}
        assert people(app)["user.numbere@example.com"].state == "not_provisioned"

        with app.app_context():
            service.resume(run_id, ACTOR, start=False)
            runner.process(run_id)
            resumed = reports.run_json(runs.get(run_id))
        assert resumed["status"] == "succeeded" and resumed["succeeded"] == 5
        assert len(world.workato_users()) == 5


def test_cancelling_a_running_run_lets_the_write_in_flight_finish(make_app, scim):
    app = make_app(**FAST, DASHBOARD_SYNC_CONCURRENCY=1)
    with FaultProxy(scim.root_url) as proxy, world_on(app, scim, proxy) as world:
        for n in range(5):
            world.person("User", f"Number{'abcde'[n]}", workato_role="Analyst")
        with app.app_context():
            run_id = service.make_plan(ACTOR)[0].id
            service.apply(run_id, ACTOR, start=False)
        held = proxy.hold_after(1)  # the second create waits in the proxy

        def work() -> None:
            with app.app_context():
                runner.process(run_id)

        worker = threading.Thread(target=work)
        worker.start()
        assert held.arrived.wait(30)
        with app.app_context():
            service.cancel(run_id, ACTOR)
        held.release.set()
        worker.join(30)

        with app.app_context():
            cancelled = reports.run_json(runs.get(run_id))
        assert cancelled["status"] == "cancelled"
        assert cancelled["succeeded"] == 2 and cancelled["pending"] == 3
        assert len(world.workato_users()) == 2
        # Items marked ahead of the writer but never sent are pending again, not "outcome
        # unknown" (which a resume would re-check in Workato first).
        with app.app_context():
            statuses = db.session.scalars(select(Item.status).where(Item.run_id == run_id)).all()
        assert sorted(statuses) == ["pending"] * 3 + ["succeeded"] * 2
        assert people(app)["user.numbere@example.com"].state == "not_provisioned"


def test_two_simultaneous_starts_give_one_run(app, scim):
    with world_on(app, scim) as world:
        world.person("Ada", "Lovelace", workato_role="Admin")
        with app.app_context():
            first, _ = service.make_plan(ACTOR)
            second = Run(created_by=ACTOR, counts=first.counts, total=0)
            db.session.add(second)
            db.session.commit()
            ids = [first.id, second.id]
        barrier = threading.Barrier(2)
        outcomes: list[str] = []

        def start(run_id: int) -> None:
            with app.app_context():
                barrier.wait()
                try:
                    runs.activate(run_id, ACTOR)
                    db.session.commit()
                    outcomes.append("started")
                except runs.AlreadyRunning as exc:
                    outcomes.append(f"joined {exc.run.id}")

        threads = [threading.Thread(target=start, args=(i,)) for i in ids]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        assert sorted(outcomes)[1] == "started" and sorted(outcomes)[0].startswith("joined")
        with app.app_context():
            active = db.session.scalars(select(Run).where(Run.status == "queued")).all()
        assert len(active) == 1 and outcomes[0] in ("started", f"joined {active[0].id}")


def test_a_worker_killed_mid_run_is_resumed_without_creating_anyone_twice(make_app, scim):
    app = make_app(**FAST, DASHBOARD_SYNC_CONCURRENCY=1)
    with FaultProxy(scim.root_url, hold_timeout=60) as proxy, world_on(app, scim, proxy) as world:
        for n in range(6):
            world.person("User", f"Number{'abcdef'[n]}", workato_role="Analyst")
        with app.app_context():
            run_id = service.make_plan(ACTOR)[0].id
            service.apply(run_id, ACTOR, start=False)
        before = proxy.seen()
        held = proxy.hold_after(2)  # two creates go through, the third is held
        worker = start_worker(app, "--once")
        try:
            assert held.arrived.wait(60), worker.stderr.read() if worker.stderr else ""
            worker.kill()  # mid-request: the third create's outcome is unknown to us
            worker.wait(10)
        finally:
            if worker.stderr:
                worker.stderr.close()
        held.release.set()  # ... and Workato applies it after all
        assert held.forwarded.wait(30)
        assert proxy.seen() - before == 3

        with app.app_context():
            assert runs.get(run_id).status == "running"  # nobody knows it died yet
            with freeze_time(utcnow() + timedelta(minutes=5)):
                assert service.current_active() is None
            assert runs.get(run_id).status == "interrupted"
            service.resume(run_id, ACTOR, start=False)
            runner.process(run_id)
            document = reports.run_json(runs.get(run_id))
            notes = db.session.scalars(select(Item.note).where(Item.note.is_not(None))).all()

        assert document["status"] == "succeeded" and document["succeeded"] == 6
        assert sorted(world.workato_users()) == [f"user.number{c}@example.com" for c in "abcdef"]
        # Re-checked rather than sent again: one POST per user in all.
        assert sum(1 for method, _ in proxy.requests if method == "POST") == 6
        assert any("re-checked" in n for n in notes)


def test_the_checklist_says_whether_users_are_in_sync_from_the_last_plan(app, scim):
    from dashboard.setup import service as setup

    def users_in_sync():
        with app.app_context():
            return setup.run(["users_in_sync"])[0]

    with world_on(app, scim) as world:
        assert users_in_sync().state == "cannot_check"
        world.person("Ada", "Lovelace", workato_role="Admin")
        with app.app_context():
            service.make_plan(ACTOR)
        drifting = users_in_sync()
        assert drifting.state == "failing" and "1 not provisioned" in drifting.message
        sync(app)
        assert users_in_sync().state == "verified"


def test_a_preview_applied_minutes_later_is_not_taken_for_a_dead_run(make_app, scim):
    app = make_app(**{**FAST, "DASHBOARD_SYNC_EXECUTOR": "thread"})
    with world_on(app, scim) as world:
        world.person("Ada", "Lovelace", workato_role="Admin")
        with app.app_context():
            run_id = service.make_plan(ACTOR)[0].id
            with freeze_time(utcnow() + timedelta(minutes=10)):
                service.apply(run_id, ACTOR, start=False)
                active = service.current_active()
            assert active is not None and active.id == run_id
            assert runs.get(run_id).status == "queued"


def test_a_known_orphan_shows_its_onelogin_account_and_can_later_be_granted(app, scim):
    with world_on(app, scim) as world:
        noah = world.person("Noah", "Williams", app=False, status=2, workato_role="Operator")
        world.add_workato_user("noah.williams@example.com", workato_role="Operator")
        sync(app)
        orphan = people(app)["noah.williams@example.com"]
        assert (orphan.onelogin_id, orphan.onelogin_status) == (noah.id, 2)
        assert "(suspended in OneLogin)" in orphan.danger

        world.tenant.users[noah.id].status = 1
        world.grant(noah.id)
        counts, run = sync(app)
        assert counts["orphan"] == 0 and run is None  # matched: in sync, nothing to send
        assert people(app)["noah.williams@example.com"].state == "in_sync"


def test_a_user_renamed_in_onelogin_keeps_their_workato_account(app, scim):
    with world_on(app, scim) as world:
        ada = world.person("Ada", "Lovelace", workato_role="Admin")
        alan = world.person("Alan", "Turing", workato_role="Operator")
        sync(app)
        old_ids = {k: u["id"] for k, u in world.workato_users().items()}

        world.tenant.users[ada.id].email = "ada.byron@example.com"
        world.tenant.users[alan.id].email = "alan.m.turing@example.com"
        world.revoke(alan.id)  # renamed and removed from the app: still suspended
        counts, run = sync(app)

        assert counts["update"] == 1 and counts["suspend"] == 1 and counts["create"] == 0
        assert counts["orphan"] == 0 and run["status"] == "succeeded"
        workato = world.workato_users()
        assert set(workato) == {"ada.byron@example.com", "alan.turing@example.com"}
        assert workato["ada.byron@example.com"]["id"] == old_ids["ada.lovelace@example.com"]
        assert workato["ada.byron@example.com"]["active"] is True
        assert workato["alan.turing@example.com"]["active"] is False
