"""The sync planner: one decision per person from what OneLogin says (desired) and what
Workato holds (actual). A pure function: no app, no database, no HTTP."""

from __future__ import annotations

import json

import pytest

from dashboard.connections.scim_models import WORKATO_ROLE, build_user, read_user
from dashboard.setup.template import default_template
from dashboard.sync.planner import ACTIONS, TemplateError, plan

FIELDS = ["workato_role", "workato_role_test", "workato_role_prod"]
TEMPLATE = json.loads(default_template(FIELDS))
PARAMETERS = {
    "scimusername": {"user_attribute_mappings": "email"},
    "workato_role": {"user_attribute_mappings": "custom_attribute_workato_role"},
}
ROLE = f"{WORKATO_ROLE}:workato_role"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
SUSPEND_OPS = [{"op": "replace", "path": "active", "value": False}]


def onelogin_user(user_id: int, name: str, *, status: int = 1, **roles: str) -> dict:
    return {
        "id": user_id,
        "username": name,
        "email": f"{name}@example.com",
        "firstname": name.title(),
        "lastname": "Tester",
        "status": status,
        "custom_attributes": roles,
    }


def workato_user(user_name: str, *, active: bool = True, email: str | None = None, **roles):
    first = user_name.split("@")[0].title()
    data = build_user(
        user_name,
        given_name=first,
        family_name="Tester",
        email=email or user_name,
        active=active,
        roles=roles or None,
    )
    return read_user(data | {"id": f"scim-{first.lower()}"})


ADA = onelogin_user(1, "ada", workato_role="Admin")


def ada_in_workato(**changed):
    return workato_user("ada@example.com", **({"workato_role": "Admin"} | changed))


def run(onelogin=(), app=(), workato=(), had_app=None, *, patch=False, parameters=PARAMETERS):
    return plan(
        TEMPLATE, list(onelogin), set(app), parameters, list(workato), had_app or {}, patch=patch
    )


def decide(person=ADA, workato=None, *, app=True, **options):
    """The one decision the plan makes for one OneLogin person (granted the app by default)."""
    result = run([person], {person["id"]} if app else (), [workato] if workato else (), **options)
    assert len(result.decisions) == 1, result.decisions
    return result.decisions[0]


def operations(decision) -> list[dict]:
    assert decision.request["method"] == "PATCH"
    assert decision.request["body"]["schemas"] == [PATCH_OP]
    return decision.request["body"]["Operations"]


# --- people granted the app ------------------------------------------------------------


def test_a_person_granted_the_app_is_created_with_only_the_roles_they_have():
    """Active with the app, not in Workato: POST /Users; unset role fields are not sent."""
    decision = decide(ADA)
    assert (decision.action, decision.state, decision.danger) == ("create", "not_provisioned", None)
    assert decision.roles == {
        "workato_role": "Admin",
        "workato_role_test": None,
        "workato_role_prod": None,
    }
    assert (decision.request["method"], decision.request["path"]) == ("POST", "/Users")
    body = decision.request["body"]
    assert (body["userName"], body["active"]) == ("ada@example.com", True)
    assert body["emails"] == [{"value": "ada@example.com", "type": "work", "primary": True}]
    assert body[WORKATO_ROLE] == {"workato_role": "Admin"}


@pytest.mark.parametrize("user_name", ["ada@example.com", "ADA@Example.COM"])
def test_a_matching_workato_account_is_in_sync_whatever_the_letter_case(user_name):
    """Same names, email and roles (no prod role on either side): nothing to do."""
    decision = decide(ADA, workato_user(user_name, workato_role="Admin"))
    assert (decision.action, decision.state) == ("noop", "in_sync")
    assert (decision.changes, decision.request) == ({}, None)
    assert decision.scim_id == "scim-ada"


@pytest.mark.parametrize("patch", [True, False], ids=["patch", "put"])
def test_a_changed_role_is_updated_with_patch_or_a_whole_put(patch):
    """Workato says Analyst, OneLogin says Admin: one change, sent the way Workato supports."""
    decision = decide(ADA, ada_in_workato(workato_role="Analyst"), patch=patch)
    assert (decision.action, decision.state) == ("update", "drift")
    assert decision.changes == {ROLE: ["Analyst", "Admin"]}
    assert decision.request["path"] == "/Users/scim-ada"
    if patch:
        assert operations(decision) == [{"op": "replace", "path": ROLE, "value": "Admin"}]
    else:
        body = decision.request["body"]
        assert decision.request["method"] == "PUT"
        assert (body["id"], body["active"], body["userName"]) == ("scim-ada", True, ADA["email"])
        assert body[WORKATO_ROLE] == {"workato_role": "Admin"}


def test_a_role_differing_only_in_letter_case_is_updated():
    """Workato's role names are case-sensitive: "admin" is not the "Admin" role."""
    decision = decide(ADA, ada_in_workato(workato_role="admin"))
    assert (decision.action, decision.changes) == ("update", {ROLE: ["admin", "Admin"]})


def test_a_role_removed_in_onelogin_is_removed_in_workato():
    """No test role in OneLogin any more: the PATCH removes it rather than leaving it."""
    decision = decide(ADA, ada_in_workato(workato_role_test="Operator"), patch=True)
    test_role = f"{WORKATO_ROLE}:workato_role_test"
    assert decision.changes == {test_role: ["Operator", None]}
    assert operations(decision) == [{"op": "remove", "path": test_role}]


def test_an_email_cleared_in_onelogin_is_removed_in_workato():
    """userName from the username; the email gone in OneLogin: PATCH removes Workato's."""
    parameters = PARAMETERS | {"scimusername": {"user_attribute_mappings": "username"}}
    workato = workato_user("ada", email="ada@example.com", workato_role="Admin")
    decision = decide(ADA | {"email": None}, workato, patch=True, parameters=parameters)
    assert decision.action == "update"
    assert operations(decision) == [{"op": "remove", "path": "emails"}]


@pytest.mark.parametrize("patch", [True, False], ids=["patch", "put"])
def test_a_person_active_in_onelogin_but_suspended_in_workato_is_reactivated(patch):
    """Reactivation turns the account on and brings the role up to date in one request."""
    decision = decide(ADA, ada_in_workato(active=False, workato_role="Analyst"), patch=patch)
    assert (decision.action, decision.state, decision.danger) == ("reactivate", "drift", None)
    assert decision.changes == {"active": [False, True], ROLE: ["Analyst", "Admin"]}
    if patch:
        assert operations(decision) == [
            {"op": "replace", "path": "active", "value": True},
            {"op": "replace", "path": ROLE, "value": "Admin"},
        ]
    else:
        body = decision.request["body"]
        assert (body["active"], body[WORKATO_ROLE]) == (True, {"workato_role": "Admin"})


@pytest.mark.parametrize("patch", [True, False], ids=["patch", "put"])
def test_a_person_suspended_in_onelogin_is_suspended_in_workato_with_a_warning(patch):
    """OneLogin status 2 and still active in Workato: suspend, flagged as dangerous drift."""
    decision = decide(ADA | {"status": 2}, ada_in_workato(), patch=patch)
    assert (decision.action, decision.state) == ("suspend", "drift")
    assert decision.changes == {"active": [True, False]}
    assert decision.danger == "Active in Workato although suspended in OneLogin."
    if patch:
        assert operations(decision) == SUSPEND_OPS
    else:
        body = decision.request["body"]
        assert (body["active"], "meta" in body) == (False, False)
        assert body[WORKATO_ROLE] == {"workato_role": "Admin"}


@pytest.mark.parametrize("status", [3, 7], ids=["locked", "password-expired"])
def test_a_locked_person_keeps_their_workato_account(status):
    """Only suspension (status 2) means no access: a locked OneLogin account stays active."""
    decision = decide(ADA | {"status": status}, ada_in_workato())
    assert (decision.action, decision.state) == ("noop", "in_sync")


def test_a_suspended_person_never_provisioned_is_not_created():
    """Granted the app but suspended in OneLogin, absent from Workato: nothing is sent."""
    decision = decide(ADA | {"status": 2})
    assert (decision.action, decision.state, decision.request) == ("noop", "suspended", None)


# --- people who had the app ------------------------------------------------------------


def test_losing_the_app_after_an_earlier_sync_suspends_the_account():
    """Seen with the app before, still in OneLogin without it: suspend, with a warning."""
    decision = decide(ADA, ada_in_workato(), app=False, had_app={1: "ada@example.com"})
    assert (decision.action, decision.state, decision.has_app) == ("suspend", "drift", False)
    assert "no longer grants the app" in decision.danger


def test_a_person_deleted_in_onelogin_is_suspended_in_workato():
    """Had the app, gone from OneLogin altogether: the Workato account is suspended."""
    result = run([], workato=[ada_in_workato()], had_app={1: "ada@example.com"}, patch=True)
    [decision] = result.decisions
    assert (decision.action, decision.state) == ("suspend", "drift")
    assert (decision.reason, decision.onelogin_id) == ("Deleted in OneLogin.", 1)
    assert decision.danger == "Active in Workato although the user was deleted in OneLogin."
    assert operations(decision) == SUSPEND_OPS


# --- Workato users nobody granted --------------------------------------------------------


@pytest.mark.parametrize("workato_name", ["grace@example.com", "GRACE"], ids=["email", "name"])
def test_an_orphan_known_to_onelogin_without_the_app_is_flagged(workato_name):
    """Grace is in OneLogin without the app (matched by email or username): reported, with a
    warning that she may be a leaver, and never touched."""
    grace = onelogin_user(2, "grace")
    decision = decide(grace, workato_user(workato_name, email="grace@example.com"), app=False)
    assert (decision.action, decision.state, decision.orphan_kind) == (
        "orphan",
        "orphaned",
        "known",
    )
    assert decision.request is None
    assert "Grace Tester does not have the Workato app" in decision.danger


def test_an_orphan_unknown_to_onelogin_is_reported_without_alarm():
    """The workspace owner exists only in Workato: reported as unknown, no danger."""
    owner = workato_user("owner@workspace.example.com")
    decision = decide(onelogin_user(2, "grace"), owner, app=False)
    assert (decision.action, decision.state, decision.orphan_kind) == (
        "orphan",
        "orphaned",
        "unknown",
    )
    assert (decision.danger, decision.request) == (None, None)


def test_a_suspended_workato_user_without_the_app_stays_as_it_is():
    """Already suspended in Workato and not granted: nothing to do, not counted as orphan."""
    result = run([], workato=[workato_user("old@example.com", active=False)])
    [decision] = result.decisions
    assert (decision.action, decision.state) == ("noop", "suspended")
    assert result.counts["orphan"] == 0


# --- failures and counts -----------------------------------------------------------------


def test_a_person_whose_username_renders_empty_fails_without_stopping_the_others():
    """No email behind scimusername: that person fails with a reason; Ada is still created."""
    nobody = onelogin_user(2, "nobody") | {"email": None}
    result = run([ADA, nobody], app={1, 2})
    [failed] = [d for d in result.decisions if d.state == "failed"]
    assert (failed.onelogin_id, failed.action) == (2, "noop")
    assert "renders no userName" in failed.error
    assert result.counts == dict.fromkeys(ACTIONS, 0) | {"create": 1, "noop": 1}


def test_counts_list_every_action_even_when_nothing_happens():
    """The summary always shows create, update, suspend, reactivate, noop and orphan."""
    assert run().counts == dict.fromkeys(
        ["create", "update", "suspend", "reactivate", "noop", "orphan"], 0
    )


def test_counts_add_up_over_a_mixed_workspace():
    """One of each: created, updated, suspended, reactivated, in sync, orphan."""
    result = run(
        [
            onelogin_user(1, "new", workato_role="Admin"),
            onelogin_user(2, "moved", workato_role="Admin"),
            onelogin_user(3, "gone", status=2),
            onelogin_user(4, "back"),
            onelogin_user(5, "same"),
        ],
        app={1, 2, 3, 4, 5},
        workato=[
            workato_user("moved@example.com", workato_role="Analyst"),
            workato_user("gone@example.com"),
            workato_user("back@example.com", active=False),
            workato_user("same@example.com"),
            workato_user("owner@workspace.example.com"),
        ],
    )
    assert result.counts == dict.fromkeys(ACTIONS, 1)
    assert [d.action for d in result.writes] == ["reactivate", "suspend", "update", "create"]


def test_a_template_that_cannot_be_resolved_stops_the_plan():
    """A parameter missing from the app is one clear error, not one failure per person."""
    with pytest.raises(TemplateError, match='no parameter "scimusername"'):
        run([ADA], app={1}, parameters={})


def test_roles_reported_are_onelogins_attributes_even_where_the_template_renders_none():
    """What an admin edits is OneLogin's attributes: a field the template leaves out (here
    workato_role_prod) still shows its OneLogin value."""
    grace = onelogin_user(3, "grace", workato_role="Analyst", workato_role_prod="Operator")
    without_prod = json.loads(default_template(FIELDS[:2]))
    result = plan(
        without_prod,
        [grace],
        {3},
        PARAMETERS,
        [],
        {},
        patch=False,
        role_fields=tuple(FIELDS),
    )
    [decision] = result.decisions
    assert decision.roles == {
        "workato_role": "Analyst",
        "workato_role_test": None,
        "workato_role_prod": "Operator",
    }
    assert "workato_role_prod" not in decision.request["body"][WORKATO_ROLE]  # not rendered
