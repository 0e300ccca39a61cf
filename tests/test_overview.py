"""The Overview as the home page (issue 15): people per state and how many need attention,
the last run and how it ended, the scheduled reconcile's next time and last result, the
connections as last tested or checked, the checklist, open alerts and the latest audit
entries, all read from the database."""

from __future__ import annotations

from datetime import timedelta

import pytest

from dashboard.alerts.watch import watch
from dashboard.connections import service as connections
from dashboard.schedule import service as schedule
from dashboard.sync import runner, runs
from tests.support.sync_world import World

EVERY = 60
SETTINGS = {
    "DASHBOARD_SYNC_EXECUTOR": "worker",
    "DASHBOARD_SYNC_RATE": 0,
    "DASHBOARD_RECONCILE_EVERY": EVERY,
    "DASHBOARD_RECONCILE_APPLY": "safe",
}


@pytest.fixture
def app(make_app):
    return make_app(**SETTINGS)


def test_the_overview_tells_what_happened_and_what_needs_attention(app, admin_client):
    with World.small(app) as world:
        world.person("Ada", "Lovelace", workato_role="Analyst")
        world.person("Alan", "Turing", workato_role="Operator")
        with app.app_context():
            row = schedule.tick("test")
            run_id = row.run_id
            runner.process(runs.next_queued())
            # Then the SCIM token stops working: a test says so.
            connections.note_health("scim", False, "Workato refused the SCIM token (401).")
            watch()
            next_at = (row.due_at + timedelta(seconds=EVERY)).strftime("%Y-%m-%d %H:%M:%S")

        page = admin_client.get("/").get_data(as_text=True)

    # People per state, from the run the schedule applied.
    assert "People per state" in page
    assert 'href="/users?state=in_sync"' in page
    assert '>In sync</span> <span class="count">2</span>' in page
    assert 'need attention: <span class="count">0</span>' in page
    # The last run, by the schedule, and how it ended.
    assert f'<a href="/sync/runs/{run_id}">Run {run_id}</a>' in page
    assert "by schedule" in page and "Succeeded" in page
    # The schedule: the next time and the last result.
    assert f">{next_at}</time> UTC" in page and "Found 2 create; applied as run" in page
    # The connection as last checked, and the open alert it raised.
    assert "Failing" in page and "Workato refused the SCIM token (401)." in page
    assert "Open alerts" in page and "None: nothing needs you now." not in page
    # The latest audit entries, the schedule's among them.
    assert "Latest audit entries" in page and "<code>sync.schedule</code>" in page


def test_with_nothing_open_the_overview_says_so(app, admin_client):
    with World.small(app):
        page = admin_client.get("/").get_data(as_text=True)
    assert "None: nothing needs you now." in page
    assert "No run yet." in page
    assert "No scheduled reconcile has run yet." in page
