"""Editing one user's Workato role fields from the Users row or the user's page: written
to OneLogin, read back, checked against the known roles (case-sensitive), pushed to Workato
on request, refused by OneLogin, and audited.

Every test drives the pages as an admin would, against the OneLogin simulator and a real
scim2-server, and looks at what the admin sees and at what OneLogin, Workato and the audit
table then hold.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator

import pytest

from dashboard.connections import http
from dashboard.connections import service as connections
from dashboard.connections.models import WORKATO_API
from dashboard.sandbox import workato_api, workato_scim
from tests.support.fault_proxy import FaultProxy
from tests.support.forms import HTMX
from tests.support.people import person, person_id
from tests.support.role_edits import (
    ADMIN,
    CONFIGURED,
    FIELDS,
    JONAS,
    KWAME,
    MAYA,
    RUI,
    VALID,
    WRITES,
    onelogin_roles,
    onelogin_writes,
    plan,
    populate,
    post,
    refused,
    role_edits,
    success,
    sync,
    text_of,
    workato_roles,
)
from tests.support.scim_server import TOKEN, serve_wsgi
from tests.support.sync_world import World, empty_tenant, roles_of

WORKATO_API_TOKEN = "workato-api-test-token"

CLEARING_HINT = (
    "Leave a field empty to clear it: the user keeps their Workato account, with no role there."
)


# --- helpers -------------------------------------------------------------------------------


@pytest.fixture
def failing_scim(app) -> Iterator[tuple[World, FaultProxy]]:
    """The world with its scim2-server behind a fault proxy."""
    scim_app = workato_scim.create_workato_scim_app(TOKEN)
    with (
        serve_wsgi(scim_app) as root,
        FaultProxy(root) as proxy,
        World(app, empty_tenant(), scim_root=proxy.root_url) as world,
    ):
        populate(world)
        plan(app)
        yield world, proxy


@pytest.fixture
def no_backoff(monkeypatch):
    """Retries of transient failures go at once (the tests never wait)."""
    monkeypatch.setattr(http.RetryPolicy, "delay", lambda self, attempt, problem: 0.0)


@pytest.fixture
def workato_api_url() -> Iterator[str]:
    """Workato's developer API (simulated), with its custom role Recipe Reviewer."""
    simulator = workato_api.create_app(token=WORKATO_API_TOKEN, limit_per_minute=10**6)
    with serve_wsgi(simulator) as root:
        yield root


def connect_workato_api(app, url: str, secret: str = WORKATO_API_TOKEN) -> None:
    with app.app_context():
        connections.save(WORKATO_API, actor=ADMIN, base_url=url, secret=secret)


def field_input(body: str, pid: int, field: str) -> str:
    found = re.search(rf'<input id="role-{pid}-{field}"[^>]*>', body, re.S)
    assert found, body
    return found.group(0)


def field_error(body: str, pid: int, field: str) -> str | None:
    found = re.search(rf'<p class="field-error" id="role-{pid}-{field}-error">([^<]*)</p>', body)
    return html.unescape(found.group(1)) if found else None


# --- one user, inline ----------------------------------------------------------------------


def test_a_valid_role_saved_in_a_users_row_reaches_onelogin_and_shows_drift(
    app, admin_client, world
):
    jonas = person_id(app, JONAS)
    form = admin_client.get(f"/users/roles/{jonas}/edit?in=row", headers=HTMX)
    form_body = form.get_data(as_text=True)
    assert form.status_code == 200
    assert form_body.lstrip().startswith(f'<tr id="person-{jonas}"')
    assert 'value="admin"' in field_input(form_body, jonas, "workato_role")

    answer = post(
        admin_client,
        f"/users/roles/{jonas}",
        workato_role="Admin",
        workato_role_test="Analyst",
        workato_role_prod="",
        **{"in": "row"},
    )
    body = answer.get_data(as_text=True)
    assert answer.status_code == 200, body
    assert body.lstrip().startswith(f'<tr id="person-{jonas}"')  # the row, swapped whole
    assert "Saved in OneLogin. Workato gets it at the next sync." in body
    assert '<span class="state state-drift">' in body
    assert "role-form" not in body  # the row is shown again, not the form

    assert onelogin_roles(world, JONAS) == {
        "workato_role": "Admin",
        "workato_role_test": "Analyst",
        "workato_role_prod": None,
    }
    assert len(onelogin_writes(world)) == 1  # only what changed was written
    shown = person(app, JONAS)
    assert shown.state == "drift" and shown.role == "Admin"
    assert workato_roles(world, JONAS)["workato_role"] == "admin"  # until a sync
    assert role_edits(app) == [success(JONAS, {"workato_role": ["admin", "Admin"]})]

    sync(app)
    assert workato_roles(world, JONAS) == {"workato_role": "Admin", "workato_role_test": "Analyst"}
    assert person(app, JONAS).state == "in_sync"


@pytest.mark.parametrize("place", ["row", "page"])
def test_the_wrong_case_is_refused_by_its_field_with_did_you_mean(app, admin_client, world, place):
    jonas = person_id(app, JONAS)
    answer = post(
        admin_client,
        f"/users/roles/{jonas}",
        workato_role="admin",
        workato_role_test="Analyst",
        workato_role_prod="",
        **{"in": place},
    )
    body = answer.get_data(as_text=True)
    assert answer.status_code == 422
    assert ('<tr id="person-' in body) == (place == "row")
    assert field_error(body, jonas, "workato_role") == (
        "“admin” is not a Workato role: role names are case-sensitive. Did you mean Admin?"
    )
    field = field_input(body, jonas, "workato_role")
    assert 'aria-invalid="true"' in field
    assert f'aria-describedby="role-{jonas}-workato_role-error"' in field
    assert 'value="admin"' in field  # what was typed, to correct
    assert "aria-invalid" not in field_input(body, jonas, "workato_role_test")

    assert onelogin_writes(world) == []
    assert onelogin_roles(world, JONAS)["workato_role"] == "admin"
    said = "“admin” is not a Workato role: role names are case-sensitive. Did you mean Admin?"
    assert role_edits(app) == [refused(JONAS, 1, problems={"workato_role": said})]


def test_an_unknown_role_is_refused_with_the_valid_roles(app, admin_client, world):
    rui = person_id(app, RUI)
    answer = post(admin_client, f"/users/roles/{rui}", workato_role="Developer")
    body = answer.get_data(as_text=True)
    assert answer.status_code == 422
    assert field_error(body, rui, "workato_role") == (
        f"“Developer” is not in {CONFIGURED}. {VALID}"
    )
    assert 'aria-invalid="true"' in field_input(body, rui, "workato_role")
    assert onelogin_writes(world) == []
    assert onelogin_roles(world, RUI)["workato_role"] == "Developer"
    said = f"“Developer” is not in {CONFIGURED}. {VALID}"
    assert role_edits(app) == [refused(RUI, 1, problems={"workato_role": said})]


@pytest.mark.parametrize(
    "app", [{"DASHBOARD_KNOWN_ROLES": "Admin,Analyst,Operator,Developer"}], indirect=True
)
def test_with_the_workato_api_its_roles_are_the_valid_ones(
    app, admin_client, world, workato_api_url
):
    """Workato's custom role is accepted; a name only DASHBOARD_KNOWN_ROLES has is not."""
    connect_workato_api(app, workato_api_url)
    rui = person_id(app, RUI)

    said = (
        "“Developer” is not in Workato's list of roles. "
        "Valid roles: Admin, Analyst, Operator, Recipe Reviewer."
    )
    answer = post(admin_client, f"/users/roles/{rui}", workato_role="Developer")
    assert answer.status_code == 422
    assert field_error(answer.get_data(as_text=True), rui, "workato_role") == said
    assert onelogin_writes(world) == []
    assert role_edits(app) == [refused(RUI, 1, problems={"workato_role": said})]

    saved = post(admin_client, f"/users/roles/{rui}", workato_role="Recipe Reviewer")
    body = saved.get_data(as_text=True)
    assert saved.status_code == 200, body
    assert "Saved in OneLogin. Workato gets it at the next sync." in body
    assert onelogin_roles(world, RUI)["workato_role"] == "Recipe Reviewer"
    assert role_edits(app) == [
        refused(RUI, 1, problems={"workato_role": said}),
        success(RUI, {"workato_role": ["Developer", "Recipe Reviewer"]}),
    ]

    # The form (which never waits on Workato) offers the list just read.
    form = html.unescape(admin_client.get(f"/users/roles/{rui}/edit?in=row").get_data(as_text=True))
    assert '<option value="Recipe Reviewer">' in form
    assert "Roles: Admin, Analyst, Operator, Recipe Reviewer (from Workato's list of roles" in form


def test_with_the_workato_api_failing_the_configured_roles_are_used_and_said(
    app, admin_client, world, workato_api_url
):
    connect_workato_api(app, workato_api_url, secret="a-token-workato-rejects")
    rui = person_id(app, RUI)
    fallback = "Workato's list of roles could not be read ("
    instead = f"checked against {CONFIGURED} instead."

    said = f"“Recipe Reviewer” is not in {CONFIGURED}. {VALID}"
    answer = post(admin_client, f"/users/roles/{rui}", workato_role="Recipe Reviewer")
    body = answer.get_data(as_text=True)
    assert answer.status_code == 422
    assert field_error(body, rui, "workato_role") == said
    warning = re.search(r'<p class="warning">([^<]*)</p>', body)
    assert warning, body
    assert fallback in html.unescape(warning.group(1))
    assert instead in html.unescape(warning.group(1))
    assert onelogin_writes(world) == []

    saved = post(admin_client, f"/users/roles/{rui}", workato_role="Operator")
    body = saved.get_data(as_text=True)
    assert saved.status_code == 200, body
    assert onelogin_roles(world, RUI)["workato_role"] == "Operator"
    assert role_edits(app) == [
        refused(RUI, 1, problems={"workato_role": said}),
        success(RUI, {"workato_role": ["Developer", "Operator"]}),
    ]
    # The admin is told the value was checked against the fallback list, not Workato's.
    assert fallback in html.unescape(body) and instead in html.unescape(body)


def test_clearing_a_field_clears_it_in_onelogin_and_the_hint_says_what_it_means(
    app, admin_client, world
):
    maya = person_id(app, MAYA)
    form = admin_client.get(f"/users/roles/{maya}/edit?in=row").get_data(as_text=True)
    assert CLEARING_HINT in html.unescape(form)

    answer = post(
        admin_client,
        f"/users/roles/{maya}",
        workato_role="Analyst",
        workato_role_test="",
        workato_role_prod="",
        **{"in": "row"},
    )
    body = answer.get_data(as_text=True)
    assert answer.status_code == 200, body
    assert "Saved in OneLogin. Workato gets it at the next sync." in body
    assert onelogin_roles(world, MAYA) == {
        "workato_role": "Analyst",
        "workato_role_test": None,
        "workato_role_prod": None,
    }
    assert person(app, MAYA).state == "drift"
    assert role_edits(app) == [success(MAYA, {"workato_role_test": ["Operator", None]})]

    # What the hint promised: the account stays, with no role in that environment.
    sync(app)
    kept = world.workato_user(MAYA)
    assert kept["active"] is True
    assert roles_of(kept) == {"workato_role": "Analyst"}


def test_without_javascript_saving_on_the_user_page_answers_a_whole_page(app, admin_client, world):
    """The user page's form posts by itself without htmx (it has method and action): the
    admin must get a page (or a redirect back to one), not a bare fragment of it."""
    rui = person_id(app, RUI)
    answer = post(
        admin_client, f"/users/roles/{rui}", htmx=False, workato_role="Operator", **{"in": "page"}
    )
    assert onelogin_roles(world, RUI)["workato_role"] == "Operator"
    assert answer.status_code == 303, answer.get_data(as_text=True)[:200]
    assert answer.location == f"/users/{rui}"
    page = admin_client.get(answer.location).get_data(as_text=True)
    assert page.startswith("<!doctype html>"), page[:200]
    assert "Saved in OneLogin. Workato gets it at the next sync." in page


def form_fields(body: str) -> dict[str, str]:
    """What the role form posts as rendered (its inputs by name; the post adds the CSRF
    token, and the push checkbox is left unticked)."""
    form = re.search(r'<form class="role-form.*?</form>', body, re.S)
    assert form, body
    sent = {}
    for tag in re.findall(r"<input\b[^>]*>", form.group(0)):
        name = re.search(r'\bname="([^"]+)"', tag)
        value = re.search(r'\bvalue="([^"]*)"', tag)
        if name and name.group(1) not in ("csrf_token", "push"):
            sent[name.group(1)] = html.unescape(value.group(1)) if value else ""
    return sent


def test_a_field_left_as_the_form_showed_it_is_not_written(app, admin_client, world):
    """The form shows Kwame's role fields as last seen: all empty. Since then OneLogin got
    workato_role_prod = Admin. The admin sets workato_role only: the prod field, posted
    empty as it was shown, is not written, so OneLogin keeps Admin."""
    kwame = person_id(app, KWAME)
    world.tenant.set_custom_attributes(world.kwame.id, {"workato_role_prod": "Admin"})
    shown = form_fields(
        admin_client.get(f"/users/roles/{kwame}/edit?in=row").get_data(as_text=True)
    )
    assert shown == {
        "in": "row",
        **{f"shown-{f}": "" for f in FIELDS},
        **dict.fromkeys(FIELDS, ""),
    }

    answer = post(admin_client, f"/users/roles/{kwame}", **{**shown, "workato_role": "Operator"})

    body = answer.get_data(as_text=True)
    assert answer.status_code == 200, body
    assert "Saved in OneLogin. Workato gets it at the next sync." in body
    assert onelogin_roles(world, KWAME) == {
        "workato_role": "Operator",
        "workato_role_test": None,
        "workato_role_prod": "Admin",  # untouched
    }
    assert len(onelogin_writes(world)) == 1
    assert role_edits(app) == [success(KWAME, {"workato_role": [None, "Operator"]})]


def test_a_field_posted_as_shown_is_not_written_even_if_it_differs_from_the_shown_value(
    app, admin_client, world
):
    """Only a field whose posted value differs from its shown value is written: a post with
    workato_role_prod and shown-workato_role_prod both Analyst leaves OneLogin's Operator
    (set there since) untouched. Without `shown-` inputs every posted field is written."""
    maya = person_id(app, MAYA)
    world.tenant.set_custom_attributes(world.maya.id, {"workato_role_prod": "Operator"})

    kept = post(
        admin_client,
        f"/users/roles/{maya}",
        workato_role="Admin",
        workato_role_prod="Analyst",
        **{"shown-workato_role": "Analyst", "shown-workato_role_prod": "Analyst"},
    )
    assert kept.status_code == 200, kept.get_data(as_text=True)
    assert onelogin_roles(world, MAYA) == {
        "workato_role": "Admin",
        "workato_role_test": "Operator",
        "workato_role_prod": "Operator",
    }
    assert role_edits(app) == [success(MAYA, {"workato_role": ["Analyst", "Admin"]})]

    written = post(admin_client, f"/users/roles/{maya}", workato_role_prod="Analyst")
    assert written.status_code == 200, written.get_data(as_text=True)
    assert onelogin_roles(world, MAYA)["workato_role_prod"] == "Analyst"
    assert role_edits(app)[1:] == [success(MAYA, {"workato_role_prod": ["Operator", "Analyst"]})]


# --- push now ------------------------------------------------------------------------------


def test_push_now_sends_the_role_to_workato(app, admin_client, world):
    rui = person_id(app, RUI)
    answer = post(admin_client, f"/users/roles/{rui}", workato_role="Operator", push="yes")
    body = answer.get_data(as_text=True)
    assert answer.status_code == 200, body
    assert 'id="roles-card"' in body
    assert "Saved in OneLogin and sent to Workato." in body
    assert onelogin_roles(world, RUI)["workato_role"] == "Operator"
    assert workato_roles(world, RUI) == {"workato_role": "Operator"}
    assert person(app, RUI).state == "in_sync"
    assert role_edits(app) == [
        success(RUI, {"workato_role": ["Developer", "Operator"]}, workato="sent now")
    ]


def test_push_now_with_scim_disabled_saves_in_onelogin_and_says_it_was_not_sent(
    app, admin_client, world
):
    with app.app_context():
        connections.disable_scim(ADMIN, clear_token=False)
    rui = person_id(app, RUI)
    answer = post(admin_client, f"/users/roles/{rui}", workato_role="Operator", push="yes")
    body = text_of(answer.get_data(as_text=True))
    assert answer.status_code == 200, body
    said = "SCIM is disabled on Connections: re-enable it before running a sync."
    assert f"Saved in OneLogin, but not sent to Workato: {said}" in body
    assert onelogin_roles(world, RUI)["workato_role"] == "Operator"
    assert workato_roles(world, RUI) == {"workato_role": "Developer"}
    assert person(app, RUI).state == "drift"
    assert role_edits(app) == [
        success(RUI, {"workato_role": ["Developer", "Operator"]}, workato=f"not sent: {said}")
    ]


def test_push_now_with_scim_failing_saves_in_onelogin_and_says_why_sending_failed(
    app, admin_client, failing_scim, no_backoff
):
    world, proxy = failing_scim
    rui = person_id(app, RUI)
    reads_before = proxy.seen("GET")
    proxy.answer_next(20, 500)  # every try, retries included
    answer = post(admin_client, f"/users/roles/{rui}", workato_role="Operator", push="yes")
    body = text_of(answer.get_data(as_text=True))
    tries = proxy.seen("GET") - reads_before
    proxy.clear()
    said = "Workato SCIM API is failing (500); this is on their side. Try again later."
    assert answer.status_code == 200, body
    assert f"Saved in OneLogin, but sending to Workato failed: {said}" in body
    assert f"Failed Find in Workato : {said}" in body  # the push's steps, shown
    assert tries == http.RetryPolicy().attempts
    assert proxy.seen("PUT") + proxy.seen("PATCH") == 0  # nothing written to Workato
    assert onelogin_roles(world, RUI)["workato_role"] == "Operator"
    assert workato_roles(world, RUI) == {"workato_role": "Developer"}
    assert person(app, RUI).state == "drift"
    assert role_edits(app) == [
        success(RUI, {"workato_role": ["Developer", "Operator"]}, workato=f"sending failed: {said}")
    ]


# --- OneLogin refusing ---------------------------------------------------------------------


def test_onelogin_refusing_the_write_is_said_and_changes_nothing(app, admin_client, world):
    rui = person_id(app, RUI)
    before = person(app, RUI)
    world.tenant.fail_next(400, path=f"/api/1/users/{world.rui.id}/{WRITES}")
    answer = post(admin_client, f"/users/roles/{rui}", workato_role="Operator")
    body = answer.get_data(as_text=True)
    assert 'class="outcome outcome-refused"' in body
    assert "OneLogin API refused the request (400). OneLogin API said: bad request" in body
    assert "Saved in OneLogin" not in body
    assert onelogin_roles(world, RUI)["workato_role"] == "Developer"
    after = person(app, RUI)
    assert (after.roles, after.state) == (before.roles, before.state)
    assert role_edits(app) == [
        {
            "actor": ADMIN,
            "outcome": "failed",
            "user": RUI,
            "details": {
                "changes": {"workato_role": ["Developer", "Operator"]},
                "error": "OneLogin API refused the request (400). OneLogin API said: bad request",
            },
        }
    ]


def test_a_field_onelogin_does_not_define_is_refused_by_onelogin(app, admin_client, world):
    world.tenant.remove_attribute("workato_role_prod")
    kwame = person_id(app, KWAME)
    answer = post(admin_client, f"/users/roles/{kwame}", workato_role_prod="Admin", **{"in": "row"})
    body = answer.get_data(as_text=True)
    said = "OneLogin API refused the request (400). OneLogin API said: input custom_attributes is"
    assert answer.status_code == 200, body
    assert f'<p class="problem" role="status" tabindex="-1" autofocus>{said} not valid.' in body
    assert "Saved in OneLogin" not in body
    assert "workato_role_prod" not in world.tenant.users[world.kwame.id].custom_attributes
    assert person(app, KWAME).roles.get("workato_role_prod") is None
    [entry] = role_edits(app)
    assert (entry["outcome"], entry["user"]) == ("failed", KWAME)
    assert entry["details"]["changes"] == {"workato_role_prod": [None, "Admin"]}
    assert entry["details"]["error"].startswith(said)
