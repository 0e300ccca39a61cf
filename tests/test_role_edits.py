"""Editing Workato role fields from the dashboard: written to OneLogin, read back, checked
against the known roles (case-sensitive), pushed to Workato on request, and audited.

Every test drives the pages as an admin (or a viewer) would, against the OneLogin simulator
and a real scim2-server, and looks at what the admin sees and at what OneLogin, Workato and
the audit table then hold.
"""

from __future__ import annotations

import html
import io
import re
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from dashboard.audit.models import AuditEntry
from dashboard.connections import http
from dashboard.connections import service as connections
from dashboard.connections.models import WORKATO_API
from dashboard.extensions import db
from dashboard.person import Person
from dashboard.sandbox import workato_api, workato_scim
from dashboard.setup import service as setup
from dashboard.setup.template import default_template
from dashboard.sync import runner, service
from tests.support import forms
from tests.support.fault_proxy import FaultProxy
from tests.support.forms import HTMX, token
from tests.support.scim_server import TOKEN, serve_wsgi
from tests.support.sync_world import World, empty_tenant, roles_of

ADMIN = "ada.admin@example.com"
WORKATO_API_TOKEN = "workato-api-test-token"
FIELDS = ("workato_role", "workato_role_test", "workato_role_prod")
WRITES = "set_custom_attributes"  # the OneLogin call that writes role fields

JONAS = "jonas.weber@example.com"
RUI = "rui.costa@example.com"
KWAME = "kwame.mensah@example.com"
MAYA = "maya.chen@example.com"
LIN = "lin.chen@example.com"

CONFIGURED = "the configured roles (DASHBOARD_KNOWN_ROLES)"
VALID = "Valid roles: Admin, Analyst, Operator."
CLEARING_HINT = (
    "Leave a field empty to clear it: the user keeps their Workato account, with no role there."
)


@pytest.fixture
def app(make_app, request):
    """Settings for these tests; a test may add its own with indirect parametrisation."""
    overrides = getattr(request, "param", {})
    return make_app(DASHBOARD_SYNC_EXECUTOR="worker", DASHBOARD_SYNC_RATE=0, **overrides)


# --- helpers -------------------------------------------------------------------------------


def post(client, url: str, htmx: bool = True, **data):
    """As a browser with htmx posts the forms here."""
    return forms.post(client, url, htmx, **data)


def upload(client, text: str, name: str = "roles.csv"):
    """The import page's file form, as a browser sends it."""
    data = {"csrf_token": token(client), "file": (io.BytesIO(text.encode()), name, "text/csv")}
    return client.post("/users/roles/import", data=data, content_type="multipart/form-data")


def person(app, key: str) -> Person:
    with app.app_context():
        found = db.session.scalar(select(Person).where(Person.key == key))
        db.session.expunge(found)
        return found


def pid(app, key: str) -> int:
    return person(app, key).id


def onelogin_roles(world, email: str) -> dict[str, str | None]:
    """The role fields OneLogin holds for the user now."""
    user = next(u for u in world.tenant.users.values() if u.email == email)
    return {f: user.custom_attributes.get(f) for f in FIELDS}


def everyone_in_onelogin(world) -> dict[str, dict[str, str | None]]:
    return {u.email: onelogin_roles(world, u.email) for u in world.tenant.users.values()}


def onelogin_writes(world) -> list[str]:
    return [line for line in world.tenant.log if WRITES in line]


def workato_roles(world, email: str) -> dict[str, str]:
    return roles_of(world.workato_user(email))


def role_edits(app) -> list[dict]:
    """The roles.edit audit entries, oldest first."""
    with app.app_context():
        entries = db.session.scalars(
            select(AuditEntry).where(AuditEntry.action == "roles.edit").order_by(AuditEntry.id)
        )
        return [
            {
                "actor": e.actor,
                "outcome": e.outcome,
                "user": e.target_user,
                "details": e.details,
            }
            for e in entries
        ]


def success(user: str, changes: dict, workato: str = "at the next sync") -> dict:
    """The roles.edit entry a confirmed change leaves."""
    return {
        "actor": ADMIN,
        "outcome": "success",
        "user": user,
        "details": {"changes": changes, "workato": workato},
    }


def refused(user: str | None, users: int, **details) -> dict:
    """The roles.edit entry a refused edit leaves: `user` for one user, None for several;
    `details` is problems={field: message} or error=message."""
    return {
        "actor": ADMIN,
        "outcome": "refused",
        "user": user,
        "details": {**details, "users": users},
    }


def text_of(body: str) -> str:
    """The page's text, tags dropped and whitespace folded, for reading messages."""
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", body))).strip()


def field_input(body: str, person_id: int, field: str) -> str:
    found = re.search(rf'<input id="role-{person_id}-{field}"[^>]*>', body, re.S)
    assert found, body
    return found.group(0)


def field_error(body: str, person_id: int, field: str) -> str | None:
    found = re.search(
        rf'<p class="field-error" id="role-{person_id}-{field}-error">([^<]*)</p>', body
    )
    return html.unescape(found.group(1)) if found else None


def sync(app) -> None:
    """Preview and apply a sync, worked here."""
    with app.app_context():
        run, _plan = service.make_plan(ADMIN)
        if run.total:
            service.apply(run.id, ADMIN, start=False)
            runner.process(run.id)


def plan(app) -> None:
    with app.app_context():
        service.make_plan(ADMIN)


def populate(world) -> None:
    """Jonas holds the wrong case, Rui an unknown role, Kwame none, Maya valid roles (all
    four in Workato); Lin is OneLogin's only, not provisioned yet."""
    world.jonas = world.person("Jonas", "Weber", workato_role="admin", workato_role_test="Analyst")
    world.add_workato_user(JONAS, workato_role="admin", workato_role_test="Analyst")
    world.rui = world.person("Rui", "Costa", workato_role="Developer")
    world.add_workato_user(RUI, workato_role="Developer")
    world.kwame = world.person("Kwame", "Mensah")
    world.add_workato_user(KWAME)
    world.maya = world.person("Maya", "Chen", workato_role="Analyst", workato_role_test="Operator")
    world.add_workato_user(MAYA, workato_role="Analyst", workato_role_test="Operator")
    world.lin = world.person("Lin", "Chen", workato_role="Operator")


@pytest.fixture
def world(app) -> Iterator[World]:
    with World.small(app) as world:
        populate(world)
        plan(app)
        yield world


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


# --- one user, inline ----------------------------------------------------------------------


def test_a_valid_role_saved_in_a_users_row_reaches_onelogin_and_shows_drift(
    app, admin_client, world
):
    jonas = pid(app, JONAS)
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
    jonas = pid(app, JONAS)
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
    rui = pid(app, RUI)
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
    rui = pid(app, RUI)

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
    rui = pid(app, RUI)
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
    maya = pid(app, MAYA)
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
    rui = pid(app, RUI)
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
    kwame = pid(app, KWAME)
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
    maya = pid(app, MAYA)
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
    rui = pid(app, RUI)
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
    rui = pid(app, RUI)
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
    rui = pid(app, RUI)
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
    rui = pid(app, RUI)
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
    kwame = pid(app, KWAME)
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


# --- many users at once --------------------------------------------------------------------

BULK = "/users/roles/bulk"
WEI = "wei.chen@example.com"  # added by a test: in Workato only, unknown to OneLogin


def confirmation(body: str) -> dict[str, list[str]]:
    """What the bulk confirmation's form posts (its hidden fields; the post adds the CSRF
    token), as a browser sends it."""
    form = re.search(rf'<form method="post" action="{BULK}"[^>]*>(.*?)</form>', body, re.S)
    assert form, body
    sent: dict[str, list[str]] = {}
    hidden = re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', form.group(1))
    for name, value in hidden:
        if name != "csrf_token":
            sent.setdefault(name, []).append(html.unescape(value))
    return sent


def bulk(app, client, world, **form):
    """A bulk edit as an admin makes it: the Users page's form, whose answer writes nothing
    and asks to confirm, then the confirmation's form. Returns the confirmation page's text,
    what its form posts, and the answer to that."""
    asked = post(client, BULK, htmx=False, **form)
    page = asked.get_data(as_text=True)
    assert asked.status_code == 200, page
    assert onelogin_writes(world) == []  # nothing written before the confirmation
    assert role_edits(app) == []
    confirm = confirmation(page)
    return text_of(page), confirm, post(client, BULK, htmx=False, **confirm)


def test_a_bulk_edit_not_confirmed_writes_nothing_and_lists_who_it_would_change(
    app, admin_client, world
):
    before = everyone_in_onelogin(world)
    stored = {e: person(app, e).roles for e in (JONAS, MAYA)}
    jonas, maya = pid(app, JONAS), pid(app, MAYA)
    form = {"field": "workato_role", "value": "Operator", "scope": "selected"}

    answer = post(admin_client, BULK, htmx=False, person=[jonas, maya], **form)

    body = text_of(answer.get_data(as_text=True))
    assert answer.status_code == 200, body
    assert "Set workato_role to Operator for 2 users?" in body
    assert "Nothing is written until you confirm" in body
    assert f"Jonas Weber {JONAS} : currently admin" in body  # each person, with their value
    assert f"Maya Chen {MAYA} : currently Analyst" in body
    assert RUI not in body and KWAME not in body
    assert confirmation(answer.get_data(as_text=True)) == {
        "field": ["workato_role"],
        "value": ["Operator"],
        "scope": ["selected"],
        "confirmed": ["yes"],
        "person": [str(jonas), str(maya)],
    }
    # Only "yes" confirms.
    again = post(admin_client, BULK, htmx=False, person=[jonas, maya], confirmed="no", **form)
    assert again.status_code == 200
    assert "Set workato_role to Operator for 2 users?" in text_of(again.get_data(as_text=True))

    assert onelogin_writes(world) == []
    assert everyone_in_onelogin(world) == before
    assert {e: person(app, e).roles for e in (JONAS, MAYA)} == stored
    assert role_edits(app) == []


@pytest.mark.parametrize(("value", "stored"), [("Analyst", "Analyst"), ("", None)])
def test_bulk_sets_the_field_on_the_selected_users_only(app, admin_client, world, value, stored):
    """One value for the ticked users, once confirmed; an empty value clears the field."""
    others = {e: r for e, r in everyone_in_onelogin(world).items() if e not in (JONAS, MAYA)}
    jonas, maya = pid(app, JONAS), pid(app, MAYA)
    asked, confirm, answer = bulk(
        app,
        admin_client,
        world,
        field="workato_role_test",
        value=value,
        scope="selected",
        person=[jonas, maya],
    )
    asked_for = f"Set workato_role_test to {stored}" if stored else "Clear workato_role_test"
    assert f"{asked_for} for 2 users?" in asked
    assert confirm == {
        "field": ["workato_role_test"],
        "value": [value],
        "scope": ["selected"],
        "confirmed": ["yes"],
        "person": [str(jonas), str(maya)],
    }

    body = text_of(answer.get_data(as_text=True))
    assert answer.status_code == 200, body
    assert f"workato_role_test {'set to ' + stored if stored else 'cleared'}" in body
    assert "changed in OneLogin" in body and "failed" not in body.lower()
    assert "failed" not in body.lower()

    assert onelogin_roles(world, JONAS)["workato_role_test"] == stored
    assert onelogin_roles(world, MAYA)["workato_role_test"] == stored
    assert onelogin_roles(world, JONAS)["workato_role"] == "admin"  # other fields as they were
    assert {e: r for e, r in everyone_in_onelogin(world).items() if e in others} == others
    expected = [
        success(JONAS, {"workato_role_test": ["Analyst", stored]}),
        success(MAYA, {"workato_role_test": ["Operator", stored]}),
    ]
    if stored == "Analyst":  # Jonas had it already: nothing written, nothing audited
        expected = expected[1:]
        assert "1 changed in OneLogin, 1 already so" in body
        assert f"Already so in OneLogin {JONAS}" in body
    assert role_edits(app) == expected


def test_bulk_for_the_filter_reaches_every_onelogin_user_it_matches_and_nobody_else(
    app, admin_client, world
):
    """The filter "chen" matches Lin (not yet in Workato), Maya, and Wei (in Workato only):
    Lin and Maya change, and only they; Wei, unknown to OneLogin, has no role fields there
    and is not offered."""
    world.add_workato_user(WEI)
    plan(app)
    listed = admin_client.get("/users?q=chen").get_data(as_text=True)
    assert re.findall(r'<div class="sub user-name">([^<· ]+)', listed) == [LIN, MAYA, WEI]
    others = {e: r for e, r in everyone_in_onelogin(world).items() if e not in (LIN, MAYA)}
    wei_before = world.workato_user(WEI)

    asked, confirm, answer = bulk(
        app,
        admin_client,
        world,
        field="workato_role_prod",
        value="Admin",
        scope="filter",
        q="chen",
        state="",
        role="",
    )
    assert "Set workato_role_prod to Admin for 2 users?" in asked
    assert WEI not in asked
    assert (confirm["scope"], confirm["person"]) == (
        ["selected"],
        [str(pid(app, LIN)), str(pid(app, MAYA))],
    )

    body = text_of(answer.get_data(as_text=True))
    assert answer.status_code == 200, body
    assert "workato_role_prod set to Admin" in body
    assert "2 changed in OneLogin, 0 already so" in body
    assert f"{LIN} : (not set) → Admin" in body and f"{MAYA} : (not set) → Admin" in body
    assert WEI not in body

    assert onelogin_roles(world, LIN)["workato_role_prod"] == "Admin"
    assert onelogin_roles(world, MAYA)["workato_role_prod"] == "Admin"
    assert {e: r for e, r in everyone_in_onelogin(world).items() if e in others} == others
    assert world.workato_user(WEI) == wei_before
    assert role_edits(app) == [
        success(LIN, {"workato_role_prod": [None, "Admin"]}),
        success(MAYA, {"workato_role_prod": [None, "Admin"]}),
    ]


def test_bulk_for_a_role_filter_reaches_only_that_role(app, admin_client, world):
    asked, confirm, answer = bulk(
        app,
        admin_client,
        world,
        field="workato_role_prod",
        value="Operator",
        scope="filter",
        role="Analyst",
    )
    assert "Set workato_role_prod to Operator for 1 user?" in asked
    assert confirm["person"] == [str(pid(app, MAYA))]
    assert answer.status_code == 200
    changed = {e for e, r in everyone_in_onelogin(world).items() if r["workato_role_prod"]}
    assert changed == {MAYA}
    assert [e["user"] for e in role_edits(app)] == [MAYA]


@pytest.mark.parametrize(
    ("value", "said"),
    [
        (
            "admin",
            "“admin” is not a Workato role: role names are case-sensitive. Did you mean Admin?",
        ),
        ("Developer", f"“Developer” is not in {CONFIGURED}. {VALID}"),
    ],
)
@pytest.mark.parametrize(("scope", "users"), [("selected", 2), ("filter", 5)])
def test_bulk_with_an_invalid_value_writes_nothing(
    app, admin_client, world, value, said, scope, users
):
    """Refused at the first step, before any confirmation; and a confirmation posted with
    such a value anyway is refused too. Each refusal is audited, with how many users it was
    for (the filter matches all five OneLogin users)."""
    before = everyone_in_onelogin(world)
    form = {
        "field": "workato_role",
        "value": value,
        "scope": scope,
        "person": [pid(app, KWAME), pid(app, MAYA)],
    }
    for confirmed in ("", "yes"):
        answer = post(admin_client, BULK, htmx=False, confirmed=confirmed, **form)
        body = text_of(answer.get_data(as_text=True))
        assert answer.status_code == 422, body
        assert said in body
        assert "for 2 users?" not in body and "users saved in OneLogin" not in body
    assert onelogin_writes(world) == []
    assert everyone_in_onelogin(world) == before
    entry = refused(None, users, problems={"workato_role": said})
    assert role_edits(app) == [entry, entry]


def test_bulk_without_a_field_or_users_or_for_too_many_is_refused(app, admin_client, world):
    """Back to the Users page, filtered as it was, saying why; nothing written."""
    many = list(range(1, 1002))  # one more than a bulk edit may change
    refusals = [
        ({"field": "", "value": "Admin", "person": [1]}, "Choose the role field to set."),
        (
            {"field": "workato_role", "value": "", "q": "chen"},
            "Tick at least one user, or choose every user the filters match.",
        ),
        (
            {"field": "workato_role", "value": "Admin", "person": many},
            "More than 1000 users: narrow the filter, or use `flask roles import`.",
        ),
        (
            {"field": "workato_role", "value": "Admin", "confirmed": "yes", "person": many},
            "More than 1000 users: narrow the filter, or use `flask roles import`.",
        ),
    ]
    for form, said in refusals:
        answer = post(admin_client, BULK, htmx=False, **form)
        assert answer.status_code == 303, form
        assert answer.location == ("/users?q=chen" if "q" in form else "/users")
        assert said in text_of(admin_client.get(answer.location).get_data(as_text=True))
    assert onelogin_writes(world) == []
    assert role_edits(app) == []


# --- a sync run in progress ------------------------------------------------------------------


def test_an_edit_while_a_sync_run_is_active_is_refused_naming_the_run(app, admin_client, world):
    """A queued run would send the values it read before the edit and call them in sync:
    the inline form, a confirmed bulk edit and a CSV import are refused, naming the run, and
    nothing is written."""
    with app.app_context():
        run, _plan = service.make_plan(ADMIN)
        service.apply(run.id, ADMIN, start=False)
        run_id = run.id
    said = (
        f"Run {run_id} is queued: change role fields when it has finished (it would send the "
        "values it read before your change and call them in sync)."
    )
    before = everyone_in_onelogin(world)
    stored = {e: person(app, e).roles for e in (RUI, MAYA)}
    rui, maya = pid(app, RUI), pid(app, MAYA)
    preview = upload(admin_client, f"{HEADER}\n{RUI},Operator,,\n").get_data(as_text=True)
    # The bulk form is refused at its first step already (not after confirming), and so is
    # a confirmation posted regardless.
    bulk_form = {"field": "workato_role_prod", "value": "Admin", "scope": "selected"}
    confirm = {**bulk_form, "confirmed": "yes", "person": [rui, maya]}

    answers = [
        post(admin_client, BULK, htmx=False, person=[rui, maya], **bulk_form),
        post(admin_client, f"/users/roles/{rui}", workato_role="Operator", **{"in": "row"}),
        post(admin_client, f"/users/roles/{rui}", htmx=False, workato_role="Operator"),
        post(admin_client, BULK, htmx=False, **confirm),
        post(admin_client, "/users/roles/import/apply", htmx=False, csv=previewed_csv(preview)),
    ]

    for answer in answers:
        body = text_of(answer.get_data(as_text=True))
        assert answer.status_code == 409, body
        assert said in body
        assert "Saved in OneLogin" not in body and "applied in OneLogin" not in body
    assert onelogin_writes(world) == []
    assert everyone_in_onelogin(world) == before
    assert {e: person(app, e).roles for e in (RUI, MAYA)} == stored
    assert role_edits(app) == [
        refused(None, 2, error=said),
        refused(RUI, 1, error=said),
        refused(RUI, 1, error=said),
        refused(None, 2, error=said),
        refused(RUI, 1, error=said),
    ]


# --- CSV -----------------------------------------------------------------------------------

HEADER = "email,workato_role,workato_role_test,workato_role_prod"
MIXED = "\n".join(
    [
        HEADER,
        f"{RUI},Operator,,",  # 2: good
        "nobody@example.com,Admin,,",  # 3: unknown email
        f"{KWAME.upper()},analyst,,",  # 4: wrong case (the email's case does not matter)
        f"{MAYA},,Developer,",  # 5: unknown role
        f"{JONAS},,-,",  # 6: `-` clears workato_role_test; empty leaves workato_role
        f"{LIN},,,",  # 7: all empty: no change
        "",
    ]
)
NO_USER = (
    "No user with this email in the last sync preview (preview a sync to refresh the list, "
    "or check the address)."
)
WRONG_CASE = (
    "workato_role: “analyst” is not a Workato role: role names are case-sensitive. "
    "Did you mean Analyst?"
)
UNKNOWN = f"workato_role_test: “Developer” is not in {CONFIGURED}. {VALID}"


def preview_rows(body: str) -> list[tuple[str, str, str, str]]:
    """(line, email, change, errors) of each previewed row, as text, in file order (the
    page lists rows with errors first)."""
    table = re.search(r'<table class="entries import-preview">.*?<tbody>(.*?)</tbody>', body, re.S)
    assert table, body
    found = []
    for row in re.findall(r"<tr[^>]*>(.*?)</tr>", table.group(1), re.S):
        cells = [text_of(c) for c in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
        found.append(tuple(cells))
    return sorted(found, key=lambda cells: int(cells[0]))


def previewed_csv(body: str) -> str:
    """The file the preview's Apply button sends back."""
    found = re.search(r'<input type="hidden" name="csv" value="([^"]*)">', body)
    assert found, body
    return html.unescape(found.group(1))


def section(body: str, title: str) -> list[str]:
    """The items listed under an <h3> of the import result."""
    found = re.search(rf"<h3>{title}</h3><ul[^>]*>(.*?)</ul>", body, re.S)
    return (
        [text_of(item) for item in re.findall(r"<li>(.*?)</li>", found.group(1), re.S)]
        if found
        else []
    )


def test_a_csv_preview_lists_each_rows_change_and_error_and_writes_nothing(
    app, admin_client, world
):
    answer = upload(admin_client, MIXED)
    body = answer.get_data(as_text=True)
    assert answer.status_code == 200, body
    assert "Preview: nothing is written yet" in body
    assert "6 rows: 2 differ from the values as last seen, 1 the same, 3 with errors." in text_of(
        body
    )
    assert preview_rows(body) == [
        ("2", RUI, "workato_role : Developer → becomes Operator", ""),
        ("3", "nobody@example.com", "", NO_USER),
        ("4", KWAME.upper(), "", WRONG_CASE),
        ("5", MAYA, "", UNKNOWN),
        ("6", JONAS, "workato_role_test : Analyst → becomes (cleared)", ""),
        ("7", LIN, "No change", ""),
    ]
    assert "Apply 2 rows (skip 3 with errors)" in body
    assert previewed_csv(body) == MIXED
    assert onelogin_writes(world) == []
    assert role_edits(app) == []


def test_applying_a_csv_applies_the_good_rows_and_lists_the_skipped_ones(app, admin_client, world):
    before = everyone_in_onelogin(world)
    preview = upload(admin_client, MIXED).get_data(as_text=True)
    answer = post(admin_client, "/users/roles/import/apply", htmx=False, csv=previewed_csv(preview))
    body = answer.get_data(as_text=True)
    assert answer.status_code == 200, body
    assert "Imported in part" in body
    assert "2 rows applied in OneLogin, 3 skipped for errors." in text_of(body)
    assert section(body, "Applied") == [f"Line 2: {RUI}", f"Line 6: {JONAS}"]
    assert section(body, r"Skipped \(errors in the file\)") == [
        f"Line 3: nobody@example.com: {NO_USER}",
        f"Line 4: {KWAME.upper()}: {WRONG_CASE}",
        f"Line 5: {MAYA}: {UNKNOWN}",
    ]
    assert section(body, r"Failed \(not changed\)") == []

    after = everyone_in_onelogin(world)
    assert after[RUI] == {**before[RUI], "workato_role": "Operator"}
    assert after[JONAS] == {**before[JONAS], "workato_role_test": None}
    assert {e: after[e] for e in (KWAME, MAYA, LIN)} == {e: before[e] for e in (KWAME, MAYA, LIN)}
    assert role_edits(app) == [
        success(RUI, {"workato_role": ["Developer", "Operator"]}),
        success(JONAS, {"workato_role_test": ["Analyst", None]}),
    ]


def test_an_import_onelogin_refuses_in_part_reports_exactly_the_rows_applied(
    app, admin_client, world
):
    """Rui's write is refused, Maya's change is already in OneLogin since the preview, Kwame's
    goes through: the result says exactly that."""
    text = "\n".join([HEADER, f"{RUI},Operator,,", f"{MAYA},Admin,,", f"{KWAME},,,Analyst"])
    preview = upload(admin_client, text).get_data(as_text=True)
    assert "3 rows: 3 differ from the values as last seen, 0 the same, 0 with errors." in text_of(
        preview
    )
    world.tenant.fail_next(400, path=f"/api/1/users/{world.rui.id}/{WRITES}")
    world.tenant.set_custom_attributes(world.maya.id, {"workato_role": "Admin"})

    answer = post(admin_client, "/users/roles/import/apply", htmx=False, csv=previewed_csv(preview))
    body = answer.get_data(as_text=True)
    assert answer.status_code == 200, body
    assert "Imported in part" in body
    assert "1 row applied in OneLogin, 1 failed, 1 already so." in text_of(body)
    assert section(body, "Applied") == [f"Line 4: {KWAME}"]
    assert section(body, r"Failed \(not changed\)") == [
        f"Line 2: {RUI}: OneLogin API refused the request (400). OneLogin API said: bad request"
    ]
    assert onelogin_roles(world, RUI)["workato_role"] == "Developer"
    assert onelogin_roles(world, MAYA)["workato_role"] == "Admin"
    assert onelogin_roles(world, KWAME)["workato_role_prod"] == "Analyst"
    assert [(e["user"], e["outcome"]) for e in role_edits(app)] == [
        (RUI, "failed"),
        (KWAME, "success"),
    ]
    assert role_edits(app)[1] == success(KWAME, {"workato_role_prod": [None, "Analyst"]})


@pytest.mark.parametrize(
    ("text", "said"),
    [
        (
            "mail,workato_role\nrui.costa@example.com,Operator\n",
            "No email column: the first line must be "
            "email,workato_role,workato_role_test,workato_role_prod.",
        ),
        (
            "email,Workato_Role\nrui.costa@example.com,Operator\n",
            "Unknown column Workato_Role: the columns are email and the role fields "
            "(workato_role, workato_role_test, workato_role_prod).",
        ),
        ("", "The file is empty: the first line must name the columns."),
    ],
)
def test_a_csv_with_a_bad_header_is_refused_with_a_clear_message(
    app, admin_client, world, text, said
):
    answer = upload(admin_client, text)
    body = answer.get_data(as_text=True)
    assert answer.status_code == 400
    problem = re.search(r'<p class="problem" role="alert">([^<]*)</p>', body)
    assert problem, body
    assert html.unescape(problem.group(1)) == said
    assert "import-preview" not in body
    applied = post(admin_client, "/users/roles/import/apply", htmx=False, csv=text)
    assert applied.status_code == 400
    assert onelogin_writes(world) == []
    assert role_edits(app) == []


def test_an_excel_file_with_a_bom_and_crlf_lines_is_read_and_applied(app, admin_client, world):
    text = "\ufeff" + "\r\n".join(["Email,workato_role_prod", f"{KWAME},Operator", ""])
    preview = upload(admin_client, text).get_data(as_text=True)
    assert "1 rows: 1 differ from the values as last seen, 0 the same, 0 with errors." in text_of(
        preview
    )
    answer = post(admin_client, "/users/roles/import/apply", htmx=False, csv=previewed_csv(preview))
    assert "Imported" in answer.get_data(as_text=True)
    assert onelogin_roles(world, KWAME)["workato_role_prod"] == "Operator"
    assert role_edits(app) == [success(KWAME, {"workato_role_prod": [None, "Operator"]})]


def test_the_export_lists_everyone_in_onelogin_with_their_role_fields(app, admin_client, world):
    answer = admin_client.get("/users/roles/export.csv")
    assert answer.status_code == 200
    assert answer.mimetype == "text/csv"
    assert re.fullmatch(
        r'attachment; filename="workato-roles-\d{8}-\d{4}\.csv"',
        answer.headers["Content-Disposition"],
    )
    assert answer.get_data(as_text=True).splitlines() == [
        HEADER,
        f"{JONAS},admin,Analyst,",
        f"{KWAME},,,",
        f"{LIN},Operator,,",
        f"{MAYA},Analyst,Operator,",
        f"{RUI},Developer,,",
    ]


def test_an_exported_file_imports_back_as_no_change(app, admin_client, world):
    """It previews as no change: Jonas's and Rui's rows carry the values OneLogin holds that
    are not Workato roles, so they are errors to fix; applied, Lin's and Maya's are found
    already so in OneLogin (Kwame's, all empty, sets nothing and is not applied at all)."""
    before = everyone_in_onelogin(world)
    exported = admin_client.get("/users/roles/export.csv").get_data(as_text=True)
    body = upload(admin_client, exported).get_data(as_text=True)
    assert "5 rows: 0 differ from the values as last seen, 3 the same, 2 with errors." in text_of(
        body
    )
    assert "becomes" not in body  # no row shows a change
    assert "Apply 2 rows (skip 2 with errors)" in body
    assert onelogin_writes(world) == []

    answer = post(admin_client, "/users/roles/import/apply", htmx=False, csv=previewed_csv(body))
    applied = answer.get_data(as_text=True)
    assert answer.status_code == 200, applied
    assert "0 rows applied in OneLogin, 2 already so, 2 skipped for errors." in text_of(applied)
    assert section(applied, "Applied") == []
    assert onelogin_writes(world) == []
    assert everyone_in_onelogin(world) == before
    assert role_edits(app) == []


def test_a_row_as_last_seen_is_applied_when_onelogin_holds_another_value_since(
    app, admin_client, world
):
    """Maya's row and Lin's both hold the values as last seen, so the preview shows no
    change; since the preview, OneLogin's Maya got another role. Applying compares with
    OneLogin: Maya's row is written back, Lin's (as OneLogin holds it) is already so."""
    text = "\n".join([HEADER, f"{LIN},Operator,,", f"{MAYA},Analyst,Operator,", ""])
    preview = upload(admin_client, text).get_data(as_text=True)
    assert "2 rows: 0 differ from the values as last seen, 2 the same, 0 with errors." in text_of(
        preview
    )
    assert preview_rows(preview) == [("2", LIN, "No change", ""), ("3", MAYA, "No change", "")]
    assert "Apply 2 rows" in preview
    world.tenant.set_custom_attributes(world.maya.id, {"workato_role": "Admin"})

    answer = post(admin_client, "/users/roles/import/apply", htmx=False, csv=previewed_csv(preview))

    body = answer.get_data(as_text=True)
    assert answer.status_code == 200, body
    assert "1 row applied in OneLogin, 1 already so." in text_of(body)
    assert section(body, "Applied") == [f"Line 3: {MAYA}"]
    assert onelogin_roles(world, MAYA) == {
        "workato_role": "Analyst",
        "workato_role_test": "Operator",
        "workato_role_prod": None,
    }
    assert onelogin_roles(world, LIN)["workato_role"] == "Operator"
    assert len(onelogin_writes(world)) == 1  # Maya's only
    assert person(app, MAYA).roles["workato_role"] == "Analyst"
    assert role_edits(app) == [success(MAYA, {"workato_role": ["Admin", "Analyst"]})]


def test_a_spreadsheets_trailing_empty_column_is_ignored(app, admin_client, world):
    """Excel writes `email,workato_role,` and a trailing empty cell on each row: read as the
    columns named. A row with something in that unnamed column is still an error."""
    text = "\r\n".join(
        ["email,workato_role,", f"{RUI},Operator,", f"{KWAME},Admin", f"{MAYA},Admin,Operator", ""]
    )
    preview = upload(admin_client, text).get_data(as_text=True)
    assert "3 rows: 2 differ from the values as last seen, 0 the same, 1 with errors." in text_of(
        preview
    )
    assert preview_rows(preview) == [
        ("2", RUI, "workato_role : Developer → becomes Operator", ""),
        ("3", KWAME, "workato_role : (not set) → becomes Admin", ""),
        ("4", MAYA, "", "3 cells where the first line names 2 columns."),
    ]

    answer = post(admin_client, "/users/roles/import/apply", htmx=False, csv=previewed_csv(preview))
    assert "2 rows applied in OneLogin, 1 skipped for errors." in text_of(
        answer.get_data(as_text=True)
    )
    assert onelogin_roles(world, RUI)["workato_role"] == "Operator"
    assert onelogin_roles(world, KWAME)["workato_role"] == "Admin"
    assert onelogin_roles(world, MAYA)["workato_role"] == "Analyst"
    assert role_edits(app) == [
        success(RUI, {"workato_role": ["Developer", "Operator"]}),
        success(KWAME, {"workato_role": [None, "Admin"]}),
    ]


def test_the_import_page_previews_an_uploaded_file_only(app, admin_client, world):
    """The file's text in a form field (no file chosen) is not read: the admin is asked for
    a file, and nothing is written."""
    answer = post(admin_client, "/users/roles/import", htmx=False, csv=f"{HEADER}\n{RUI},Admin,,")
    body = answer.get_data(as_text=True)
    assert answer.status_code == 400
    problem = re.search(r'<p class="problem" role="alert">([^<]*)</p>', body)
    assert problem, body
    assert html.unescape(problem.group(1)) == "Choose a CSV file to preview."
    assert "import-preview" not in body
    assert onelogin_writes(world) == []
    assert role_edits(app) == []


# --- viewers -------------------------------------------------------------------------------


def viewer_posts(app) -> list[tuple[str, dict]]:
    rui, maya = pid(app, RUI), pid(app, MAYA)
    return [
        (f"/users/roles/{rui}", {"workato_role": "Operator", "in": "row"}),
        (f"/users/roles/{rui}", {"workato_role": "Operator", "push": "yes"}),
        ("/users/roles/bulk", {"field": "workato_role", "value": "Admin", "person": [rui, maya]}),
        ("/users/roles/bulk", {"field": "workato_role", "value": "Admin", "scope": "filter"}),
        ("/users/roles/import", {"file": (io.BytesIO(MIXED.encode()), "roles.csv", "text/csv")}),
        ("/users/roles/import/apply", {"csv": MIXED}),
    ]


@pytest.mark.parametrize("htmx", [True, False])
def test_a_viewer_may_change_nothing(app, viewer_client, world, htmx):
    before = everyone_in_onelogin(world)
    workato_before = world.workato_users()
    for url, data in viewer_posts(app):
        answer = post(viewer_client, url, htmx=htmx, **data)
        assert answer.status_code == 403, (url, data)
        assert "Viewers can see everything but change nothing" in answer.get_data(as_text=True)
    assert onelogin_writes(world) == []
    assert everyone_in_onelogin(world) == before
    assert world.workato_users() == workato_before
    assert person(app, RUI).roles.get("workato_role") == "Developer"
    assert role_edits(app) == []
    with app.app_context():
        refused = db.session.scalars(
            select(AuditEntry).where(AuditEntry.action == "auth.forbidden")
        ).all()
        assert len(refused) == len(viewer_posts(app))


def test_a_viewer_sees_the_roles_without_a_form(app, viewer_client, world):
    rui = pid(app, RUI)
    page = viewer_client.get(f"/users/{rui}").get_data(as_text=True)
    assert "role-form" not in page
    assert "Developer" in page
    users = viewer_client.get("/users").get_data(as_text=True)
    assert 'id="bulk-form"' not in users
    assert "Edit the role fields" not in users


# --- the pages -----------------------------------------------------------------------------


def test_pages_render(app, admin_client, world):
    rui = pid(app, RUI)
    for url in [
        "/users",
        f"/users/{rui}",
        f"/users/roles/{rui}/edit?in=row",
        f"/users/roles/{rui}?in=row",
        "/users/roles/import",
        "/users/grant",
        "/users/grant?q=ru",
        f"/users/{rui}/live",
        "/users/roles/export.csv",
    ]:
        answer = admin_client.get(url)
        assert answer.status_code == 200, (url, answer.get_data(as_text=True)[:3000])


def test_a_field_the_template_does_not_send_is_said_to_never_reach_workato(
    app, admin_client, world
):
    """Saving workato_role_prod while the SCIM template leaves it out: OneLogin holds it,
    and both the form and the answer say Workato never gets it (not "at the next sync")."""
    with app.app_context():
        setup.save_template(default_template(["workato_role", "workato_role_test"]), ADMIN)
    jonas = pid(app, JONAS)
    form = admin_client.get(f"/users/{jonas}").get_data(as_text=True)
    assert "Not in the SCIM template: Workato never gets it (see Setup)." in form

    answer = post(admin_client, f"/users/roles/{jonas}", workato_role_prod="Operator")
    body = text_of(answer.get_data(as_text=True))
    assert answer.status_code == 200, body
    assert onelogin_roles(world, JONAS)["workato_role_prod"] == "Operator"
    assert "workato_role_prod is not in the SCIM template, so Workato never gets it" in body
    [entry] = [e for e in role_edits(app) if e["outcome"] == "success"]
    assert "not workato_role_prod: not in the SCIM template" in entry["details"]["workato"]


def test_a_row_warns_of_a_role_value_workato_does_not_know(admin_client, world):
    body = admin_client.get("/users").get_data(as_text=True)
    assert "workato_role “admin” is not a Workato role (role names are case-sensitive)." in (
        html.unescape(body)
    )
    assert "workato_role “Developer” is not a Workato role." in html.unescape(body)
