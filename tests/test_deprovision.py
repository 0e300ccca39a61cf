"""Giving and taking away Workato access from the user's page, as an IT admin sees it: the
change made in OneLogin (the simulator), the Workato account reconciled at once (a real
scim2-server), the outcome shown with its steps, the people row, the audit trail and the
Timeline; refusals that change nothing; OneLogin down; the live view; viewers kept out."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select

from dashboard.audit.models import AuditEntry
from dashboard.connections import http
from dashboard.connections import service as connections
from dashboard.connections.models import ONELOGIN
from dashboard.extensions import db
from dashboard.person import Person
from dashboard.sandbox.onelogin import Scheduled
from dashboard.sandbox.onelogin_seed import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, WORKATO_APP_ID
from dashboard.sync import runner, service
from dashboard.sync.models import Item
from tests.support.fault_proxy import FaultProxy
from tests.support.forms import HTMX, post
from tests.support.onelogin import refusing_port
from tests.support.people import person_id
from tests.support.signin import ADMIN_EMAIL, signed_in_admin
from tests.support.sync_world import ACTOR, World, roles_of

ADA = "ada.lovelace@example.com"
ALAN = "alan.turing@example.com"
HEDY = "hedy.lamarr@example.com"
OWNER = "workspace.owner@example.com"  # in Workato only: an orphan unknown to OneLogin
MANY = 1000  # enough failures to outlast every retry
TICK = "Tick “I understand” first."
FAILING = (  # what the simulator's 503 says, as the dashboard words it
    "OneLogin API is failing (503); this is on their side. Try again later. "
    "OneLogin API said: Service unavailable"
)
NO_GRANTING_ROLE = (
    "No OneLogin role gives this user the Workato app (it may be assigned to them directly): "
    "remove it in OneLogin under Users > the user > Applications, or deactivate the user."
)
# Both apps of a test share the database, so they share the key its secrets are sealed with.
SETTINGS = {
    "DASHBOARD_SYNC_EXECUTOR": "worker",
    "DASHBOARD_SYNC_RATE": 0,
    "DASHBOARD_ENCRYPTION_KEY": Fernet.generate_key().decode(),
}


@pytest.fixture
def app(make_app):
    return make_app(**SETTINGS)


@pytest.fixture
def impatient_admin(make_app, idp, world):
    """An admin on the same dashboard (same database, same connections) whose calls to
    OneLogin and Workato give up after 0.25 s without an answer."""
    impatient = make_app(**SETTINGS, DASHBOARD_CONNECT_TIMEOUT_SECONDS=0.25)
    return signed_in_admin(impatient, idp)


@pytest.fixture
def world(app):
    """Ada and Alan have the app through "Workato Users" and an active Workato account (Alan
    with another role in Workato than in OneLogin); Hedy is in OneLogin without the app; the
    workspace owner is in Workato only. A preview has read them all."""
    with World.small(app) as world:
        world.ada = world.person("Ada", "Lovelace", workato_role="Admin")
        world.add_workato_user(ADA, workato_role="Admin")
        world.alan = world.person("Alan", "Turing", workato_role="Operator")
        world.add_workato_user(ALAN, workato_role="Analyst")
        world.hedy = world.person("Hedy", "Lamarr", app=False, workato_role="Analyst")
        world.add_workato_user(OWNER, workato_role="Admin")
        with app.app_context():
            service.make_plan(ADMIN_EMAIL)
        yield world


# --- helpers ---------------------------------------------------------------------------


def text(response) -> str:
    """The answer's HTML with entities decoded (an apostrophe, a curly quote)."""
    return html.unescape(response.get_data(as_text=True))


def deprovision(client, app, key: str, method: str, htmx: bool = False, **form):
    data = {"method": method, "understood": "yes", **form}
    return post(client, f"/users/{person_id(app, key)}/deprovision", htmx=htmx, **data)


def steps(body: str) -> list[tuple[str, str]]:
    """(outcome, title) of each step shown."""
    return re.findall(r'<li class="step step-(\w+)">.*?<strong>([^<]+)</strong>', body)


def role_id(world, name: str) -> int:
    return next(r.id for r in world.tenant.roles.values() if r.name == name)


def members(world, name: str) -> list[int]:
    return list(world.tenant.roles[role_id(world, name)].user_ids)


def onelogin_view(world) -> dict:
    """Everything an action could change in OneLogin: users, statuses, role members."""
    return {
        "users": {i: u.status for i, u in world.tenant.users.items()},
        "roles": {r.name: sorted(r.user_ids) for r in world.tenant.roles.values()},
    }


def people_state(client, user_name: str) -> str:
    """The state label of the user's row on the Users page."""
    body = client.get("/users").get_data(as_text=True)
    row = body.split(f'<div class="sub user-name">{user_name}')[1].split("</tr>")[0]
    return re.search(r'<span class="state state-\w+">([^<]+)</span>', row).group(1)


def audit_about(app, user: str) -> list[dict]:
    """The audit entries about one user, oldest first."""
    with app.app_context():
        query = select(AuditEntry).where(AuditEntry.target_user == user).order_by(AuditEntry.id)
        return [
            {"action": e.action, "actor": e.actor, "outcome": e.outcome, "details": e.details}
            for e in db.session.scalars(query)
        ]


def refused(action: str, message: str) -> dict:
    """The audit entry a refusal leaves (see audit_about)."""
    return {
        "action": action,
        "actor": ADMIN_EMAIL,
        "outcome": "refused",
        "details": {"error": message},
    }


def timeline(body: str) -> list[str]:
    """The actions listed in the user page's Timeline card, in page order."""
    card = body.split('id="timeline-title"')[1]
    return re.findall(r"<td><code>([\w.]+)</code></td>", card)


def point_onelogin_at(app, base_url: str) -> None:
    with app.app_context():
        connections.save(
            ONELOGIN,
            actor=ACTOR,
            base_url=base_url,
            secret=DEMO_CLIENT_SECRET,
            client_id=DEMO_CLIENT_ID,
            app_id=WORKATO_APP_ID,
        )


@contextmanager
def onelogin_unreachable(app) -> Iterator[None]:
    """The OneLogin connection points at a port where nothing listens."""
    with refusing_port() as dead:
        point_onelogin_at(app, dead)
        yield


def onelogin_failing(world, path: str = "/") -> None:
    """Every OneLogin call under `path` answers 503 (with Retry-After: 0, so the dashboard's
    retries do not wait) until the test clears it."""
    world.tenant.scheduled.append(Scheduled(503, MANY, retry_after=0, path=path))


def assert_deprovisioned(admin_client, app, world, response, title: str, onelogin_line: str):
    """What every way of removing access ends with, whatever it did in OneLogin."""
    body = text(response)
    assert response.status_code == 200, body
    assert f"{title}: done" in body
    assert f"<strong>OneLogin</strong>: {onelogin_line}" in body
    assert [title for _, title in steps(body)] == [
        "Read from OneLogin",
        "Render the template",
        "Find in Workato",
        "Act",
        "Read back and compare",
    ]
    assert ("ok", "Act") in steps(body) and ("ok", "Read back and compare") in steps(body)
    assert "suspend: PATCH /Users/" in body or "suspend: PUT /Users/" in body
    assert world.workato_user(ADA)["active"] is False
    assert world.workato_user(ADA)["userName"] == ADA  # suspended, never deleted
    assert people_state(admin_client, ADA) == "Suspended"
    entries = audit_about(app, ADA)
    assert [e["action"] for e in entries][-1] == "sync.user"
    reconciled = entries[-1]
    assert reconciled["outcome"] == "success" and reconciled["details"]["action"] == "suspend"
    assert reconciled["actor"] == ADMIN_EMAIL
    return body


# --- 1. the three ways to remove access -----------------------------------------------


def test_remove_app_access_takes_the_user_out_of_the_role_and_suspends_them_in_workato(
    admin_client, app, world
):
    response = deprovision(admin_client, app, ADA, "remove_app", htmx=True)

    body = assert_deprovisioned(
        admin_client,
        app,
        world,
        response,
        "Remove app access",
        "Removed from the OneLogin role Workato Users.",
    )
    assert "<html" not in body  # htmx gets the person's body alone
    assert world.ada.id not in members(world, "Workato Users")
    assert world.tenant.users[world.ada.id].status == 1  # keeps OneLogin itself
    assert world.alan.id in members(world, "Workato Users")  # nobody else touched
    removal = next(e for e in audit_about(app, ADA) if e["action"] == "access.remove_app")
    assert removal["actor"] == ADMIN_EMAIL and removal["outcome"] == "success"
    assert removal["details"] == {"roles": ["Workato Users"]}


def test_deactivate_sets_onelogin_status_suspended_and_suspends_them_in_workato(
    admin_client, app, world
):
    response = deprovision(admin_client, app, ADA, "deactivate")

    body = assert_deprovisioned(
        admin_client,
        app,
        world,
        response,
        "Deactivate in OneLogin",
        "Deactivated in OneLogin (status: suspended).",
    )
    assert "<html" in body  # without htmx: the whole page
    assert world.tenant.users[world.ada.id].status == 2
    assert world.ada.id in members(world, "Workato Users")  # the role stays
    removal = next(e for e in audit_about(app, ADA) if e["action"] == "access.deactivate")
    assert removal["actor"] == ADMIN_EMAIL and removal["outcome"] == "success"
    assert removal["details"] == {"status": "suspended"}


def test_removing_access_while_a_run_is_active_suspends_at_once_and_supersedes_its_item(
    admin_client, app, world
):
    """A leaver is suspended in Workato at once even while a long run holds the sync; the
    run's unsent write for them is superseded, so the run does not undo it later, and the run
    page says by what."""
    with app.app_context():
        run, _plan = service.make_plan(ACTOR)  # updates Alan (Operator in OneLogin)
        service.apply(run.id, ACTOR, start=False)  # queued: the run holds the sync's slot

    response = deprovision(admin_client, app, ALAN, "remove_app", htmx=True)

    body = text(response)
    assert response.status_code == 200, body
    assert "Remove app access: done" in body, body[:3000]
    assert world.alan.id not in members(world, "Workato Users")
    assert world.workato_user(ALAN)["active"] is False  # not after the run: now
    with app.app_context():
        item = db.session.scalar(select(Item).where(Item.run_id == run.id, Item.key == ALAN))
        assert item.status == "superseded" and item.superseded_by is not None
        one_user = item.superseded_by
        runner.process(run.id)
    after = world.workato_user(ALAN)
    assert after["active"] is False and roles_of(after) == {"workato_role": "Analyst"}
    page = text(admin_client.get(f"/sync/runs/{run.id}?status=superseded"))
    assert f"Superseded by run {one_user}: {ADMIN_EMAIL} acted on this person directly." in page
    assert f'href="/sync/runs/{one_user}"' in page
    removal = next(e for e in audit_about(app, ALAN) if e["action"] == "access.remove_app")
    assert removal["outcome"] == "success"


def test_delete_removes_the_onelogin_user_and_suspends_them_in_workato(admin_client, app, world):
    response = deprovision(admin_client, app, ADA, "delete", htmx=True, typed_email=ADA)

    body = assert_deprovisioned(
        admin_client, app, world, response, "Delete in OneLogin", "Deleted in OneLogin."
    )
    assert "<html" not in body
    assert "No OneLogin user has this email" in body
    assert world.ada.id not in world.tenant.users
    assert world.ada.id not in members(world, "Workato Users")
    removal = next(e for e in audit_about(app, ADA) if e["action"] == "access.delete")
    assert removal["actor"] == ADMIN_EMAIL and removal["outcome"] == "success"
    assert removal["details"] == {"onelogin_id": world.ada.id}


def test_delete_accepts_the_email_typed_in_another_case(admin_client, app, world):
    response = deprovision(
        admin_client, app, ADA, "delete", typed_email=" ADA.Lovelace@Example.COM "
    )

    assert "Delete in OneLogin: done" in text(response)
    assert world.ada.id not in world.tenant.users
    assert world.workato_user(ADA)["active"] is False


# --- 2. refusals change nothing ------------------------------------------------------


def assert_nothing_changed(world, onelogin_before: dict, workato_before: dict) -> None:
    assert onelogin_view(world) == onelogin_before
    assert world.workato_users() == workato_before


def test_removing_access_without_the_understood_tick_is_refused(admin_client, app, world):
    before, workato = onelogin_view(world), world.workato_users()
    ada = person_id(app, ADA)

    plain = post(admin_client, f"/users/{ada}/deprovision", method="remove_app")
    assert plain.status_code == 303 and plain.location == f"/users/{ada}"
    assert "Tick “I understand” first." in text(admin_client.get(f"/users/{ada}"))
    partial = post(admin_client, f"/users/{ada}/deprovision", htmx=True, method="deactivate")
    assert partial.status_code == 400 and TICK in text(partial)
    for active in ("false", "true"):  # suspending or reactivating in Workato directly
        direct = post(admin_client, f"/users/{ada}/workato", htmx=True, active=active)
        assert direct.status_code == 400 and TICK in text(direct)

    assert_nothing_changed(world, before, workato)
    assert world.workato_user(ADA)["active"] is True
    assert audit_about(app, ADA) == [
        refused("access.remove_app", TICK),
        refused("access.deactivate", TICK),
        refused("workato.suspend", TICK),
        refused("workato.reactivate", TICK),
    ]


def test_delete_with_a_wrong_typed_email_is_refused(admin_client, app, world):
    before, workato = onelogin_view(world), world.workato_users()

    response = deprovision(admin_client, app, ADA, "delete", htmx=True, typed_email=ALAN)

    said = "Type ada.lovelace@example.com to confirm deleting them in OneLogin."
    assert response.status_code == 400
    assert said in text(response)
    assert_nothing_changed(world, before, workato)
    assert world.ada.id in world.tenant.users
    assert audit_about(app, ADA) == [refused("access.delete", said)]


def test_an_unknown_way_to_remove_access_is_refused(admin_client, app, world):
    before, workato = onelogin_view(world), world.workato_users()

    response = deprovision(admin_client, app, ADA, "wipe", htmx=True)

    assert response.status_code == 400
    assert "Unknown way to remove access: wipe." in text(response)
    assert_nothing_changed(world, before, workato)
    assert audit_about(app, ADA) == [refused("access.wipe", "Unknown way to remove access: wipe.")]


def test_an_orphan_unknown_to_onelogin_is_told_to_be_suspended_in_workato(admin_client, app, world):
    before, workato = onelogin_view(world), world.workato_users()

    response = deprovision(admin_client, app, OWNER, "remove_app", htmx=True)

    said = "OneLogin does not know this user: suspend them in Workato directly instead."
    assert response.status_code == 409
    assert said in text(response)
    assert_nothing_changed(world, before, workato)
    assert world.workato_user(OWNER)["active"] is True
    assert audit_about(app, OWNER) == [refused("access.remove_app", said)]


def test_remove_app_access_when_no_role_gives_the_app_is_refused(admin_client, app, world):
    """Since the last preview Ada left Workato Users in OneLogin (or has the app assigned
    directly): there is no role to take her out of, and nothing is changed."""
    world.revoke(world.ada.id)
    before, workato = onelogin_view(world), world.workato_users()

    response = deprovision(admin_client, app, ADA, "remove_app", htmx=True)

    assert response.status_code == 409
    assert NO_GRANTING_ROLE in text(response)
    assert_nothing_changed(world, before, workato)
    assert world.workato_user(ADA)["active"] is True
    assert audit_about(app, ADA) == [refused("access.remove_app", NO_GRANTING_ROLE)]


def test_delete_of_a_user_without_an_email_still_needs_a_typed_confirmation(
    admin_client, app, world
):
    """OneLogin holds Alan without an email: typing nothing must not confirm deleting him."""
    world.tenant.users[world.alan.id].email = ""
    with app.app_context():
        service.make_plan(ADMIN_EMAIL)
        alan = db.session.scalar(select(Person).where(Person.onelogin_id == world.alan.id))
        alan_id, alan_name = alan.id, alan.user_name
    assert "Delete in OneLogin" in text(admin_client.get(f"/users/{alan_id}"))

    response = post(
        admin_client,
        f"/users/{alan_id}/deprovision",
        htmx=True,
        method="delete",
        understood="yes",
        typed_email="",
    )

    said = f"Type {alan_name} to confirm deleting them in OneLogin."
    assert world.alan.id in world.tenant.users  # nothing typed confirms nothing
    assert response.status_code == 400
    assert said in text(response)
    assert audit_about(app, alan_name) == [refused("access.delete", said)]


# --- 3. OneLogin down while removing access -------------------------------------------


def test_onelogin_failing_during_remove_access_says_so_and_leaves_workato_alone(
    admin_client, app, world
):
    before, workato = onelogin_view(world), world.workato_users()
    onelogin_failing(world)

    response = deprovision(admin_client, app, ADA, "remove_app", htmx=True)

    body = text(response)
    assert response.status_code == 502
    assert FAILING in body
    assert "Removed from" not in body  # nothing was done
    world.tenant.scheduled.clear()
    assert_nothing_changed(world, before, workato)
    assert world.workato_user(ADA)["active"] is True
    assert audit_about(app, ADA) == [
        {
            "action": "access.remove_app",
            "actor": ADMIN_EMAIL,
            "outcome": "failed",
            "details": {"error": FAILING, "removed": []},
        }
    ]
    assert people_state(admin_client, ADA) == "In sync"


def test_onelogin_failing_on_the_role_change_leaves_the_user_in_the_role_and_in_workato(
    admin_client, app, world
):
    """The reads succeed, the write fails: nothing is half done on either side."""
    before, workato = onelogin_view(world), world.workato_users()
    onelogin_failing(world, path=f"/api/2/roles/{role_id(world, 'Workato Users')}/users")

    response = deprovision(admin_client, app, ADA, "remove_app")

    assert response.status_code == 303
    world.tenant.scheduled.clear()
    page = text(admin_client.get(response.location))
    assert FAILING in page
    assert_nothing_changed(world, before, workato)
    assert [(e["action"], e["outcome"], e["details"]) for e in audit_about(app, ADA)] == [
        ("access.remove_app", "failed", {"error": FAILING, "removed": []})
    ]


def test_remove_app_access_failing_after_leaving_one_of_two_roles_says_which_it_left(
    admin_client, app, world, monkeypatch
):
    """Ada has the app through Workato Admins and Workato Users. OneLogin takes her out of
    the first, then fails on the second: the admin is told what was done, the audit entry
    lists the role left, and Workato is not touched (she still has the app)."""
    monkeypatch.setattr(http.RetryPolicy, "delay", lambda self, attempt, problem: 0.0)
    world.tenant.roles[role_id(world, "Workato Admins")].user_ids.append(world.ada.id)
    workato = world.workato_users()
    world.tenant.fail_next(503, MANY, path=f"/api/2/roles/{role_id(world, 'Workato Users')}/users")

    response = deprovision(admin_client, app, ADA, "remove_app", htmx=True)

    world.tenant.scheduled.clear()
    said = f"Removed from Workato Admins only, then: {FAILING}"
    assert response.status_code == 502
    assert said in text(response)
    assert world.ada.id not in members(world, "Workato Admins")
    assert world.ada.id in members(world, "Workato Users")
    assert world.workato_users() == workato
    assert audit_about(app, ADA) == [
        {
            "action": "access.remove_app",
            "actor": ADMIN_EMAIL,
            "outcome": "failed",
            "details": {"error": said, "removed": ["Workato Admins"]},
        }
    ]


def test_delete_whose_answer_was_lost_still_suspends_the_user_in_workato(
    impatient_admin, app, world
):
    """OneLogin deletes the user, but its answer never arrives in time: the client retries
    the DELETE (as its docstring says it does) and meets a 404. The user is gone from
    OneLogin, so the deletion happened: Workato must be suspended, not left active."""
    # The held DELETE reaches OneLogin at 0.5 s: after the client gave up (0.25 s), before
    # its retry (0.25 s + at least 0.5 s of backoff).
    with FaultProxy(world.onelogin_url, hold_timeout=0.5) as proxy:
        point_onelogin_at(app, proxy.root_url)
        held = proxy.hold_after(1)  # the token passes; the DELETE is answered too late
        response = deprovision(impatient_admin, app, ADA, "delete", htmx=True, typed_email=ADA)
        assert held.forwarded.is_set()

    assert world.ada.id not in world.tenant.users  # OneLogin did delete her
    # The retry met 404 (already deleted): that is done, and Workato is reconciled.
    assert world.workato_user(ADA)["active"] is False, text(response)
    assert "Delete in OneLogin: done" in text(response)


# --- 4. suspending in Workato directly while OneLogin is unreachable -----------------


def test_suspend_in_workato_works_while_onelogin_is_unreachable(admin_client, app, world):
    ada = person_id(app, ADA)
    with onelogin_unreachable(app):
        response = post(
            admin_client, f"/users/{ada}/workato", htmx=True, active="false", understood="yes"
        )

    body = text(response)
    assert response.status_code == 200 and "Suspend in Workato: done" in body
    assert steps(body) == [("ok", "Find in Workato"), ("ok", "Act"), ("ok", "Read back")]
    assert world.workato_user(ADA)["active"] is False
    assert world.ada.id in members(world, "Workato Users")  # OneLogin was not asked
    suspended = audit_about(app, ADA)[-1]
    assert suspended["action"] == "workato.suspend"
    assert (suspended["outcome"], suspended["actor"]) == ("success", ADMIN_EMAIL)


# --- 5. giving access ------------------------------------------------------------------


def test_grant_search_finds_onelogin_users_without_the_app_only(admin_client, world):
    body = text(admin_client.get("/users/grant?q=example.com"))

    assert "Hedy Lamarr" in body and HEDY in body
    assert ADA not in body and ALAN not in body  # they have the app
    assert f'<option value="{role_id(world, "Workato Users")}">Workato Users</option>' in body
    assert "Employees</option>" not in body  # offered roles all grant the app
    nobody = text(admin_client.get("/users/grant?q=lovelace", headers=HTMX))
    assert "No OneLogin user without the app matches “lovelace”." in nobody


def test_grant_adds_the_user_to_the_role_and_provisions_them_in_workato(admin_client, app, world):
    assert world.workato_user(HEDY) is None
    workato_users = role_id(world, "Workato Users")

    response = post(
        admin_client, "/users/grant", onelogin_id=str(world.hedy.id), role_id=str(workato_users)
    )

    body = text(response)
    assert response.status_code == 200, body
    assert "Give access: done" in body
    assert "Added to the OneLogin role Workato Users, which grants the Workato app." in body
    assert "create: POST /Users answered 201" in body
    assert world.hedy.id in members(world, "Workato Users")
    created = world.workato_user(HEDY)
    assert created["active"] is True and roles_of(created) == {"workato_role": "Analyst"}
    granted = audit_about(app, HEDY)
    assert [(e["action"], e["outcome"]) for e in granted] == [
        ("access.grant", "success"),
        ("sync.create", "success"),  # the write, recorded as every run's writes are
        ("sync.user", "success"),
    ]
    assert granted[0]["details"] == {"role": "Workato Users"}


def test_grant_through_a_role_that_does_not_give_the_app_is_refused(admin_client, app, world):
    before, workato = onelogin_view(world), world.workato_users()

    response = post(
        admin_client,
        "/users/grant",
        onelogin_id=str(world.hedy.id),
        role_id=str(role_id(world, "Employees")),
    )

    said = "That OneLogin role does not grant the Workato app: choose one that does."
    assert response.status_code == 400
    assert said in text(response)
    assert_nothing_changed(world, before, workato)
    assert world.workato_user(HEDY) is None
    assert audit_about(app, HEDY) == [refused("access.grant", said)]


def test_grant_with_onelogin_failing_says_so_and_changes_nothing(admin_client, app, world):
    before, workato = onelogin_view(world), world.workato_users()
    onelogin_failing(world)

    response = post(
        admin_client,
        "/users/grant",
        onelogin_id=str(world.hedy.id),
        role_id=str(role_id(world, "Workato Users")),
    )

    world.tenant.scheduled.clear()
    assert response.status_code == 502
    assert FAILING in text(response)
    assert_nothing_changed(world, before, workato)
    assert world.workato_user(HEDY) is None
    assert audit_about(app, str(world.hedy.id)) == [
        {
            "action": "access.grant",
            "actor": ADMIN_EMAIL,
            "outcome": "failed",
            "details": {"error": FAILING},
        }
    ]


# --- 6. the live view --------------------------------------------------------------------


def test_live_view_shows_both_sides_and_the_difference(admin_client, app, world):
    world.tenant.provisioning[(world.alan.id, WORKATO_APP_ID)] = (
        "provisioning_failed",
        "enabling_failed",
    )

    response = admin_client.get(f"/users/{person_id(app, ALAN)}/live")

    body = text(response)
    assert response.status_code == 200
    assert "<dt>Status</dt><dd>Active</dd>" in body
    assert "<dt>Workato app</dt><dd>Granted by Workato Users</dd>" in body
    assert "<code>provisioning_failed</code> (enabling_failed)" in body
    assert '"userName": "alan.turing@example.com"' in body  # the SCIM resource itself
    assert "Difference: Workato has → OneLogin says" in body
    assert (
        '<span class="field">workato_role</span>: <span class="old">Analyst</span>'
        in body.replace("\n", "")
    )
    assert '<span class="new">Operator</span>' in body


def test_live_view_with_onelogin_down_still_shows_workato(admin_client, app, world):
    onelogin_failing(world)

    response = admin_client.get(f"/users/{person_id(app, ALAN)}/live")

    body = text(response)
    assert response.status_code == 200
    assert "OneLogin API is failing (503); this is on their side. Try again later." in body
    assert '"userName": "alan.turing@example.com"' in body
    assert "Difference: Workato has" not in body  # nothing to compare with


# --- 7. the timeline ---------------------------------------------------------------------


def test_the_timeline_lists_what_happened_to_the_user_newest_first(admin_client, app, world):
    ada = person_id(app, ADA)
    deprovision(admin_client, app, ADA, "deactivate", htmx=True)
    post(admin_client, f"/users/{ada}/workato", htmx=True, active="true", understood="yes")

    page = text(admin_client.get(f"/users/{ada}"))

    assert timeline(page) == [
        "workato.reactivate",
        "sync.reactivate",
        "sync.user",
        "sync.suspend",
        "access.deactivate",
    ]


# --- 8. viewers --------------------------------------------------------------------------


def test_a_viewer_can_neither_remove_nor_give_access(viewer_client, app, world):
    before, workato = onelogin_view(world), world.workato_users()
    ada = person_id(app, ADA)
    answers = [
        post(
            viewer_client,
            f"/users/{ada}/deprovision",
            method=method,
            understood="yes",
            typed_email=ADA,
        )
        for method in ("remove_app", "deactivate", "delete")
    ]
    answers.append(post(viewer_client, f"/users/{ada}/workato", active="false", understood="yes"))
    answers.append(
        post(
            viewer_client,
            "/users/grant",
            onelogin_id=str(world.hedy.id),
            role_id=str(role_id(world, "Workato Users")),
        )
    )

    assert [a.status_code for a in answers] == [403] * 5
    assert_nothing_changed(world, before, workato)
    assert audit_about(app, ADA) == [] and audit_about(app, HEDY) == []


def test_a_viewer_is_not_offered_the_give_access_form(viewer_client, world):
    """As on the user's page, a viewer is shown no action they may not take."""
    body = text(viewer_client.get("/users/grant?q=lamarr"))

    assert "Hedy Lamarr" in body
    assert "Give access and provision" not in body
