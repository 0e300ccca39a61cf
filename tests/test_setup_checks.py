"""The setup checklist against real doubles over real HTTP: the OneLogin simulator, the
scim2-server process and the Workato developer API simulator."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator

import pytest

from dashboard.connections import service as connections
from dashboard.connections.models import ONELOGIN, SCIM, WORKATO_API
from dashboard.sandbox import workato_api
from dashboard.sandbox.onelogin import OneLoginState
from dashboard.sandbox.onelogin_seed import (
    DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET,
    ROLE_FIELDS,
    WORKATO_APP_ID,
)
from dashboard.setup import service as setup
from dashboard.setup import template
from dashboard.setup.checks import ITEMS
from tests.support.checklist import item_html
from tests.support.forms import htmx_headers
from tests.support.onelogin import running, silent_server
from tests.support.scim_server import ScimServer, serve_wsgi

ACTOR = "checks.test@example.com"
WORKATO_TOKEN = "workato-api-test-token"
WRONG_SECRET = "not-the-onelogin-secret-7f3a9c"
ONELOGIN_ITEMS = (
    "onelogin_api",
    "app_saml",
    "provisioning_enabled",
    "custom_fields",
    "app_parameters",
    "role_values",
)
SCIM_ITEMS = ("scim_api", "scim_role_schema")


@pytest.fixture(scope="module")
def scim_server() -> Iterator[ScimServer]:
    with ScimServer() as server:
        yield server


@pytest.fixture(scope="module")
def plain_scim() -> Iterator[ScimServer]:
    """scim2-server without Workato's schema files: no WorkatoRole extension."""
    with ScimServer(workato=False) as server:
        yield server


def workato_app():
    return workato_api.create_app(token=WORKATO_TOKEN, limit_per_minute=10**6)


@pytest.fixture(scope="module")
def workato_url() -> Iterator[str]:
    with serve_wsgi(workato_app()) as root:
        yield root


@pytest.fixture
def tenant() -> OneLoginState:
    """The demo tenant, seeded problems included; tests change it while it is served."""
    return OneLoginState.seeded()


@pytest.fixture
def onelogin_url(tenant: OneLoginState) -> Iterator[str]:
    with running(tenant) as url:
        yield url


@pytest.fixture
def app(make_app, request):
    """The app, with settings overridden by indirect parametrisation."""
    return make_app(**getattr(request, "param", {}))


def give(state: OneLoginState, email: str, **values: str) -> None:
    """Set custom attribute values on the user with this email."""
    state.set_custom_attributes(next(i for i, u in state.users.items() if u.email == email), values)


def fix_seeded_problems(state: OneLoginState) -> None:
    state.apps[WORKATO_APP_ID].parameters["workato_role_prod"].include_in_saml_assertion = True
    give(state, "jonas.weber@example.com", workato_role="Admin")
    give(state, "rui.costa@example.com", workato_role="Analyst")


def connect(app, kind: str, base_url: str, secret: str, **extra) -> None:
    with app.app_context():
        connections.save(kind, actor=ACTOR, base_url=base_url, secret=secret, **extra)


def connect_onelogin(app, url: str, secret=DEMO_CLIENT_SECRET, app_id=WORKATO_APP_ID) -> None:
    connect(app, ONELOGIN, url, secret, client_id=DEMO_CLIENT_ID, app_id=app_id)


def save_template(app, body: str) -> None:
    with app.app_context():
        setup.save_template(body, ACTOR)


@pytest.fixture
def wired(app, tenant, onelogin_url, scim_server, workato_url):
    """All three connections, a correct template, every manual item confirmed; the tenant
    as seeded."""
    connect_onelogin(app, onelogin_url)
    connect(app, SCIM, scim_server.base_url, scim_server.token)
    connect(app, WORKATO_API, workato_url, WORKATO_TOKEN)
    save_template(app, template.default_template(list(ROLE_FIELDS)))
    with app.app_context():
        for item in ITEMS:
            if item.manual:
                setup.confirm(item.id, ACTOR)
    return app


@pytest.fixture
def ready(wired, tenant):
    """`wired`, with the tenant's seeded problems fixed: everything is right."""
    fix_seeded_problems(tenant)
    return wired


def cli_check(app) -> tuple[int, dict, str]:
    result = app.test_cli_runner().invoke(args=["setup", "check", "--json"])
    return result.exit_code, json.loads(result.output), result.output


def by_id(document: dict) -> dict[str, dict]:
    return {item["id"]: item for item in document["items"]}


def failing(document: dict) -> set[str]:
    return {item["id"] for item in document["items"] if item["state"] == "failing"}


def run(app, item_ids: list[str] | None = None) -> dict[str, setup.ItemResult]:
    with app.app_context():
        return {r.id: r for r in setup.run(item_ids)}


def stored(app) -> dict[str, setup.ItemResult]:
    with app.app_context():
        return {r.id: r for r in setup.checklist()}


def test_a_correct_setup_verifies_every_item(ready):
    """A correct tenant, both Workato APIs and a correct template: all verified, exit 0."""
    code, document, _ = cli_check(ready)
    states = {item["id"]: item["state"] for item in document["items"]}
    assert states.pop("users_in_sync") == "cannot_check"
    assert len(states) == 15 and set(states.values()) == {"verified"}, document
    assert document["ok"] is True and code == 0


def test_the_demo_seed_fails_on_its_seeded_problems(wired):
    """The demo tenant as seeded: the parameter and the lower-case role, exit 1."""
    code, document, _ = cli_check(wired)
    items = by_id(document)
    parameters = items["app_parameters"]["message"]
    assert "workato_role_prod" in parameters and "Include in SAML assertion" in parameters
    assert "workato_role”" not in parameters  # only the prod parameter is wrong
    roles = items["role_values"]["message"]
    assert "“admin” (did you mean “Admin”?): jonas.weber@example.com (workato_role)" in roles
    assert failing(document) == {"app_parameters", "role_values"}
    assert document["ok"] is False and code == 1


def _not_saml(tenant, app, request):
    tenant.apps[WORKATO_APP_ID].auth_method = 8  # OpenId Connect


def _provisioning_off(tenant, app, request):
    tenant.apps[WORKATO_APP_ID].provisioning_enabled = False


def _field_missing(tenant, app, request):
    tenant.remove_attribute("workato_role_test")


def _parameter_missing(tenant, app, request):
    del tenant.apps[WORKATO_APP_ID].parameters["workato_role_test"]


def _parameter_mapped_elsewhere(tenant, app, request):
    parameter = tenant.apps[WORKATO_APP_ID].parameters["workato_role"]
    parameter.user_attribute_mappings = "custom_attribute_employee_id"


def _wrong_scim_token(tenant, app, request):
    connect(app, SCIM, request.getfixturevalue("scim_server").base_url, "wrong-scim-token")


def _scim_without_workato_schema(tenant, app, request):
    plain = request.getfixturevalue("plain_scim")
    connect(app, SCIM, plain.base_url, plain.token)


def _template_without_urn(tenant, app, request):
    body = json.loads(template.default_template(list(ROLE_FIELDS)))
    body["schemas"] = [template.CORE_USER]
    save_template(app, json.dumps(body))


@pytest.mark.parametrize(
    ("breakage", "expected_failing", "fragments"),
    [
        (_not_saml, {"app_saml"}, ["“Workato” is not a SAML app (auth_method 8)", "catalogue"]),
        (_provisioning_off, {"provisioning_enabled"}, ["Provisioning is off", "Enable provisi"]),
        (_field_missing, {"custom_fields"}, ["Missing custom user field(s): workato_role_test."]),
        (_parameter_missing, {"app_parameters"}, ["add a parameter “workato_role_test”"]),
        (
            _parameter_mapped_elsewhere,
            {"app_parameters"},
            ["map parameter “workato_role” to the custom field “workato_role” (it is mapped "],
        ),
        (
            _wrong_scim_token,
            {"scim_api", "scim_role_schema"},
            ["Workato rejected the SCIM token: generate a new one"],
        ),
        (_scim_without_workato_schema, {"scim_role_schema"}, [f"not list {template.WORKATO_ROLE}"]),
        (_template_without_urn, {"scim_template"}, [f'Add "{template.WORKATO_ROLE}" to the "sch']),
    ],
    ids=lambda value: value.__name__.strip("_") if callable(value) else None,
)
def test_each_live_check_fails_for_its_own_reason(
    ready, tenant, request, breakage, expected_failing, fragments
):
    """One thing broken: only the items it affects fail, each saying what to fix."""
    breakage(tenant, ready, request)
    code, document, _ = cli_check(ready)
    assert failing(document) == expected_failing, document
    for item_id in expected_failing:
        for fragment in fragments:
            assert fragment in by_id(document)[item_id]["message"]
    assert code == 1


def test_a_custom_workato_role_is_known_when_the_workato_api_is_connected(ready, tenant):
    """Role values are checked against Workato's roles, custom ones included."""
    give(tenant, "maya.chen@example.com", workato_role_test="Recipe Reviewer")
    result = run(ready, ["role_values"])["role_values"]
    assert result.state == "verified", result.message
    assert "Workato's list of roles" in result.message


@pytest.mark.parametrize(
    "app", [{"DASHBOARD_KNOWN_ROLES": "Admin,Analyst,Recipe Reviewer"}], indirect=True
)
def test_without_the_workato_api_role_values_are_checked_against_known_roles(ready, tenant):
    """Without the developer API, DASHBOARD_KNOWN_ROLES is the list of roles."""
    give(tenant, "maya.chen@example.com", workato_role_test="Recipe Reviewer")
    with ready.app_context():
        connections.clear_secret(WORKATO_API, ACTOR)
    result = run(ready, ["role_values"])["role_values"]
    assert result.state == "failing"
    assert "not in the configured roles (DASHBOARD_KNOWN_ROLES)" in result.message
    assert re.search(r"“Operator”: [^;]+ and \d+ more", result.message)
    assert "Recipe Reviewer" not in result.message


@pytest.mark.parametrize(("missing", "items"), [(ONELOGIN, ONELOGIN_ITEMS), (SCIM, SCIM_ITEMS)])
def test_a_missing_connection_cannot_be_checked_and_is_not_a_failure(
    app, tenant, onelogin_url, scim_server, workato_url, missing, items
):
    """An unconfigured connection: its items say to configure it; exit 0."""
    fix_seeded_problems(tenant)
    if missing != ONELOGIN:
        connect_onelogin(app, onelogin_url)
    if missing != SCIM:
        connect(app, SCIM, scim_server.base_url, scim_server.token)
    connect(app, WORKATO_API, workato_url, WORKATO_TOKEN)
    code, document, _ = cli_check(app)
    title = connections.TITLES[missing]
    for item_id in items:
        item = by_id(document)[item_id]
        assert item["state"] == "cannot_check"
        assert item["message"] == f"Configure the {title} on Connections first."
    assert failing(document) == set()
    assert document["ok"] is True and code == 0


def test_disabled_scim_is_said_and_is_not_a_failure(ready):
    """SCIM disabled on Connections (token kept): its items say so; exit 0."""
    with ready.app_context():
        connections.disable_scim(ACTOR, clear_token=False)
    code, document, _ = cli_check(ready)
    for item_id in SCIM_ITEMS:
        item = by_id(document)[item_id]
        assert item["state"] == "cannot_check"
        assert item["message"] == setup.SCIM_DISABLED
    assert by_id(document)["app_saml"]["state"] == "verified"
    assert document["ok"] is True and code == 0


def test_a_wrong_onelogin_secret_fails_every_onelogin_item_without_revealing_it(
    ready, onelogin_url
):
    """A rejected OneLogin secret: every OneLogin item fails with the same reason."""
    connect_onelogin(ready, onelogin_url, secret=WRONG_SECRET)
    code, document, output = cli_check(ready)
    reason = by_id(document)["onelogin_api"]["message"]
    assert "OneLogin rejected the API client id or secret" in reason
    assert "API Credentials" in reason
    for item_id in ONELOGIN_ITEMS:
        assert by_id(document)[item_id]["message"] == reason
    assert failing(document) == set(ONELOGIN_ITEMS)
    assert WRONG_SECRET not in output and DEMO_CLIENT_SECRET not in output
    assert code == 1


@pytest.mark.parametrize(
    "app",
    [{"DASHBOARD_CHECK_TIMEOUT_SECONDS": 1, "DASHBOARD_CONNECT_TIMEOUT_SECONDS": 60}],
    indirect=True,
)
def test_a_silent_onelogin_does_not_hold_up_the_page(ready, admin_client):
    """OneLogin never answers: the run gives up at the check timeout, SCIM still verified."""
    with silent_server() as silent:
        connect_onelogin(ready, silent)
        headers = htmx_headers(admin_client)
        started = time.monotonic()
        response = admin_client.post("/setup/check", headers=headers)
        elapsed = time.monotonic() - started
    assert response.status_code == 200
    assert elapsed < 10  # the 60 s connect timeout was not waited for
    page = response.get_data(as_text=True)
    for item_id in ONELOGIN_ITEMS:
        row = item_html(page, item_id)
        assert "Failing" in row and "OneLogin API did not answer within 1 s" in row
    for item_id in SCIM_ITEMS:
        assert "Verified" in item_html(page, item_id)


def test_the_page_shows_the_stored_results_after_the_services_stop(app, admin_client, tenant):
    """Viewing /setup makes no remote call: the last results and their time stay."""
    fix_seeded_problems(tenant)
    with running(tenant) as ol, ScimServer() as scim, serve_wsgi(workato_app()) as workato:
        connect_onelogin(app, ol)
        connect(app, SCIM, scim.base_url, scim.token)
        connect(app, WORKATO_API, workato, WORKATO_TOKEN)
        assert (
            admin_client.post("/setup/check", headers=htmx_headers(admin_client)).status_code == 200
        )
    results = stored(app)
    page = admin_client.get("/setup").get_data(as_text=True)
    for item_id in (*ONELOGIN_ITEMS, *SCIM_ITEMS):
        row, when = item_html(page, item_id), results[item_id].checked_at
        assert results[item_id].state == "verified"
        assert "Verified" in row
        assert f"Checked {when:%Y-%m-%d %H:%M:%S} UTC." in row
    assert stored(app) == results


def test_re_checking_one_item_returns_its_row_and_updates_only_its_result(
    ready, admin_client, tenant
):
    """htmx re-check of one item: just its <li>, and only its stored result changes."""
    before = run(ready)
    workato = tenant.apps[WORKATO_APP_ID]
    workato.provisioning_enabled = False
    workato.auth_method = 8  # app_saml would fail too, were it re-checked
    response = admin_client.post(
        "/setup/check/provisioning_enabled", headers=htmx_headers(admin_client)
    )
    fragment = response.get_data(as_text=True).strip()
    assert fragment.startswith('<li class="item item-failing" id="item-provisioning_enabled"')
    assert fragment.endswith("</li>") and fragment.count("<li") == 1
    assert "Provisioning is off" in fragment
    after = stored(ready)
    changed = after.pop("provisioning_enabled")
    assert changed.state == "failing"
    assert changed.checked_at > before.pop("provisioning_enabled").checked_at
    assert after == before


def test_an_unknown_app_id_is_named_as_the_problem(ready, onelogin_url):
    """An app id OneLogin does not know: the app items say to fix the app id."""
    connect_onelogin(ready, onelogin_url, app_id=999)
    code, document, _ = cli_check(ready)
    assert by_id(document)["onelogin_api"]["state"] == "verified"
    for item_id in ("app_saml", "provisioning_enabled", "app_parameters", "role_values"):
        message = by_id(document)[item_id]["message"]
        assert by_id(document)[item_id]["state"] == "failing"
        assert "999" in message and "app id" in message and "Connections" in message
        assert "base URL" not in message
    assert code == 1


def test_an_answer_of_the_wrong_shape_fails_its_item_instead_of_the_page(ready, tenant, app):
    """A parameter mapping that is not text: the item fails with a message, no 500."""
    tenant.apps[WORKATO_APP_ID].parameters["workato_role"].user_attribute_mappings = 5
    code, document, _ = cli_check(ready)
    item = by_id(document)["app_parameters"]
    assert item["state"] == "failing"
    assert "not as expected" in item["message"]
    assert code == 1


def test_disabling_scim_shows_at_once_instead_of_the_last_green_check(ready, app):
    """The checklist must not keep saying "verified" for SCIM after it was disabled."""
    run(app)
    assert stored(app)["scim_api"].state == "verified"
    with app.app_context():
        connections.disable_scim("t", clear_token=False)
        shown = {r.id: r for r in setup.checklist()}
    assert shown["scim_api"].state == "cannot_check"
    assert "SCIM is disabled" in shown["scim_role_schema"].message


def test_a_secret_no_key_can_decrypt_fails_the_checks_for_monitoring(ready, make_app):
    """Monitoring must see that every live check is dead, not "cannot check"."""
    from cryptography.fernet import Fernet

    other = make_app(DASHBOARD_ENCRYPTION_KEY=Fernet.generate_key().decode())
    code, document, _ = cli_check(other)
    assert by_id(document)["onelogin_api"]["state"] == "failing"
    assert "cannot be decrypted" in by_id(document)["onelogin_api"]["message"]
    assert code == 1


def test_re_enabling_scim_does_not_leave_the_disabled_message_behind(ready, app):
    """A re-check while disabled stores nothing for SCIM; after re-enabling, the last real
    result shows until the next check."""
    run(app)
    with app.app_context():
        connections.disable_scim("t", clear_token=False)
    run(app)
    with app.app_context():
        connections.enable_scim("t")
        shown = {r.id: r for r in setup.checklist()}
    assert shown["scim_api"].state == "verified"
    assert "disabled" not in shown["scim_api"].message
