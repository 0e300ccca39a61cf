"""OneLogin's events and Workato's activity log imported into the audit trail: the demo
tenant's provisioning history against the OneLogin simulator, Workato's activity through its
API simulator; incremental, never twice, one failing source not stopping the other."""

from __future__ import annotations

import csv
import io
import re
import threading
from collections.abc import Iterator
from datetime import datetime

import pytest
from sqlalchemy import event, func, select

from dashboard import audit
from dashboard.audit import chain
from dashboard.audit.models import AuditEntry
from dashboard.connections import http
from dashboard.connections import service as connections
from dashboard.connections.models import WORKATO_API
from dashboard.extensions import db
from dashboard.history import imports
from dashboard.sandbox import workato_api
from dashboard.sandbox.onelogin_seed import WORKATO_APP_ID
from dashboard.sync import runner, service
from tests.support.forms import post
from tests.support.people import person_id
from tests.support.scim_server import serve_wsgi
from tests.support.sync_world import World

ADMIN = "ada.admin@example.com"
TOKEN = "workato-api-import-token"
JONAS = "jonas.weber@example.com"


@pytest.fixture
def app(make_app):
    return make_app(DASHBOARD_SYNC_EXECUTOR="worker", DASHBOARD_SYNC_RATE=0)


@pytest.fixture
def world(app) -> Iterator[World]:
    with World.demo(app) as world:
        with app.app_context():
            service.make_plan(ADMIN)  # the people the dashboard knows
        yield world


@pytest.fixture
def workato_url(app) -> Iterator[str]:
    simulator = workato_api.create_app(token=TOKEN, limit_per_minute=10**6)
    with serve_wsgi(simulator) as root:
        with app.app_context():
            connections.save(WORKATO_API, actor=ADMIN, base_url=root, secret=TOKEN)
        yield root


def imported(app, source: str) -> list[AuditEntry]:
    with app.app_context():
        found = list(
            db.session.scalars(
                select(AuditEntry).where(AuditEntry.source == source).order_by(AuditEntry.seq)
            )
        )
        db.session.expunge_all()
        return found


def expected_onelogin_events(world) -> list[dict]:
    return [
        e
        for e in world.tenant.events
        if e["event_type_id"] in imports.PROVISIONING_TYPES and e.get("app_id") == WORKATO_APP_ID
    ]


def test_onelogin_events_about_the_app_are_imported_as_they_happened(app, world):
    with app.app_context():
        report = imports.import_all(ADMIN)
    assert report.ok
    wanted = expected_onelogin_events(world)
    entries = imported(app, "onelogin")
    assert len(entries) == len(wanted) == report.sources[0].added > 100
    assert {e.external_id for e in entries} == {str(e["id"]) for e in wanted}
    # Jonas's story, as OneLogin told it: assigned the role by Maya, then provisioned.
    jonas = [e for e in entries if e.target_user == JONAS]
    assert [e.action for e in jonas] == [
        "onelogin.user_assigned_role",
        "onelogin.user_provisioned_in_app",
    ]
    assert jonas[0].actor == "Maya Chen" and jonas[0].details["role_name"] == "Workato Users"
    assert jonas[0].occurred_at.year == 2025  # when it happened in OneLogin, not now
    failed = [e for e in entries if e.action == "onelogin.user_provisioning_failed_in_app"]
    assert failed and all(e.outcome == "failed" for e in failed)
    with app.app_context():
        assert chain.verify().ok


def test_importing_again_adds_nothing_and_new_events_arrive(app, world):
    with app.app_context():
        imports.import_all(ADMIN)
    first = len(imported(app, "onelogin"))
    with app.app_context():
        again = imports.import_all(ADMIN)
    assert again.sources[0].added == 0 and len(imported(app, "onelogin")) == first

    jonas_id = next(u.id for u in world.tenant.users.values() if u.email == JONAS)
    world.tenant.add_event(53, user_id=jonas_id, user_name="Jonas Weber", app_id=WORKATO_APP_ID)
    with app.app_context():
        later = imports.import_all(ADMIN)
    assert later.sources[0].added == 1
    newest = imported(app, "onelogin")[-1]
    assert (newest.action, newest.target_user) == ("onelogin.user_suspended_in_app", JONAS)


def test_workato_activity_is_imported_once(app, world, workato_url):
    with app.app_context():
        report = imports.import_all(ADMIN)
    workato = {s.source: s for s in report.sources}["workato"]
    assert workato.configured and workato.added == len(workato_api.ACTIVITY)
    entries = imported(app, "workato")
    assert [e.action for e in entries] == [
        "workato.user_joined_team",
        "workato.collaborator_role_changed",
    ]
    assert entries[0].actor == "ada.admin@example.com"
    assert entries[1].details == {"resource": "Rita Reviewer", "role_name": "Recipe Reviewer"}
    with app.app_context():
        assert imports.import_all(ADMIN).sources[1].added == 0
    assert len(imported(app, "workato")) == len(workato_api.ACTIVITY)


def test_a_failing_source_is_said_and_the_other_still_imports(app, world, workato_url, monkeypatch):
    monkeypatch.setattr(http.RetryPolicy, "delay", lambda self, attempt, problem: 0.0)
    world.tenant.fail_next(503, times=20, path="/api/1/events")
    with app.app_context():
        report = imports.import_all(ADMIN)
        entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "audit.import"))
    onelogin, workato = report.sources
    assert not report.ok and "503" in onelogin.problem
    assert workato.added == len(workato_api.ACTIVITY)
    assert entry.outcome == "failed" and "503" in entry.details["onelogin"]
    assert imported(app, "onelogin") == []


def test_a_sync_run_imports_afterwards(app, world):
    with app.app_context():
        run, _plan = service.make_plan(ADMIN)
        service.apply(run.id, ADMIN, start=False)
        runner.process(run.id)
        count = db.session.scalar(
            select(func.count()).select_from(AuditEntry).where(AuditEntry.source == "onelogin")
        )
    assert count == len(expected_onelogin_events(world))


ENTRY = r'<dt>Entry</dt><dd>#(\d+)</dd>\s*<dt>Time \(UTC\)</dt><dd><time datetime="([^"]+)"'


def audit_pages(client, url: str) -> list[tuple[int, datetime, str]]:
    """(id, when it happened, action) of every entry on every page, following "Older
    entries"."""
    found = []
    while url:
        body = client.get(url).get_data(as_text=True)
        for row in re.findall(r"<tr>(.*?)</tr>", body, re.S):
            fields = re.search(ENTRY, row)
            if fields:
                action = re.search(r"<td><code>([\w.]+)</code></td>", row).group(1)
                found.append((int(fields[1]), datetime.fromisoformat(fields[2]), action))
        older = re.search(r'<a href="([^"]+)"[^>]*rel="next">Older entries', body)
        url = older.group(1).replace("&amp;", "&") if older else None
    return found


def test_history_imported_after_a_run_sits_below_the_run_in_its_place(app, world, admin_client):
    """A run imports OneLogin's history at its end, so its events are recorded after the
    run's entries; the Audit page shows them where they happened (in 2025), below the run,
    and between the dashboard's own entries of that time. Exports keep the chain's order."""
    jonas_id = next(u.id for u in world.tenant.users.values() if u.email == JONAS)
    told = sorted(
        datetime.fromisoformat(e["created_at"])
        for e in expected_onelogin_events(world)
        if e.get("user_id") == jonas_id
    )
    assert len(told) == 2  # assigned the role, then provisioned
    between = told[0] + (told[1] - told[0]) / 2
    with app.app_context():
        audit.record("roles.edit", actor=ADMIN, outcome="success", target_user=JONAS,
                     occurred_at=between)  # fmt: skip
        db.session.commit()
        run, _plan = service.make_plan(ADMIN)
        service.apply(run.id, ADMIN, start=False)
        runner.process(run.id)

    shown = audit_pages(admin_client, "/audit")
    onelogin = [ident for ident, _, action in shown if action.startswith("onelogin.")]
    ran = [ident for ident, _, action in shown if action.startswith("sync.")]
    assert len(onelogin) == len(expected_onelogin_events(world)) and ran
    assert min(onelogin) > max(ran)  # recorded after the run...
    places = {ident: n for n, (ident, _, _) in enumerate(shown)}
    assert max(places[i] for i in ran) < min(places[i] for i in onelogin)  # ...shown below it
    assert [at for _, at, _ in shown] == sorted((at for _, at, _ in shown), reverse=True)
    assert len(places) == len(shown)  # no entry twice

    jonas = audit_pages(admin_client, f"/audit?user={JONAS}")
    assert [action for _, _, action in jonas][-3:] == [
        "onelogin.user_provisioned_in_app",
        "roles.edit",  # the dashboard's own entry of that time, in its place
        "onelogin.user_assigned_role",
    ]
    assert all(action.startswith("sync.") for _, _, action in jonas[:-3])

    exported = csv.DictReader(io.StringIO(admin_client.get(f"/audit/export.csv?user={JONAS}").text))
    assert [int(row["id"]) for row in exported] == sorted(ident for ident, _, _ in jonas)


def test_the_user_page_timeline_shows_onelogins_events(app, world, admin_client):
    with app.app_context():
        imports.import_all(ADMIN)
    page = admin_client.get(f"/users/{person_id(app, JONAS)}").get_data(as_text=True)
    assert "onelogin.user_provisioned_in_app" in page and "onelogin.user_assigned_role" in page


def test_a_viewer_may_not_import(app, world, viewer_client):
    assert post(viewer_client, "/audit/import").status_code == 403
    assert imported(app, "onelogin") == []


def test_the_import_button_imports_and_says_how_many(app, world, admin_client):
    answer = post(admin_client, "/audit/import")
    assert answer.status_code == 303
    page = admin_client.get("/audit").get_data(as_text=True)
    added = len(expected_onelogin_events(world))
    assert f"onelogin: {added} added, 0 already here." in page
    assert len(imported(app, "onelogin")) == added


# --- odd records and imports at once ------------------------------------------------------

LONG_TYPE = 60  # a provisioning event type id the demo tenant does not define


def test_an_over_long_actor_and_action_are_cut_to_fit_and_the_details_say_so(app, world):
    """One odd event must not fail every import from here on (each restarts at it)."""
    name = "USER_PROVISIONING_STEP_" + "RETRIED_AFTER_A_TIMEOUT_" * 4  # 120 characters
    world.tenant.event_types.append({"id": LONG_TYPE, "name": name, "description": "odd"})
    actor = "Maya Chen via the " + "very " * 100 + "long integration name"  # 539
    jonas = next(u for u in world.tenant.users.values() if u.email == JONAS)
    odd = world.tenant.add_event(
        LONG_TYPE,
        user_id=jonas.id,
        user_name="Jonas Weber",
        app_id=WORKATO_APP_ID,
        actor_user_name=actor,
    )
    with app.app_context():
        report = imports.import_all(ADMIN)
    assert report.ok, report.sources[0].problem
    assert report.sources[0].added == len(expected_onelogin_events(world))  # the odd one too
    entry = next(e for e in imported(app, "onelogin") if e.external_id == str(odd["id"]))
    action = f"onelogin.{name.lower()}"
    assert (len(entry.actor), len(entry.action)) == (320, 64)
    assert entry.actor == actor[:319] + "…" and entry.action == action[:63] + "…"
    assert entry.details["truncated"] == {
        "actor": {"length": len(actor), "sent": actor},
        "action": {"length": len(action), "sent": action},
    }
    assert entry.target_user == JONAS and entry.details["user_name"] == "Jonas Weber"
    with app.app_context():
        again = imports.import_all(ADMIN)
        assert chain.verify().ok
    assert again.ok and again.sources[0].added == 0


def test_two_imports_at_once_both_end_well_and_import_each_event_once(app, world):
    """The worst interleaving: both have read OneLogin's events, and neither has written,
    when they go on together (a barrier at each one's first write to the chain)."""
    both_read = threading.Barrier(2, timeout=60)
    mine = threading.local()

    def first_write_waits(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("UPDATE AUDIT_CHAIN") and not hasattr(
            mine, "waited"
        ):
            mine.waited = True
            both_read.wait()

    reports, failures = [], []

    def import_now() -> None:
        try:
            with app.app_context():
                reports.append(imports.import_all(ADMIN))
        except BaseException as exc:  # reported below: a thread cannot fail the test itself
            failures.append(exc)

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", first_write_waits)
    try:
        threads = [threading.Thread(target=import_now) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        event.remove(engine, "before_cursor_execute", first_write_waits)

    assert failures == []
    wanted = len(expected_onelogin_events(world))
    assert all(r.ok for r in reports) and len(reports) == 2
    onelogin = sorted((r.sources[0].added, r.sources[0].skipped) for r in reports)
    assert onelogin == [(0, wanted), (wanted, 0)]  # the second skipped what the first added
    entries = imported(app, "onelogin")
    assert len(entries) == len({e.external_id for e in entries}) == wanted
    with app.app_context():
        assert chain.verify().ok
        outcomes = db.session.scalars(
            select(AuditEntry.outcome).where(AuditEntry.action == "audit.import")
        )
        assert list(outcomes) == ["success", "success"]
