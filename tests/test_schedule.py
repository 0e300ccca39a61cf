"""The scheduled reconcile (issue 15): once per interval, through the same planner, guard and
runner as a click, audited as `schedule`; with DASHBOARD_RECONCILE_APPLY=safe it applies
what the planner decides, never an orphan, and nothing when the suspension guard trips.

Against the OneLogin simulator and scim2-server (tests/support/sync_world.py)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from dashboard.audit.models import AuditEntry
from dashboard.extensions import db
from dashboard.schedule import service as schedule
from dashboard.schedule.models import ScheduledReconcile
from dashboard.sync import runner, runs, service
from dashboard.timeutil import utcnow
from tests.support.sync_world import ACTOR, World, roles_of

EVERY = 60
SETTINGS = {
    "DASHBOARD_SYNC_EXECUTOR": "worker",  # the test works each queued run itself
    "DASHBOARD_SYNC_RATE": 0,
    "DASHBOARD_SYNC_BACKOFF_SECONDS": 0.01,
    "DASHBOARD_RECONCILE_EVERY": EVERY,
}
ADA, ALAN = "ada.lovelace@example.com", "alan.turing@example.com"
OWNER = "test-process"


def tick(app, now=None) -> ScheduledReconcile | None:
    with app.app_context():
        row = schedule.tick(OWNER, now)
        if row is not None:
            db.session.refresh(row)
            db.session.expunge(row)
        return row


def work_queued(app) -> None:
    """What `flask sync worker` does with the run a scheduled apply queued."""
    with app.app_context():
        run_id = runs.next_queued()
        assert run_id is not None, "the scheduled apply queued no run"
        runner.process(run_id)


def scheduled_entries(app) -> list[tuple[str, str, str]]:
    with app.app_context():
        rows = db.session.scalars(
            select(AuditEntry).where(AuditEntry.actor == "schedule").order_by(AuditEntry.id)
        )
        return [(e.action, e.outcome, e.details.get("result", "")) for e in rows]


def reconciles(app) -> list[str]:
    with app.app_context():
        rows = db.session.scalars(select(ScheduledReconcile).order_by(ScheduledReconcile.due_at))
        return [r.outcome for r in rows]


def test_off_by_default_it_plans_records_and_leaves_the_changes_to_an_admin(make_app):
    """DASHBOARD_RECONCILE_APPLY=off: the plan is made and recorded as a preview an admin
    can apply; nothing reaches Workato; a second tick in the same interval does nothing, and
    the next interval plans again."""
    app = make_app(**SETTINGS)
    with World.small(app) as world:
        world.person("Ada", "Lovelace", workato_role="Analyst")
        world.person("Alan", "Turing", workato_role="Operator")

        row = tick(app)
        assert row is not None and row.outcome == "planned"
        assert row.counts["create"] == 2
        assert "Found 2 create; left for an admin" in row.message
        assert world.workato_users() == {}
        with app.app_context():
            assert runs.get(row.run_id).status == "planned"  # the Sync page's preview
        assert scheduled_entries(app) == [
            ("sync.plan", "success", ""),
            ("sync.schedule", "success", "planned"),
        ]

        assert tick(app) is None  # the same interval: no second plan
        assert tick(app, utcnow() + timedelta(seconds=EVERY)).outcome == "planned"
        assert reconciles(app) == ["planned", "planned"]


def test_safe_applies_what_the_planner_decides_and_never_touches_an_orphan(make_app):
    """A role changed in OneLogin reaches Workato with nobody clicking; a Workato user
    OneLogin does not know stays as it is."""
    app = make_app(**SETTINGS, DASHBOARD_RECONCILE_APPLY="safe")
    with World.small(app) as world:
        ada = world.person("Ada", "Lovelace", workato_role="Analyst")
        world.add_workato_user("stranger@example.com", workato_role="Admin")

        first = tick(app)
        assert first.outcome == "applied" and first.counts["orphan"] == 1
        work_queued(app)
        assert roles_of(world.workato_user(ADA))["workato_role"] == "Analyst"

        world.tenant.set_custom_attributes(ada.id, {"workato_role": "Admin"})
        second = tick(app, utcnow() + timedelta(seconds=EVERY))
        assert second.outcome == "applied" and second.counts["update"] == 1
        work_queued(app)
        assert roles_of(world.workato_user(ADA))["workato_role"] == "Admin"
        assert world.workato_user("stranger@example.com")["active"] is True

        with app.app_context():
            run = runs.get(second.run_id)
            assert (run.created_by, run.started_by, run.status) == (
                "schedule",
                "schedule",
                "succeeded",
            )
        assert ("sync.run.queued", "success", "") in scheduled_entries(app)

        third = tick(app, utcnow() + timedelta(seconds=2 * EVERY))
        assert third.outcome == "in_sync" and third.message.startswith("Everyone is in sync")


def test_safe_applies_nothing_when_the_suspension_guard_trips(make_app):
    """More suspensions than DASHBOARD_SYNC_SUSPEND_GUARD_COUNT: the plan waits for an admin
    on the Sync page; no one is suspended."""
    app = make_app(
        **SETTINGS,
        DASHBOARD_RECONCILE_APPLY="safe",
        DASHBOARD_SYNC_SUSPEND_GUARD_COUNT=0,
        DASHBOARD_SYNC_SUSPEND_GUARD_SHARE=1.0,
    )
    with World.small(app) as world:
        ada = world.person("Ada", "Lovelace", workato_role="Analyst")
        tick(app)
        work_queued(app)
        world.revoke(ada.id)  # a leaver: the planner suspends her

        row = tick(app, utcnow() + timedelta(seconds=EVERY))
        assert row.outcome == "guard" and row.counts["suspend"] == 1
        assert "Not applied: This plan suspends 1 users in Workato" in row.message
        assert world.workato_user(ADA)["active"] is True
        with app.app_context():
            assert runs.get(row.run_id).status == "planned"
            assert runs.next_queued() is None
        assert scheduled_entries(app)[-1] == ("sync.schedule", "refused", "guard")


def test_it_waits_while_another_run_is_active_then_plans_in_the_same_interval(make_app):
    app = make_app(**SETTINGS)
    with World.small(app) as world:
        world.person("Ada", "Lovelace", workato_role="Analyst")
        with app.app_context():
            run, _ = service.make_plan(ACTOR)
            service.apply(run.id, ACTOR, start=False)  # queued: a worker has yet to take it

        assert tick(app) is None
        assert reconciles(app) == []
        with app.app_context():
            assert schedule.status().waiting_for.id == run.id

        work_queued(app)
        row = tick(app)
        assert row is not None and row.outcome == "in_sync"


def test_a_connection_failure_is_recorded_and_marks_the_connection_down(make_app):
    """A wrong SCIM token: the reconcile fails saying so, and the connection shows as failing
    (what the Overview, the metrics and the alerts read)."""
    app = make_app(**SETTINGS)
    with World.small(app, token="the-right-token-0123456789") as world:
        world.person("Ada", "Lovelace", workato_role="Analyst")
        from dashboard.connections import service as connections

        with app.app_context():
            connections.save("scim", actor=ACTOR, base_url=world.scim_url, secret="w" * 32)
        row = tick(app)
        assert row.outcome == "failed"
        assert "token" in row.message.lower()
        with app.app_context():
            scim = connections.get("scim")
            assert scim.last_test_ok is False and "token" in scim.last_test_message.lower()
        assert scheduled_entries(app)[-1] == ("sync.schedule", "failed", "failed")


@pytest.mark.parametrize("every", [0])
def test_zero_turns_it_off(make_app, every):
    app = make_app(**{**SETTINGS, "DASHBOARD_RECONCILE_EVERY": every})
    with World.small(app) as world:
        world.person("Ada", "Lovelace", workato_role="Analyst")
        assert tick(app) is None
        with app.app_context():
            assert schedule.status().next_at is None
        assert reconciles(app) == []


def test_the_next_time_follows_the_interval(make_app):
    app = make_app(**SETTINGS)
    with World.small(app) as world:
        world.person("Ada", "Lovelace", workato_role="Analyst")
        row = tick(app)
        with app.app_context():
            status = schedule.status()
        assert status.last.id == row.id
        assert status.next_at == row.due_at + timedelta(seconds=EVERY)
        assert row.due_at.timestamp() % EVERY == 0


@pytest.fixture
def app(make_app):
    return make_app(**SETTINGS)


def test_the_sync_page_shows_the_setting_the_next_time_and_the_last_result(app, admin_client):
    with World.small(app) as world:
        world.person("Ada", "Lovelace", workato_role="Analyst")
        page = admin_client.get("/sync").get_data(as_text=True)
        assert "Scheduled reconcile" in page and "Every 1 min" in page
        assert "No scheduled reconcile has run yet." in page

        row = tick(app)
        page = admin_client.get("/sync").get_data(as_text=True)
        next_at = (row.due_at + timedelta(seconds=EVERY)).strftime("%Y-%m-%d %H:%M:%S")
        assert "Next: <time datetime=" in page and f">{next_at}</time> UTC" in page
        assert "Changes left for an admin" in page
        assert "Found 1 create; left for an admin to apply" in page
        assert f'href="/sync/runs/{row.run_id}"' in page


def test_nothing_is_claimed_before_onelogin_and_scim_are_connected(app, admin_client):
    """A new install is not a failed reconcile every interval: it waits, and says for what."""
    assert tick(app) is None
    assert reconciles(app) == []
    page = admin_client.get("/sync").get_data(as_text=True)
    assert "Next: once the OneLogin API and the Workato SCIM API are saved on" in page


def test_an_interval_waits_while_the_last_reconcile_is_still_planning(app):
    """A reconcile that runs past its interval (a slow OneLogin): the next one would replace
    its preview before it is applied, so it waits, then plans in its own interval."""
    with World.small(app) as world:
        world.person("Ada", "Lovelace", workato_role="Analyst")
        later = utcnow() + timedelta(seconds=EVERY)
        with app.app_context():
            slow = ScheduledReconcile(
                due_at=schedule.interval_start(utcnow(), EVERY),
                every=EVERY,
                apply="safe",
                claimed_by="another-process",
                started_at=utcnow(),
                counts={},
            )
            db.session.add(slow)
            db.session.commit()
            slow_id = slow.id

        assert tick(app, later) is None
        with app.app_context():
            db.session.get(ScheduledReconcile, slow_id).outcome = "in_sync"
            db.session.commit()
        assert tick(app, later).outcome == "planned"
