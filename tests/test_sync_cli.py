"""`flask sync ...` as an operator scripts it: what is printed, the exit code (DESIGN.md §6:
0 ok, 1 failed, 3 refused pending a decision), and what Workato holds afterwards.

Workato is scim2-server and OneLogin the simulator, both served by tests/support/sync_world.
"""

from __future__ import annotations

import json
import queue
import threading
from datetime import timedelta

import requests
from sqlalchemy import update

from dashboard.connections import service as connections
from dashboard.extensions import db
from dashboard.sandbox.onelogin import Parameter
from dashboard.sandbox.onelogin_seed import ROLE_FIELDS, WORKATO_APP_ID
from dashboard.setup import service as setup
from dashboard.setup import template
from dashboard.sync import cli, runner, runs, service
from dashboard.sync.models import Run
from dashboard.sync.one_user import TITLES
from dashboard.sync.planner import ACTIONS, WRITES
from dashboard.timeutil import utcnow
from tests.support.rows import audit_rows
from tests.support.sync_world import World, roles_of

OPERATOR = "ops.lead@example.com"
OWNER = "workspace.owner@example.com"
ADA = "ada.lovelace@example.com"  # has the app, not in Workato yet: created
CAROL = "carol.drift@example.com"  # has the app, another role in Workato: updated
DAN = "dan.steady@example.com"  # has the app, in sync: nothing to do
STAGING = "workato_role_staging"  # a role field Workato's schema does not declare


def sync(app, *args: str):
    return app.test_cli_runner().invoke(args=["sync", *args])


def sync_json(app, *args: str) -> tuple[int, dict]:
    result = sync(app, *args, "--json")
    return result.exit_code, json.loads(result.stdout)


def mixed(world: World) -> World:
    """One create, one update, one no-op and one orphan."""
    world.person("Ada", "Lovelace", workato_role="Admin")
    world.person("Carol", "Drift", workato_role="Admin")
    world.add_workato_user(CAROL, workato_role="Analyst")
    world.person("Dan", "Steady", workato_role="Operator")
    world.add_workato_user(DAN, workato_role="Operator")
    world.add_workato_user(OWNER, workato_role="Admin")
    return world


def queue_a_run(app) -> int:
    """A run applied elsewhere (the Sync page, another shell) and not worked yet."""
    with app.app_context():
        run, _ = service.make_plan(OPERATOR)
        return service.apply(run.id, OPERATOR, start=False).id


def crash_while_running(app, run_id: int) -> None:
    """A process claimed the run and died before sending anything: its heartbeat stopped
    an hour ago."""
    with app.app_context():
        assert runs.claim(run_id, "crashed-host:4242:deadbeef")
        long_ago = utcnow() - timedelta(hours=1)
        db.session.execute(update(Run).where(Run.id == run_id).values(heartbeat_at=long_ago))
        db.session.commit()


def with_undeclared_role_field(world: World) -> World:
    """OneLogin maps a staging role Workato does not declare: scim2-server refuses a user
    carrying it with 400 invalidSyntax, exactly as Workato refuses an unknown field."""
    world.tenant.define_attribute(STAGING)
    world.tenant.apps[WORKATO_APP_ID].parameters[STAGING] = Parameter(
        "Workato role (staging)", f"custom_attribute_{STAGING}", True, True
    )
    return world


def staging_app(make_app):
    return make_app(DASHBOARD_SYNC_RATE=0, DASHBOARD_ROLE_FIELDS=[*ROLE_FIELDS, STAGING])


def save_staging_template(app) -> None:
    with app.app_context():
        setup.save_template(template.default_template([*ROLE_FIELDS, STAGING]), OPERATOR)


def sync_actions(app) -> list[str]:
    return [row["action"] for row in audit_rows(app) if row["action"].startswith("sync.")]


# --- sync plan -------------------------------------------------------------------------


def test_plan_json_counts_all_six_actions_zeros_included(make_app):
    app = make_app()
    with World.small(app) as world:
        mixed(world)
        code, document = sync_json(app, "plan")
    assert code == 0
    assert document["counts"] == {
        "create": 1,
        "update": 1,
        "suspend": 0,
        "reactivate": 0,
        "noop": 1,
        "orphan": 1,
    }


def test_plan_json_lists_the_writes_and_orphans_with_their_requests(make_app):
    app = make_app()
    with World.small(app) as world:
        mixed(world)
        _, document = sync_json(app, "plan")
    items = {item["user_name"]: item for item in document["items"]}
    assert set(items) == {ADA, CAROL, OWNER}  # the no-op is not listed
    create, change, orphan = items[ADA], items[CAROL], items[OWNER]
    assert create["action"] == "create"
    assert create["request"]["method"] == "POST" and create["request"]["path"] == "/Users"
    assert create["request"]["body"]["userName"] == ADA
    assert change["action"] == "update"
    assert list(change["changes"].values()) == [["Analyst", "Admin"]]
    assert change["request"]["method"] in ("PATCH", "PUT")
    assert change["request"]["path"] == f"/Users/{change['scim_id']}"
    assert orphan["action"] == "orphan" and orphan["request"] is None
    assert orphan["orphan_kind"] == "unknown" and orphan["changes"] == {}


def test_plan_sends_nothing_to_workato(make_app):
    app = make_app()
    with World.small(app) as world:
        mixed(world)
        before = world.workato_users()
        code, _ = sync_json(app, "plan")
        assert code == 0
        assert world.workato_users() == before


def test_plan_without_connections_fails_and_says_what_to_save(app):
    result = sync(app, "plan")
    assert result.exit_code == 1
    assert "Save the OneLogin and Workato SCIM connections on Connections" in result.output


# --- sync run --------------------------------------------------------------------------


def test_run_without_yes_previews_and_sends_nothing(make_app):
    app = make_app()
    with World.small(app) as world:
        mixed(world)
        before = world.workato_users()
        result = sync(app, "run")
        assert result.exit_code == 3
        assert "Plan: create 1, update 1, suspend 0, reactivate 0, noop 1, orphan 1." in (
            result.output
        )
        assert f"create     {ADA}" in result.output
        assert "Nothing was sent. Run again with --yes to apply." in result.output
        assert world.workato_users() == before
    assert "sync.run.queued" not in sync_actions(app)


def test_run_without_yes_json_is_the_plan_marked_refused(make_app):
    app = make_app()
    with World.small(app) as world:
        mixed(world)
        code, document = sync_json(app, "run")
    assert code == 3
    assert document["ok"] is False and document["message"] == "needs --yes"
    assert set(document["counts"]) == set(ACTIONS)


def test_run_with_yes_brings_every_demo_app_user_to_workato(make_app):
    app = make_app(DASHBOARD_SYNC_RATE=0)
    with World.demo(app) as world:
        code, document = sync_json(app, "run", "--yes")
        workato = world.workato_users()
        tenant = world.tenant
        app_users = [tenant.users[i] for i in tenant.app_user_ids(WORKATO_APP_ID)]
    assert code == 0, document
    assert document["status"] == "succeeded" and document["failed"] == []
    assert set(document["counts"]) == set(ACTIONS) and document["counts"]["create"] > 0
    assert len(app_users) > 100
    for person in app_users:
        held = workato.get(person.email.lower())
        if person.status == 2:  # suspended in OneLogin: never active in Workato
            assert held is None or held["active"] is False, person.email
            continue
        assert held is not None, person.email
        assert held["active"] is True, person.email
        wanted = {f: v for f in ROLE_FIELDS if (v := person.custom_attributes.get(f))}
        assert {k: v for k, v in roles_of(held).items() if v} == wanted, person.email


def test_a_second_plan_after_a_run_has_nothing_to_write(make_app):
    app = make_app(DASHBOARD_SYNC_RATE=0)
    with World.demo(app):
        assert sync(app, "run", "--yes").exit_code == 0
        code, document = sync_json(app, "plan")
    assert code == 0
    assert {a: document["counts"][a] for a in WRITES} == {a: 0 for a in WRITES}
    assert document["counts"]["noop"] > 100
    assert {item["action"] for item in document["items"]} <= {"orphan"}


def test_run_with_yes_and_nothing_to_write_ends_at_once(make_app):
    app = make_app()
    with World.small(app) as world:
        world.person("Dan", "Steady", workato_role="Operator")
        world.add_workato_user(DAN, workato_role="Operator")
        code, document = sync_json(app, "run", "--yes")
    assert code == 0
    assert document["status"] == "nothing_to_do"


def test_run_with_a_refused_item_exits_1_naming_the_user_and_the_scim_error(make_app):
    app = staging_app(make_app)
    with with_undeclared_role_field(World.small(app)) as world:
        save_staging_template(app)
        world.person("Ada", "Lovelace", workato_role="Admin")
        world.person("Sam", "Stage", workato_role="Admin", **{STAGING: "Admin"})
        code, document = sync_json(app, "run", "--yes")
        assert world.workato_user(ADA) is not None  # the others are still done
        assert world.workato_user("sam.stage@example.com") is None
    assert code == 1
    assert document["status"] == "failed"
    [failed] = document["failed"]
    assert failed["user_name"] == "sam.stage@example.com" and failed["action"] == "create"
    assert failed["http_status"] == 400 and STAGING in failed["error"]


# --- the suspension guard --------------------------------------------------------------


def guarded(make_app) -> tuple:
    """One suspension allowed without confirmation. The guard holds a plan back when it
    passes the count or the share; a share of 1 leaves the count to decide."""
    app = make_app(DASHBOARD_SYNC_SUSPEND_GUARD_COUNT=1, DASHBOARD_SYNC_SUSPEND_GUARD_SHARE=1.0)
    world = World.small(app)
    return app, world


def suspended_pair(world: World) -> list[str]:
    emails = []
    for first, last in (("Bob", "Leaver"), ("Cleo", "Leaver")):
        person = world.person(first, last, status=2, workato_role="Analyst")
        world.add_workato_user(person.email, workato_role="Analyst")
        emails.append(person.email)
    return emails


def test_guard_refuses_more_suspensions_than_allowed_naming_the_number(make_app):
    app, world = guarded(make_app)
    with world:
        emails = suspended_pair(world)
        result = sync(app, "run", "--yes")
        assert result.exit_code == 3
        assert "This plan suspends 2 users in Workato" in result.output
        assert "--confirm-suspensions 2" in result.output
        assert all(world.workato_user(e)["active"] is True for e in emails)


def test_guard_refuses_a_wrong_confirmation(make_app):
    app, world = guarded(make_app)
    with world:
        emails = suspended_pair(world)
        code, document = sync_json(app, "run", "--yes", "--confirm-suspensions", "1")
        assert code == 3
        assert "suspends 2 users" in document["message"]
        assert all(world.workato_user(e)["active"] is True for e in emails)


def test_guard_passes_with_the_planned_number_and_they_are_suspended(make_app):
    app, world = guarded(make_app)
    with world:
        emails = suspended_pair(world)
        code, document = sync_json(app, "run", "--yes", "--confirm-suspensions", "2")
        assert code == 0, document
        assert document["status"] == "succeeded"
        assert document["counts"]["suspend"] == 2
        assert [world.workato_user(e)["active"] for e in emails] == [False, False]


def test_guard_counts_the_share_of_active_workato_users(make_app):
    app = make_app(DASHBOARD_SYNC_SUSPEND_GUARD_COUNT=100, DASHBOARD_SYNC_SUSPEND_GUARD_SHARE=0.5)
    with World.small(app) as world:
        emails = suspended_pair(world)  # 2 of the 3 active Workato users
        world.add_workato_user("workspace.owner@example.com", workato_role="Admin")
        result = sync(app, "run", "--yes")
        assert result.exit_code == 3
        assert "more than 50% of the 3 active Workato users" in result.output
        assert all(world.workato_user(e)["active"] is True for e in emails)


def test_guard_lets_suspensions_up_to_the_limit_through_without_confirmation(make_app):
    app, world = guarded(make_app)
    with world:
        person = world.person("Bob", "Leaver", status=2, workato_role="Analyst")
        world.add_workato_user(person.email, workato_role="Analyst")
        code, document = sync_json(app, "run", "--yes")
        assert code == 0, document
        assert world.workato_user(person.email)["active"] is False


# --- refusals: another run, SCIM disabled ----------------------------------------------


def test_run_refused_while_another_run_is_active_names_it(make_app):
    app = make_app(DASHBOARD_SYNC_EXECUTOR="worker")
    with World.small(app) as world:
        world.person("Ada", "Lovelace", workato_role="Admin")
        run_id = queue_a_run(app)
        code, document = sync_json(app, "run", "--yes")
        assert world.workato_user(ADA) is None
    assert code == 3
    assert document["run"] == run_id
    assert f"Run {run_id} is queued (started by {OPERATOR})" in document["message"]


def test_run_refused_while_scim_is_disabled(make_app):
    app = make_app()
    with World.small(app) as world:
        world.person("Ada", "Lovelace", workato_role="Admin")
        with app.app_context():
            connections.disable_scim(OPERATOR, clear_token=False)
        code, document = sync_json(app, "run", "--yes")
        assert world.workato_user(ADA) is None
    assert code == 3
    assert "SCIM is disabled on Connections" in document["message"]


def test_run_with_yes_in_worker_mode_waits_for_the_worker_and_reports(make_app, monkeypatch):
    """With DASHBOARD_SYNC_EXECUTOR=worker the command queues the run and follows it while
    a `flask sync worker` (here a thread, told the run id as soon as it is queued) works it."""
    app = make_app(DASHBOARD_SYNC_EXECUTOR="worker")
    monkeypatch.setattr(cli, "WORKER_POLL_SECONDS", 0.05)
    queued: queue.Queue[int] = queue.Queue()
    real_apply = service.apply

    def apply_and_tell(*args, **kwargs):
        run = real_apply(*args, **kwargs)
        queued.put(run.id)
        return run

    monkeypatch.setattr(service, "apply", apply_and_tell)
    worked: list[str] = []

    def worker() -> None:
        run_id = queued.get(timeout=30)
        with app.app_context():
            worked.append(runner.process(run_id, "other-host:1:worker").status)

    thread = threading.Thread(target=worker, name="test-sync-worker")
    thread.start()
    with World.small(app) as world:
        world.person("Ada", "Lovelace", workato_role="Admin")
        code, document = sync_json(app, "run", "--yes")
        thread.join(timeout=30)
        assert world.workato_user(ADA) is not None
    assert worked == ["succeeded"]
    assert code == 0, document
    assert document["status"] == "succeeded" and document["succeeded"] == 1


def test_resume_and_retry_failed_together_is_wrong_usage(app):
    result = sync(app, "run", "--resume", "1", "--retry-failed", "1", "--yes")
    assert result.exit_code == 2
    assert "Give --resume or --retry-failed, not both." in result.output


def test_a_run_left_by_a_crashed_process_does_not_block_the_next(make_app):
    app = make_app()
    with World.small(app) as world:
        world.person("Ada", "Lovelace", workato_role="Admin")
        crash_while_running(app, queue_a_run(app))
        code, document = sync_json(app, "run", "--yes")
        assert world.workato_user(ADA) is not None
    assert code == 0, document
    assert document["status"] == "succeeded"


def test_resume_an_interrupted_run_sends_what_was_left(make_app):
    app = make_app()
    with World.small(app) as world:
        world.person("Ada", "Lovelace", workato_role="Admin")
        run_id = queue_a_run(app)
        crash_while_running(app, run_id)
        code, document = sync_json(app, "run", "--resume", str(run_id), "--yes")
        assert roles_of(world.workato_user(ADA)) == {"workato_role": "Admin"}
    assert code == 0, document
    assert document["id"] == run_id and document["status"] == "succeeded"


def test_resume_without_yes_is_refused(make_app):
    app = make_app()
    with World.small(app) as world:
        world.person("Ada", "Lovelace", workato_role="Admin")
        run_id = queue_a_run(app)
        crash_while_running(app, run_id)
        result = sync(app, "run", "--resume", str(run_id))
        assert world.workato_user(ADA) is None
    assert result.exit_code == 3
    assert f"Add --yes to resume run {run_id}." in result.output


# --- sync status -----------------------------------------------------------------------


def test_status_before_any_run(app):
    code, document = sync_json(app, "status")
    assert code == 0
    assert document["id"] is None and document["status"] == "none"
    # Nothing learned yet about Workato's rate limit, nor seen of OneLogin's budget.
    assert document["rate"]["learned"] is None and document["rate"]["learned_at"] is None
    assert document["onelogin_budget"] == {"seen": False}


def test_status_after_a_succeeded_run(make_app):
    app = make_app()
    with World.small(app) as world:
        world.person("Ada", "Lovelace", workato_role="Admin")
        _, ran = sync_json(app, "run", "--yes")
        code, document = sync_json(app, "status")
    assert code == 0
    assert document["id"] == ran["id"] and document["status"] == "succeeded"
    assert document["failed"] == [] and document["counts"]["create"] == 1


def test_status_after_a_run_with_a_failed_item_exits_1(make_app):
    app = staging_app(make_app)
    with with_undeclared_role_field(World.small(app)) as world:
        save_staging_template(app)
        world.person("Sam", "Stage", workato_role="Admin", **{STAGING: "Admin"})
        assert sync(app, "run", "--yes").exit_code == 1
        result = sync(app, "status")
        code, document = sync_json(app, "status")
    assert result.exit_code == 1 and "failed, 1/1 done; 1 failed." in result.output
    assert code == 1
    assert document["status"] == "failed"
    assert [f["user_name"] for f in document["failed"]] == ["sam.stage@example.com"]


def carol_deleted_after_planning(app, world: World) -> int:
    """Carol is planned for an update; someone deletes her in Workato before the run, which
    then works the plan as planned. The run's id."""
    world.person("Carol", "Drift", workato_role="Admin")
    carol = world.add_workato_user(CAROL, workato_role="Analyst")
    with app.app_context():
        run, _ = service.make_plan(OPERATOR)
        run_id = run.id
    gone = requests.delete(
        f"{world.scim_url}/Users/{carol['id']}", headers=world.headers(), timeout=10
    )
    assert gone.status_code == 204
    with app.app_context():
        service.apply(run_id, OPERATOR, start=False)
        runner.process(run_id)
    return run_id


def deleted_meanwhile(make_app) -> tuple[int, dict]:
    app = make_app(DASHBOARD_SYNC_RATE=0)
    with World.small(app) as world:
        carol_deleted_after_planning(app, world)
        return sync_json(app, "status")


def test_status_after_a_run_whose_user_was_deleted_meanwhile_exits_1(make_app):
    code, document = deleted_meanwhile(make_app)
    assert code == 1
    assert document["status"] == "failed"
    [failed] = document["failed"]
    assert failed["user_name"] == CAROL and failed["http_status"] == 404


def test_a_user_deleted_meanwhile_is_not_blamed_on_the_base_url(make_app):
    """The connection works (the run read and wrote through it); only Carol is gone."""
    _, document = deleted_meanwhile(make_app)
    [failed] = document["failed"]
    assert "base URL" not in failed["error"], failed["error"]


def test_status_while_a_run_is_queued_is_fine(make_app):
    app = make_app(DASHBOARD_SYNC_EXECUTOR="worker")
    with World.small(app) as world:
        world.person("Ada", "Lovelace", workato_role="Admin")
        run_id = queue_a_run(app)
        code, document = sync_json(app, "status")
    assert code == 0
    assert document["id"] == run_id and document["status"] == "queued"
    assert document["pending"] == 1


def test_status_shows_a_run_left_by_a_crashed_process_as_interrupted(make_app):
    app = make_app()
    with World.small(app) as world:
        world.person("Ada", "Lovelace", workato_role="Admin")
        run_id = queue_a_run(app)
        crash_while_running(app, run_id)
        result = sync(app, "status")
        code, document = sync_json(app, "status")
    assert code == 1
    assert document["id"] == run_id and document["status"] == "interrupted"
    assert "Resume it to finish." in result.output


def test_retry_failed_sends_the_failed_item_again_once_the_cause_is_fixed(make_app):
    app = make_app(DASHBOARD_SYNC_RATE=0)
    with World.small(app) as world:
        run_id = carol_deleted_after_planning(app, world)
        world.add_workato_user(CAROL, workato_role="Analyst")  # restored from a backup
        code, document = sync_json(app, "run", "--retry-failed", str(run_id), "--yes")
        held = world.workato_user(CAROL)
    assert code == 0, document
    assert document["kind"] == "retry" and document["status"] == "succeeded"
    assert roles_of(held) == {"workato_role": "Admin"}


# --- sync user -------------------------------------------------------------------------


def test_user_provisions_one_user_showing_each_step_in_order(make_app):
    app = make_app()
    with World.small(app) as world:
        world.person("Ada", "Lovelace", workato_role="Admin", workato_role_test="Operator")
        code, document = sync_json(app, "user", ADA)
        held = world.workato_user(ADA)
    assert code == 0, document
    assert (
        [step["title"] for step in document["steps"]]
        == list(TITLES)
        == [
            "Read from OneLogin",
            "Render the template",
            "Find in Workato",
            "Act",
            "Read back and compare",
        ]
    )
    assert [step["ok"] for step in document["steps"]] == [True] * 5
    assert document["action"] == "create" and document["ok"] is True
    assert held["active"] is True
    assert roles_of(held) == {"workato_role": "Admin", "workato_role_test": "Operator"}


def test_user_human_output_marks_each_step(make_app):
    app = make_app()
    with World.small(app) as world:
        world.person("Ada", "Lovelace", workato_role="Admin")
        result = sync(app, "user", ADA)
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert [line.split(":", 1)[0] for line in lines] == [f"ok   {t}" for t in TITLES]


def test_user_unknown_to_both_sides_is_not_reported_as_done(make_app):
    """A typo in the email: nothing was provisioned, so a script must not read success.
    Exit 1 as `sync suspend` does for an unknown user (DESIGN.md §6: 1 something failed)."""
    app = make_app()
    with World.small(app) as world:
        before = world.workato_users()
        result = sync(app, "user", "nobody@example.com")
        assert world.workato_users() == before
    assert "No OneLogin user has this email" in result.output
    assert result.exit_code == 1, result.output


def test_user_without_the_app_is_not_said_to_be_unknown_to_onelogin(make_app):
    """OneLogin holds Nora (without the app): "Neither side holds this user" is untrue."""
    app = make_app()
    with World.small(app) as world:
        world.person("Nora", "Noapp", app=False, workato_role="Admin")
        code, document = sync_json(app, "user", "nora.noapp@example.com")
        assert world.workato_user("nora.noapp@example.com") is None
    assert code == 0
    act = document["steps"][3]
    assert act["title"] == "Act"
    assert "Neither side holds this user" not in act["detail"], act["detail"]


def test_user_refused_while_scim_is_disabled(make_app):
    """DESIGN.md §6: SCIM disabled is a refusal pending a decision (3), as for `sync run`
    and `sync suspend`, not a failed provisioning (1)."""
    app = make_app()
    with World.small(app) as world:
        world.person("Ada", "Lovelace", workato_role="Admin")
        with app.app_context():
            connections.disable_scim(OPERATOR, clear_token=False)
        result = sync(app, "user", ADA)
        assert world.workato_user(ADA) is None
    assert "SCIM is disabled on Connections" in result.output
    assert result.exit_code == 3, result.output


# --- sync suspend ----------------------------------------------------------------------


def with_an_orphan(app, world: World) -> None:
    """Ada (has the app, in Workato) and the workspace owner (unknown to OneLogin), after
    a plan that recorded both."""
    world.person("Ada", "Lovelace", workato_role="Admin")
    world.add_workato_user(ADA, workato_role="Admin")
    world.add_workato_user(OWNER, workato_role="Admin")
    code, document = sync_json(app, "plan")
    assert code == 0 and document["counts"]["orphan"] == 1


def test_suspend_an_orphan_with_yes(make_app):
    app = make_app()
    with World.small(app) as world:
        with_an_orphan(app, world)
        code, document = sync_json(app, "suspend", OWNER, "--yes")
        assert code == 0, document
        assert document["status"] == "succeeded" and document["counts"]["suspend"] == 1
        assert world.workato_user(OWNER)["active"] is False
        assert world.workato_user(ADA)["active"] is True


def test_suspend_without_yes_is_refused_and_sends_nothing(make_app):
    app = make_app()
    with World.small(app) as world:
        with_an_orphan(app, world)
        result = sync(app, "suspend", OWNER)
        assert result.exit_code == 3
        assert f"Add --yes to suspend 1 user(s) in Workato: {OWNER}." in result.output
        assert world.workato_user(OWNER)["active"] is True


def test_suspend_refuses_a_user_the_sync_manages(make_app):
    app = make_app()
    with World.small(app) as world:
        with_an_orphan(app, world)
        result = sync(app, "suspend", ADA, "--yes")
        assert result.exit_code == 3
        assert f"Only orphans are suspended this way; {ADA}" in result.output
        assert world.workato_user(ADA)["active"] is True


def test_suspend_an_unknown_user_fails(make_app):
    app = make_app()
    with World.small(app) as world:
        with_an_orphan(app, world)
        before = world.workato_users()
        result = sync(app, "suspend", "nobody@example.com", "--yes")
        assert result.exit_code == 1
        assert "Not a Workato user in the last plan: nobody@example.com" in result.output
        assert world.workato_users() == before


def test_suspend_an_orphan_is_case_insensitive(make_app):
    app = make_app()
    with World.small(app) as world:
        with_an_orphan(app, world)
        code, _ = sync_json(app, "suspend", "Workspace.Owner@Example.COM", "--yes")
        assert code == 0
        assert world.workato_user(OWNER)["active"] is False


def test_suspend_an_orphan_again_says_it_is_already_suspended(make_app):
    """Run twice (a script retried): the owner is not managed from OneLogin, which does not
    know them; the answer must not send the operator there."""
    app = make_app()
    with World.small(app) as world:
        with_an_orphan(app, world)
        assert sync(app, "suspend", OWNER, "--yes").exit_code == 0
        result = sync(app, "suspend", OWNER, "--yes")
        assert world.workato_user(OWNER)["active"] is False
    assert "manages" not in result.output, result.output
    assert "already suspended" in result.output.lower(), result.output
    assert result.exit_code == 0  # done already: a retried script carries on


def test_suspend_while_another_run_is_active_is_refused(make_app):
    app = make_app(DASHBOARD_SYNC_EXECUTOR="worker")
    with World.small(app) as world:
        with_an_orphan(app, world)
        world.person("Bea", "Later", workato_role="Admin")
        run_id = queue_a_run(app)
        code, document = sync_json(app, "suspend", OWNER, "--yes")
        assert world.workato_user(OWNER)["active"] is True
    assert code == 3
    assert document["run"] == run_id


def test_suspend_refused_while_scim_is_disabled(make_app):
    app = make_app()
    with World.small(app) as world:
        with_an_orphan(app, world)
        with app.app_context():
            connections.disable_scim(OPERATOR, clear_token=False)
        result = sync(app, "suspend", OWNER, "--yes")
        assert world.workato_user(OWNER)["active"] is True
    assert result.exit_code == 3
    assert "SCIM is disabled on Connections" in result.output


# --- sync cancel -----------------------------------------------------------------------


def test_cancel_a_queued_run_cancels_it_and_nothing_is_sent(make_app):
    app = make_app(DASHBOARD_SYNC_EXECUTOR="worker")
    with World.small(app) as world:
        world.person("Ada", "Lovelace", workato_role="Admin")
        run_id = queue_a_run(app)
        code, document = sync_json(app, "cancel")
        assert sync(app, "worker", "--once").exit_code == 0  # a worker starting now
        assert world.workato_user(ADA) is None
        _, status = sync_json(app, "status")
    assert code == 0, document
    assert document["id"] == run_id and document["status"] == "cancelled"
    assert document["pending"] == 1 and set(document["counts"]) == set(ACTIONS)
    assert document["message"] == "Cancelled before it started; nothing was sent."
    assert status["id"] == run_id and status["status"] == "cancelled"
    [row] = [r for r in audit_rows(app) if r["action"] == "sync.run.cancel"]
    assert row["actor"].startswith("cli:") and row["details"] == {"run": run_id}


def test_cancel_a_running_run_asks_it_to_stop(make_app):
    app = make_app(DASHBOARD_SYNC_EXECUTOR="worker")
    with World.small(app) as world:
        world.person("Ada", "Lovelace", workato_role="Admin")
        run_id = queue_a_run(app)
        with app.app_context():
            assert runs.claim(run_id, "other-host:1:worker")  # a live worker took it
        result = sync(app, "cancel")
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"Run {run_id}: running.")
    assert "Cancel requested: writes in flight finish and are recorded" in result.output
    with app.app_context():
        assert runs.get(run_id).cancel_requested is True


def test_cancel_with_no_active_run_exits_1(app):
    result = sync(app, "cancel")
    code, document = sync_json(app, "cancel")
    assert result.exit_code == 1
    assert "No run is active: nothing to cancel." in result.output
    assert code == 1
    assert document == {"ok": False, "message": "No run is active: nothing to cancel."}
    assert "sync.run.cancel" not in sync_actions(app)


# --- sync worker -----------------------------------------------------------------------


def test_worker_once_carries_out_a_queued_run(make_app):
    app = make_app(DASHBOARD_SYNC_EXECUTOR="worker")
    with World.small(app) as world:
        world.person("Ada", "Lovelace", workato_role="Admin")
        run_id = queue_a_run(app)
        assert world.workato_user(ADA) is None  # queued: nobody works it yet
        result = sync(app, "worker", "--once")
        assert result.exit_code == 0
        assert f"Run {run_id}: succeeded." in result.output
        assert roles_of(world.workato_user(ADA)) == {"workato_role": "Admin"}
        code, document = sync_json(app, "status")
    assert code == 0 and document["id"] == run_id and document["status"] == "succeeded"


def test_worker_once_with_nothing_queued_exits_0(make_app):
    app = make_app(DASHBOARD_SYNC_EXECUTOR="worker")
    result = sync(app, "worker", "--once")
    assert result.exit_code == 0
    assert "waiting for runs" in result.output


# --- the audit trail -------------------------------------------------------------------


def test_a_run_writes_plan_queue_start_item_and_end_to_the_audit(make_app):
    app = make_app()
    with World.small(app) as world:
        world.person("Ada", "Lovelace", workato_role="Admin")
        _, ran = sync_json(app, "run", "--yes")
    assert sync_actions(app) == [
        "sync.plan",
        "sync.run.queued",
        "sync.run.started",
        "sync.create",
        "sync.run.finished",
    ]
    rows = [row for row in audit_rows(app) if row["action"].startswith("sync.")]
    assert all(row["outcome"] == "success" for row in rows)
    assert all(row["details"]["run"] == ran["id"] for row in rows)
    assert rows[0]["actor"].startswith("cli:") and rows[1]["actor"].startswith("cli:")
    assert rows[-1]["details"]["status"] == "succeeded"


def test_a_failed_item_is_audited_as_failed(make_app):
    app = staging_app(make_app)
    with with_undeclared_role_field(World.small(app)) as world:
        save_staging_template(app)
        world.person("Sam", "Stage", workato_role="Admin", **{STAGING: "Admin"})
        assert sync(app, "run", "--yes").exit_code == 1
    rows = {row["action"]: row for row in audit_rows(app) if row["action"].startswith("sync.")}
    assert rows["sync.create"]["outcome"] == "failed"
    assert rows["sync.create"]["details"]["http_status"] == 400
    assert rows["sync.run.finished"]["outcome"] == "failed"
