"""Apply sends only what is still true: the dashboard's own changes in OneLogin after a
preview make Apply refuse ("preview again", naming them); changes made in OneLogin's console
are read from its events at Apply and decided again before anything is sent, and the run
says so; where the events cannot be read, only a young preview goes ahead.

Against the OneLogin simulator (its events as OneLogin logs them) and scim2-server."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from dashboard.audit.models import AuditEntry
from dashboard.connections import http
from dashboard.extensions import db
from dashboard.person import Person
from dashboard.sandbox.onelogin_seed import WORKATO_APP_ID
from dashboard.sync import freshness, reports, runner, runs, service
from dashboard.sync.models import Item, Run
from dashboard.timeutil import utcnow
from dashboard.users import access
from tests.support.forms import post
from tests.support.people import person_id
from tests.support.sync_world import ACTOR, World, roles_of

WORKER = {
    "DASHBOARD_SYNC_EXECUTOR": "worker",  # the test works each queued run itself
    "DASHBOARD_SYNC_RATE": 0,
    "DASHBOARD_SYNC_BACKOFF_SECONDS": 0.01,
    "DASHBOARD_SYNC_SUSPEND_GUARD_SHARE": 1.0,
}
ADA, ALAN = "ada.lovelace@example.com", "alan.turing@example.com"
CONSOLE = {"actor_user_name": "Maya Chen"}  # an admin in OneLogin's console


@pytest.fixture
def app(make_app):
    return make_app(**WORKER)


def preview(app) -> int:
    with app.app_context():
        run, _plan = service.make_plan(ACTOR)
        return run.id


def apply_and_work(app, run_id: int) -> dict:
    with app.app_context():
        service.apply(run_id, ACTOR, start=False)
        runner.process(run_id)
        return reports.run_json(runs.get(run_id))


def refusal(app, run_id: int) -> str:
    with app.app_context():
        with pytest.raises(service.Refused) as refused:
            service.apply(run_id, ACTOR, start=False)
        assert runs.get(run_id).status == "planned"  # nothing queued, nothing sent
    return str(refused.value)


def items(app, run_id: int) -> dict[str, str]:
    with app.app_context():
        return {
            i.key: i.action for i in db.session.scalars(select(Item).where(Item.run_id == run_id))
        }


def read_earlier(app, run_id: int, minutes: float) -> None:
    """The preview was read `minutes` ago."""
    with app.app_context():
        db.session.execute(
            update(Run)
            .where(Run.id == run_id)
            .values(created_at=utcnow() - timedelta(minutes=minutes))
        )
        db.session.commit()


def synced(app, world: World) -> None:
    """Workato holds what OneLogin says (a first run), before the preview under test."""
    apply_and_work(app, preview(app))


# --- the dashboard's own changes ---------------------------------------------------------


def test_a_role_edit_in_the_dashboard_after_the_preview_makes_apply_refuse(app, admin_client):
    """The Apply button answers "preview again", naming who changed, what and when; nothing
    is sent to Workato."""
    with World.small(app) as world:
        world.person("Ada", "Lovelace", workato_role="Analyst")
        world.person("Alan", "Turing", workato_role="Operator")
        run_id = preview(app)
        edited = post(
            admin_client, f"/users/roles/{person_id(app, ADA)}", True, workato_role="Admin"
        )
        assert edited.status_code == 200

        answer = post(admin_client, f"/sync/runs/{run_id}/apply", True)
        body = answer.get_data(as_text=True)
        assert answer.status_code == 409
        assert "Changed in OneLogin from the dashboard after this preview was read" in body
        assert f"{ADA}: workato_role Analyst → Admin (by " in body
        assert "Preview again" in body
        assert world.workato_users() == {}  # Alan's create was not sent either
        with app.app_context():
            assert runs.get(run_id).status == "planned"
            entry = db.session.scalar(
                select(AuditEntry).where(
                    AuditEntry.action == "sync.run.queued", AuditEntry.outcome == "refused"
                )
            )
            assert entry.details["run"] == run_id and ADA in entry.details["error"]

        # Previewing again reads the edit: Ada is created with her new role.
        run = apply_and_work(app, preview(app))
        assert run["status"] == "succeeded" and run["note"] is None
        assert roles_of(world.workato_user(ADA)) == {"workato_role": "Admin"}


def test_deactivating_in_the_dashboard_after_the_preview_stops_the_planned_create(app):
    """The preview would create Ada; she is deactivated from the dashboard (nothing to
    reconcile in Workato yet): Apply refuses instead of creating a leaver."""
    with World.small(app) as world:
        world.person("Ada", "Lovelace", workato_role="Analyst")
        run_id = preview(app)
        with app.app_context():
            ada = db.session.scalar(select(Person).where(Person.key == ADA))
            access.deprovision(ada, access.DEACTIVATE, "it.admin@example.com")

        said = refusal(app, run_id)
        assert f"{ADA}: deactivated (by it.admin@example.com at " in said
        assert world.workato_user(ADA) is None


# --- changes made in OneLogin's console ----------------------------------------------------


def test_a_console_change_after_the_preview_is_read_again_and_sent(app, admin_client):
    """Ada's role was changed in OneLogin's console after the preview: Workato gets the new
    value, not the one the preview read, and the run says whom it read again."""
    with World.small(app) as world:
        ada = world.person("Ada", "Lovelace", workato_role="Analyst")
        synced(app, world)
        world.tenant.set_custom_attributes(ada.id, {"workato_role": "Operator"})
        run_id = preview(app)
        assert items(app, run_id) == {ADA: "update"}

        world.tenant.update_attributes(ada.id, {"workato_role": "Admin"}, **CONSOLE)
        run = apply_and_work(app, run_id)

        assert run["status"] == "succeeded"
        assert roles_of(world.workato_user(ADA)) == {"workato_role": "Admin"}
        note = f"Re-read 1 user changed in OneLogin since the preview: {ADA} (updated; now update)."
        assert run["note"] == note
        page = admin_client.get(f"/sync/runs/{run_id}").get_data(as_text=True)
        assert f"<strong>Checked at Apply:</strong> {note}" in page


def test_a_console_change_for_a_user_the_preview_left_alone_gets_an_item(app):
    """Alan was in sync (a no-op, so no item); suspended in the console after the preview,
    Apply suspends him in Workato too; the counts follow."""
    with World.small(app) as world:
        world.person("Ada", "Lovelace", workato_role="Analyst")
        alan = world.person("Alan", "Turing", workato_role="Operator")
        synced(app, world)
        world.person("Grace", "Hopper", workato_role="Analyst")  # something to apply
        run_id = preview(app)
        assert items(app, run_id) == {"grace.hopper@example.com": "create"}

        world.tenant.set_status(alan.id, 2, **CONSOLE)
        run = apply_and_work(app, run_id)

        assert items(app, run_id) == {"grace.hopper@example.com": "create", ALAN: "suspend"}
        assert run["counts"] == {
            "create": 1,
            "update": 0,
            "suspend": 1,
            "reactivate": 0,
            "noop": 1,
            "orphan": 0,
        }
        assert run["total"] == 2 and run["status"] == "succeeded"
        assert world.workato_user(ALAN)["active"] is False
        assert f"{ALAN} (suspended; now suspend)" in run["note"]
        with app.app_context():
            assert db.session.scalar(select(Person.state).where(Person.key == ALAN)) == (
                "suspended"
            )


def test_a_user_given_the_app_in_the_console_after_the_preview_is_created(app):
    """Not covered by the preview at all: a role that grants the app was given in the
    console, so Apply decides for them and creates them."""
    with World.small(app) as world:
        world.person("Ada", "Lovelace", workato_role="Analyst")
        hedy = world.person("Hedy", "Lamarr", app=False, workato_role="Operator")
        run_id = preview(app)
        role = next(r for r in world.tenant.roles.values() if r.name == "Workato Users")

        world.tenant.assign_role(role.id, [hedy.id], **CONSOLE)
        run = apply_and_work(app, run_id)

        assert roles_of(world.workato_user("hedy.lamarr@example.com")) == {
            "workato_role": "Operator"
        }
        assert "hedy.lamarr@example.com (role added; now create)" in run["note"]
        assert run["counts"]["create"] == 2


def test_the_app_added_to_a_role_in_the_console_makes_apply_refuse(app):
    """Everyone in that role may now have the app: more than Apply re-reads one by one."""
    with World.small(app) as world:
        world.person("Ada", "Lovelace", workato_role="Analyst")
        run_id = preview(app)
        employees = world.tenant.add_role("Engineers", [WORKATO_APP_ID], [])
        world.tenant.add_event(
            1, role_id=employees.id, role_name="Engineers", app_id=WORKATO_APP_ID, **CONSOLE
        )

        said = refusal(app, run_id)
        assert said.startswith("The Workato app was added to the OneLogin role Engineers at ")
        assert said.endswith("Preview again so that Apply sends only what is still true.")


def test_more_changed_users_than_apply_rereads_refuses(app):
    with World.small(app) as world:
        people = [
            world.person("Ada", "Lovelace" + "x" * n, workato_role="Analyst")
            for n in range(freshness.MAX_USERS + 1)
        ]
        run_id = preview(app)
        for user in people:
            world.tenant.update_attributes(user.id, {"workato_role": "Admin"}, **CONSOLE)

        said = refusal(app, run_id)
        assert said.startswith(f"{len(people)} users changed in OneLogin since the preview")
        assert world.workato_users() == {}


# --- OneLogin's events cannot be read ----------------------------------------------------------


def test_unreadable_events_refuse_a_preview_older_than_five_minutes(app, monkeypatch):
    monkeypatch.setattr(http.RetryPolicy, "delay", lambda self, attempt, problem: 0.0)
    with World.small(app) as world:
        world.person("Ada", "Lovelace", workato_role="Analyst")
        run_id = preview(app)
        read_earlier(app, run_id, 6)
        world.tenant.fail_next(503, times=10, path="/api/1/events")

        said = refusal(app, run_id)
        assert said.startswith("OneLogin's events could not be read (")
        assert "this preview was read 6 minutes ago" in said
        assert world.workato_user(ADA) is None


def test_unreadable_events_let_a_young_preview_go_ahead_and_say_so(app):
    with World.small(app) as world:
        world.person("Ada", "Lovelace", workato_role="Analyst")
        run_id = preview(app)
        read_earlier(app, run_id, 1)
        world.tenant.fail_next(403, path="/api/1/events")

        run = apply_and_work(app, run_id)

        assert run["status"] == "succeeded"
        assert world.workato_user(ADA)["active"] is True
        assert run["note"].startswith("OneLogin's events could not be read (")
        assert "were not re-checked" in run["note"]
