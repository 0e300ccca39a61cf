"""GET /metrics: Prometheus text computed from the database at scrape time (people per
state, the last run and reconcile, each connection's health, the audit trail's size), read
with the metrics token or by anyone signed in, and a 401 for everyone else."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest
from freezegun import freeze_time
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select

from dashboard import audit
from dashboard.audit import retention
from dashboard.auth.models import LoginSession
from dashboard.connections import service as connections
from dashboard.connections.models import ONELOGIN, SCIM, WORKATO_API
from dashboard.extensions import db
from dashboard.schedule.models import APPLIED, FAILED, IN_SYNC, ScheduledReconcile
from dashboard.sync import runner, service
from dashboard.sync.models import FAILED as RUN_FAILED
from dashboard.sync.models import ONE_USER, SUCCEEDED, SYNC, Run
from dashboard.sync.planner import STATES
from dashboard.timeutil import utcnow
from tests.support.onelogin import refusing_port
from tests.support.rows import count_rows
from tests.support.sync_world import ACTOR, World

TOKEN = "metrics-token-0123456789abcdef"
BEARER = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def app(make_app):
    return make_app(
        DASHBOARD_METRICS_TOKEN=TOKEN,
        DASHBOARD_SYNC_EXECUTOR="worker",
        DASHBOARD_SYNC_RATE=0,
        DASHBOARD_SYNC_SUSPEND_GUARD_SHARE=1.0,  # a tiny workspace suspends a large share
        DASHBOARD_RECONCILE_EVERY="15m",
    )


def scrape(client, headers: dict | None = None) -> dict[tuple, float]:
    """The scrape parsed as Prometheus reads it: {(name, (label, value)...): value}."""
    response = client.get("/metrics", headers=BEARER if headers is None else headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.content_type.startswith("text/plain; version=0.0.4")
    found = {}
    for family in text_string_to_metric_families(response.get_data(as_text=True)):
        for sample in family.samples:
            found[(sample.name, *sorted(sample.labels.items()))] = sample.value
    return found


def people(metrics: dict) -> dict[str, float]:
    return {
        key[1][1]: value
        for key, value in metrics.items()
        if key[0] == "dashboard_people" and key[1][0] == "state"
    }


def up(metrics: dict, kind: str) -> float:
    return metrics[("dashboard_connection_up", ("connection", kind))]


def is_nan(value: float) -> bool:
    return math.isnan(value)


@pytest.fixture
def world(app):
    """Six people in every interesting state, after a preview (nothing sent yet)."""
    with World.small(app) as world:
        world.person("Ada", "Lovelace", workato_role="Admin")  # not provisioned
        world.person("Alan", "Turing", workato_role="Operator")
        world.add_workato_user("alan.turing@example.com", workato_role="Analyst")  # drift
        world.person("Grace", "Hopper", status=2, workato_role="Analyst")
        world.add_workato_user("grace.hopper@example.com", workato_role="Analyst")  # danger
        world.person("Hedy", "Lamarr", app=False, workato_role="Analyst")
        world.add_workato_user("hedy.lamarr@example.com", workato_role="Analyst")  # orphan
        world.person("Katherine", "Johnson", workato_role="Admin")
        world.add_workato_user("katherine.johnson@example.com", workato_role="Admin")  # in sync
        world.add_workato_user("workspace.owner@example.com", workato_role="Admin")  # orphan
        with app.app_context():
            service.make_plan(ACTOR)
        yield world


# --- what a scrape says ----------------------------------------------------------------


def test_before_anything_happened_every_series_is_there_with_nothing_to_report(client, app):
    metrics = scrape(client)
    assert people(metrics) == {state: 0 for state in STATES}
    assert metrics[("dashboard_people_needing_attention",)] == 0
    assert metrics[("dashboard_last_run_finished_timestamp_seconds",)] == 0
    assert is_nan(metrics[("dashboard_last_run_success",)])  # no run: neither 1 nor 0
    assert metrics[("dashboard_last_reconcile_success_timestamp_seconds",)] == 0
    for kind in (ONELOGIN, SCIM, WORKATO_API):
        assert is_nan(up(metrics, kind))  # not configured: not "down"
        assert metrics[("dashboard_connection_configured", ("connection", kind))] == 0
    assert metrics[("dashboard_scim_writes_enabled",)] == 0
    assert metrics[("dashboard_run_active",)] == 0
    assert metrics[("dashboard_reconcile_interval_seconds",)] == 900
    # Nothing reconciled this interval yet: the next one is due now.
    next_at = metrics[("dashboard_reconcile_next_timestamp_seconds",)]
    assert abs(next_at - utcnow().timestamp()) < 60
    assert metrics[("dashboard_audit_entries",)] == count_rows(app, "audit")


def test_after_a_preview_people_are_counted_by_state_and_the_flagged_ones_need_attention(
    client, world
):
    metrics = scrape(client)
    assert people(metrics) == {
        "in_sync": 1,  # Katherine
        "drift": 2,  # Alan's role; Grace active in Workato though suspended in OneLogin
        "not_provisioned": 1,  # Ada
        "suspended": 0,
        "pending": 0,
        "failed": 0,
        "orphaned": 2,  # Hedy, the workspace owner
    }
    # Grace, active though suspended; Hedy, a Workato user OneLogin knows without the app.
    assert metrics[("dashboard_people_needing_attention",)] == 2
    # A preview is not a run, but it read both sides, so both connections answered.
    assert metrics[("dashboard_last_run_finished_timestamp_seconds",)] == 0
    assert up(metrics, ONELOGIN) == 1 and up(metrics, SCIM) == 1
    assert is_nan(up(metrics, WORKATO_API))
    assert metrics[("dashboard_scim_writes_enabled",)] == 1
    read_at = metrics[("dashboard_people_read_timestamp_seconds",)]
    assert abs(read_at - utcnow().timestamp()) < 60


def test_an_applied_run_is_the_last_run_and_the_last_reconcile(client, app, world):
    with app.app_context():
        preview = db.session.scalars(select(Run)).one()
        service.apply(preview.id, ACTOR, None, start=False)
        runner.process(preview.id)
        finished = db.session.get(Run, preview.id)
        assert finished.status == SUCCEEDED
        finished_at = finished.finished_at.timestamp()

    metrics = scrape(client)

    assert metrics[("dashboard_last_run_success",)] == 1
    assert metrics[("dashboard_last_run_finished_timestamp_seconds",)] == finished_at
    assert metrics[("dashboard_last_reconcile_success_timestamp_seconds",)] == finished_at
    assert people(metrics)["in_sync"] == 3 and people(metrics)["suspended"] == 1
    assert metrics[("dashboard_people_needing_attention",)] == 1  # Grace suspended; Hedy left


def test_a_later_failed_run_turns_success_to_0_but_a_one_user_provision_does_not_count(client, app):
    now = utcnow()
    with app.app_context():
        db.session.add_all(
            [
                finished_run(SYNC, SUCCEEDED, now - timedelta(hours=2)),
                finished_run(SYNC, RUN_FAILED, now - timedelta(hours=1)),
                finished_run(ONE_USER, SUCCEEDED, now - timedelta(minutes=5)),
            ]
        )
        db.session.commit()

    metrics = scrape(client)

    assert metrics[("dashboard_last_run_success",)] == 0
    last = metrics[("dashboard_last_run_finished_timestamp_seconds",)]
    assert last == (now - timedelta(hours=1)).timestamp()
    # The last reconcile that completed is still the sync that succeeded.
    reconciled = metrics[("dashboard_last_reconcile_success_timestamp_seconds",)]
    assert reconciled == (now - timedelta(hours=2)).timestamp()


def test_the_last_reconcile_is_a_scheduled_plan_that_completed_when_it_is_later(client, app):
    now = utcnow()
    with app.app_context():
        db.session.add_all(
            [
                finished_run(SYNC, SUCCEEDED, now - timedelta(hours=3)),
                scheduled(now - timedelta(hours=2), APPLIED),
                scheduled(now - timedelta(hours=1), IN_SYNC),
                scheduled(now - timedelta(minutes=1), FAILED),  # did not complete
            ]
        )
        db.session.commit()

    metrics = scrape(client)

    reconciled = metrics[("dashboard_last_reconcile_success_timestamp_seconds",)]
    assert reconciled == (now - timedelta(hours=1)).timestamp()


def test_once_this_intervals_reconcile_is_made_the_next_is_due_at_the_next_interval(client, app):
    now = datetime(2026, 12, 7, 10, 20, tzinfo=UTC)  # every 15m: 10:15 and 10:30
    with freeze_time(now):
        with app.app_context():
            db.session.add(scheduled(datetime(2026, 12, 7, 10, 15, tzinfo=UTC), IN_SYNC))
            db.session.commit()
        metrics = scrape(client)
    next_at = datetime(2026, 12, 7, 10, 30, tzinfo=UTC).timestamp()
    assert metrics[("dashboard_reconcile_next_timestamp_seconds",)] == next_at


class TestScheduleOff:
    @pytest.fixture
    def app(self, make_app):
        return make_app(DASHBOARD_METRICS_TOKEN=TOKEN, DASHBOARD_RECONCILE_EVERY="0")

    def test_no_reconcile_is_due(self, client):
        metrics = scrape(client)
        assert metrics[("dashboard_reconcile_interval_seconds",)] == 0
        assert metrics[("dashboard_reconcile_next_timestamp_seconds",)] == 0


def test_a_connection_that_refuses_is_down_and_when_it_was_checked_is_told(client, app, world):
    with refusing_port() as nowhere, app.app_context():
        connections.save(WORKATO_API, actor=ACTOR, base_url=nowhere, secret="x" * 20)
        before = scrape(client)
        assert is_nan(up(before, WORKATO_API))  # saved, not checked yet
        assert before[("dashboard_connection_configured", ("connection", WORKATO_API))] == 1
        result = connections.try_connection(WORKATO_API, ACTOR)
        assert not result.ok

    metrics = scrape(client)

    assert up(metrics, WORKATO_API) == 0
    assert up(metrics, ONELOGIN) == 1 and up(metrics, SCIM) == 1
    checked = metrics[("dashboard_connection_checked_timestamp_seconds", ("connection", "scim"))]
    assert abs(checked - utcnow().timestamp()) < 60
    assert (
        metrics[("dashboard_connection_checked_timestamp_seconds", ("connection", WORKATO_API))]
        == result.checked_at.timestamp()
    )


def test_disabling_scim_is_reported(client, app, world):
    with app.app_context():
        connections.disable_scim(ACTOR, clear_token=False)
    metrics = scrape(client)
    assert metrics[("dashboard_scim_writes_enabled",)] == 0
    assert up(metrics, SCIM) == 1  # it still answered the last time it was asked


def test_audit_entries_are_the_rows_in_the_trail_also_after_a_prune(client, app):
    with freeze_time(utcnow() - timedelta(days=40)), app.app_context():
        for _ in range(4):
            audit.record("auth.sign_in", actor=ACTOR, outcome="success")
        db.session.commit()
    with app.app_context():
        for _ in range(3):
            audit.record("auth.sign_in", actor=ACTOR, outcome="success")
        db.session.commit()
    assert scrape(client)[("dashboard_audit_entries",)] == count_rows(app, "audit") == 7

    with app.app_context():
        assert retention.prune(retention.cutoff(30), ACTOR).count == 4

    assert scrape(client)[("dashboard_audit_entries",)] == count_rows(app, "audit") == 4


def finished_run(kind: str, status: str, at) -> Run:
    return Run(kind=kind, status=status, created_by=ACTOR, started_at=at, finished_at=at)


def scheduled(at, outcome: str) -> ScheduledReconcile:
    return ScheduledReconcile(
        due_at=at,
        every=900,
        apply="off",
        claimed_by="test",
        started_at=at,
        finished_at=at,
        outcome=outcome,
    )


# --- who may read it -------------------------------------------------------------------


def test_without_the_token_or_a_session_the_answer_is_401_asking_for_a_bearer(client):
    for headers in (
        {},
        {"Authorization": "Bearer wrong-token"},
        {"Authorization": f"Basic {TOKEN}"},
        {"Authorization": "Bearer"},
    ):
        response = client.get("/metrics", headers=headers)
        assert response.status_code == 401, headers  # not a redirect to sign in
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert TOKEN not in response.get_data(as_text=True)
        assert "dashboard_people" not in response.get_data(as_text=True)


def test_the_token_is_read_whatever_the_scheme_case(client):
    assert client.get("/metrics", headers={"Authorization": f"bearer {TOKEN}"}).status_code == 200


def test_a_signed_in_viewer_reads_it_without_a_token(viewer_client):
    metrics = scrape(viewer_client, headers={"Authorization": "Bearer wrong-token"})
    assert ("dashboard_audit_entries",) in metrics


class TestNoTokenConfigured:
    @pytest.fixture
    def app(self, make_app):
        return make_app()

    def test_no_bearer_token_is_accepted(self, client):
        for token in (TOKEN, "", "None"):
            response = client.get("/metrics", headers={"Authorization": f"Bearer {token}"})
            assert response.status_code == 401
            assert response.headers["WWW-Authenticate"].startswith("Bearer")

    def test_a_signed_in_admin_reads_it(self, admin_client):
        assert ("dashboard_audit_entries",) in scrape(admin_client, headers={})


def test_a_signed_in_scrape_does_not_keep_an_idle_session_alive(admin_client, app):
    """A browser tab left on /metrics (or a scraper given a session cookie) is not someone
    using the dashboard: the session still goes idle."""
    with app.app_context():
        login = db.session.scalars(select(LoginSession)).one()
        login.last_seen_at = seen = utcnow() - timedelta(minutes=29)
        db.session.commit()
    scrape(admin_client, headers={})
    with app.app_context():
        assert db.session.scalars(select(LoginSession)).one().last_seen_at == seen
