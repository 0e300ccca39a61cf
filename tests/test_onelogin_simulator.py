"""The OneLogin simulator: it behaves as OneLogin does, and its every answer matches
OneLogin's published OpenAPI spec (patched only for the spec's known defects, listed below)."""

from __future__ import annotations

import base64
import http.client
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
import yaml
from flask.testing import FlaskClient
from openapi_core import OpenAPI
from openapi_core.contrib.requests import RequestsOpenAPIRequest, RequestsOpenAPIResponse
from openapi_core.validation.exceptions import ValidationError

from dashboard.sandbox.onelogin import (
    AUTH_ONLY,
    MANAGE_ALL,
    MANAGE_USERS,
    READ_ALL,
    READ_USERS,
    OneLoginState,
)
from dashboard.sandbox.onelogin_api import create_app
from dashboard.sandbox.onelogin_seed import (
    DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET,
    SLACK_APP_ID,
    WORKATO_APP_ID,
)
from tests.support.onelogin import running

SPEC_FILE = Path(__file__).parent / "fixtures" / "onelogin-openapi.yaml"
TOKEN = "/auth/oauth2/v2/token"


# --- a signed-in caller ----------------------------------------------------------------


class Api:
    """Calls the simulator in-process, as a holder of one API credential."""

    def __init__(self, state: OneLoginState):
        self.state = state
        self.client: FlaskClient = create_app(state).test_client()

    def token(self, client_id: str = DEMO_CLIENT_ID, secret: str = DEMO_CLIENT_SECRET):
        auth = f"client_id:{client_id}, client_secret:{secret}"
        grant = {"grant_type": "client_credentials"}
        return self.client.post(TOKEN, headers={"Authorization": auth}, json=grant)

    def as_scope(self, scope: str) -> str:
        client_id = "client-" + scope.replace(" ", "-").lower()
        self.state.add_credential(client_id, "secret", scope)
        return self.token(client_id, "secret").json["access_token"]

    def call(self, method: str, path: str, token: str | None = None, **kwargs: Any):
        token = token or self.token().json["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        return self.client.open(path, method=method, headers=headers, **kwargs)

    def get(self, path: str, **kwargs: Any):
        return self.call("GET", path, **kwargs)


@pytest.fixture
def state() -> OneLoginState:
    return OneLoginState.seeded()


@pytest.fixture
def api(state: OneLoginState) -> Api:
    return Api(state)


# --- tokens, scopes, faults ------------------------------------------------------------


def test_token_is_issued_for_the_right_credential(api: Api) -> None:
    """The right client id and secret get a bearer token valid for ten hours."""
    body = api.token().json
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 36000
    assert body["account_id"] == api.state.account_id
    assert api.token().json["access_token"] == body["access_token"]


def test_wrong_secret_gets_401_in_onelogins_words(api: Api) -> None:
    """A wrong secret is refused with OneLogin's error body, and no token."""
    response = api.token(secret="not-the-secret")
    assert response.status_code == 401
    assert response.json == {
        "error": True,
        "code": 401,
        "type": "Unauthorized",
        "message": "Authentication Failure",
    }


def test_api_calls_need_a_live_token(api: Api) -> None:
    """No token, an unknown token or an expired one gets 401; a fresh token works again."""
    assert api.client.get("/api/2/users").status_code == 401
    assert api.get("/api/2/users", token="forged").status_code == 401
    old = api.token().json["access_token"]
    api.state.expire_tokens()
    assert api.get("/api/2/users", token=old).status_code == 401
    fresh = api.token().json["access_token"]
    assert fresh != old
    assert api.get("/api/2/users", token=fresh).status_code == 200


@pytest.mark.parametrize(
    ("scope", "method", "path", "status"),
    [
        (AUTH_ONLY, "GET", "/api/2/users", 403),
        (READ_USERS, "GET", "/api/2/users", 200),
        (READ_USERS, "GET", f"/api/2/apps/{WORKATO_APP_ID}", 403),
        (READ_ALL, "GET", f"/api/2/apps/{WORKATO_APP_ID}", 200),
        (READ_ALL, "PUT", "/api/1/users/52140001/set_custom_attributes", 403),
        (READ_ALL, "POST", "/api/2/roles/700001/users", 403),
        (MANAGE_USERS, "POST", "/api/2/roles/700001/users", 403),
        (READ_ALL, "DELETE", "/api/2/users/52140004", 403),
        (MANAGE_USERS, "DELETE", "/api/2/users/52140004", 204),
    ],
)
def test_credential_scope_limits_what_a_token_may_do(api, scope, method, path, status) -> None:
    """A call outside the credential's scope is forbidden, inside it goes through."""
    body = {"custom_attributes": {"workato_role": "Admin"}} if "set_" in path else [52140002]
    response = api.call(method, path, token=api.as_scope(scope), json=body)
    assert response.status_code == status
    if status == 403:
        assert "scope" in json.dumps(response.json)


def test_rate_limit_answers_429_with_retry_after(api: Api, state: OneLoginState) -> None:
    """Past the limit, calls get 429 with Retry-After and the X-RateLimit headers."""
    state.rate_limit = 2
    token = api.token().json["access_token"]
    first = api.get("/api/2/users", token=token)
    assert first.headers["X-RateLimit-Limit"] == "2"
    assert first.headers["X-RateLimit-Remaining"] == "1"
    assert api.get("/api/2/users", token=token).status_code == 200
    refused = api.get("/api/2/users", token=token)
    assert refused.status_code == 429
    assert refused.headers["X-RateLimit-Remaining"] == "0"
    assert int(refused.headers["Retry-After"]) == int(refused.headers["X-RateLimit-Reset"]) > 0


def test_rate_limit_reports_the_budget_without_spending_it(api: Api, state) -> None:
    """GET /auth/rate_limit says the limit, the calls left and the seconds to the reset, as
    the other answers' X-RateLimit headers do, and is not counted itself."""
    state.set_budget(40, limit=100, reset_in=600)
    token = api.token().json["access_token"]
    first = api.get("/auth/rate_limit", token=token).json["data"]
    assert first == {
        "X-RateLimit-Limit": 100,
        "X-RateLimit-Remaining": 40,
        "X-RateLimit-Reset": 600,
    }
    assert api.get("/auth/rate_limit", token=token).json["data"]["X-RateLimit-Remaining"] == 40
    counted = api.get("/api/2/users", token=token)
    assert counted.headers["X-RateLimit-Remaining"] == "39"
    assert api.get("/auth/rate_limit", token=token).json["data"]["X-RateLimit-Remaining"] == 39


def test_a_429_may_come_without_retry_after(api: Api, state: OneLoginState) -> None:
    """With rate_retry_after off, a 429 past the budget says when only in X-RateLimit-Reset."""
    state.set_budget(0, reset_in=90)
    state.rate_retry_after = False
    refused = api.get("/api/2/users")
    assert refused.status_code == 429
    assert "Retry-After" not in refused.headers
    assert refused.headers["X-RateLimit-Reset"] == "90"


def test_switches_make_the_next_calls_fail(api: Api, state: OneLoginState) -> None:
    """throttle_next and fail_next answer the next calls under a path, then stop."""
    token = api.token().json["access_token"]
    state.throttle_next(1, retry_after=7, path="/api/2/users")
    state.fail_next(503, times=1, path="/api/2/users")
    throttled = api.get("/api/2/users", token=token)
    assert (throttled.status_code, throttled.headers["Retry-After"]) == (429, "7")
    assert api.get("/api/2/users", token=token).status_code == 503
    assert api.get("/api/2/users", token=token).status_code == 200


def test_unknown_route_is_404() -> None:
    """A path OneLogin does not have answers 404 No Route Exists."""
    response = Api(OneLoginState()).client.get("/api/9/nothing")
    assert response.status_code == 404
    assert response.json["message"] == "No Route Exists"


# --- users and custom attributes -------------------------------------------------------


def test_users_page_with_a_cursor(api: Api, state: OneLoginState) -> None:
    """Users come at most 100 a page; After-Cursor leads through all of them once."""
    for n in range(130):
        state.add_user("Test", f"Person{n}")
    seen, cursor, pages = [], None, 0
    while True:
        query = {"limit": 500} | ({"cursor": cursor} if cursor else {})
        response = api.get("/api/2/users", query_string=query)
        seen += [u["id"] for u in response.json]
        pages += 1
        cursor = response.headers.get("After-Cursor")
        if not cursor:
            break
    assert pages == -(-len(state.users) // 100) >= 2
    assert seen == sorted(state.users)


def test_paging_headers_can_arrive_in_lower_case(state: OneLoginState) -> None:
    """With lower_case_headers the wire carries after-cursor, as OneLogin sometimes sends."""
    state.lower_case_headers = True
    with running(state) as url:
        token = requests.post(
            url + TOKEN,
            headers={
                "Authorization": f"client_id:{DEMO_CLIENT_ID}, client_secret:{DEMO_CLIENT_SECRET}"
            },
            json={"grant_type": "client_credentials"},
            timeout=5,
        ).json()["access_token"]
        connection = http.client.HTTPConnection(urlsplit(url).netloc, timeout=5)
        try:
            connection.request(
                "GET", "/api/2/users?limit=5", headers={"Authorization": f"Bearer {token}"}
            )
            names = [name for name, _ in connection.getresponse().getheaders()]
        finally:
            connection.close()
    assert "after-cursor" in names
    assert "x-ratelimit-remaining" in names


def test_users_filter_and_select_fields(api: Api) -> None:
    """user_ids, email and username filter; fields selects what each user carries."""
    by_ids = api.get("/api/2/users", query_string={"user_ids": "52140002,52140004"}).json
    assert [u["username"] for u in by_ids] == ["liam.oconnor", "jonas.weber"]
    by_email = api.get("/api/2/users", query_string={"email": "MAYA.CHEN@example.com"}).json
    assert [u["id"] for u in by_email] == [52140001]
    by_pattern = api.get("/api/2/users", query_string={"username": "*.chen"}).json
    assert [u["id"] for u in by_pattern] == [52140001]
    slim = api.get("/api/2/users", query_string={"fields": "custom_attributes", "limit": 1}).json
    assert slim == [{"id": 52140001, "custom_attributes": slim[0]["custom_attributes"]}]


def test_unimplemented_filters_are_refused_not_ignored(api: Api) -> None:
    """A filter the simulator does not implement is a 400, as OneLogin does for unknown ones."""
    response = api.get("/api/2/users", query_string={"updated_since": "2025-01-01"})
    assert response.status_code == 400
    assert "updated_since" in response.json["message"]


def test_user_statuses_follow_onelogin(api: Api, state: OneLoginState) -> None:
    """Status is one of 0-5, 7, 8; PUT changes it and refuses anything else with 422."""
    assert api.get("/api/2/users/52140007").json["status"] == 2  # seeded: suspended
    assert api.call("PUT", "/api/2/users/52140001", json={"status": 3}).json["status"] == 3
    assert api.call("PUT", "/api/2/users/52140001", json={"status": 6}).status_code == 422
    assert api.call("PUT", "/api/2/users/52140001", json={"status": True}).status_code == 422
    assert state.users[52140001].status == 3


def test_status_change_answers_the_user_and_moves_updated_at(state: OneLoginState) -> None:
    """PUT {"status": 2} suspends: the answer is the whole user, updated now; 1 reactivates."""
    state.clock = lambda: 1_800_000_000.0  # 2027-01-15T08:00:00Z
    api = Api(state)
    suspended = api.call("PUT", "/api/2/users/52140004", json={"status": 2}).json
    assert (suspended["id"], suspended["username"], suspended["status"]) == (
        52140004,
        "jonas.weber",
        2,
    )
    assert suspended["updated_at"] == "2027-01-15T08:00:00.000Z"
    assert suspended["custom_attributes"]["workato_role"] == "admin"  # untouched
    assert api.get("/api/2/users/52140004").json["status"] == 2
    assert api.call("PUT", "/api/2/users/52140004", json={"status": 1}).json["status"] == 1


def test_deleting_a_user_answers_204_then_404(api: Api, state: OneLoginState) -> None:
    """DELETE /users/{id} answers 204 with no body; the user is gone from the users, from
    every role (and so the app) and from OneLogin's provisioning; a second DELETE is a 404."""
    jonas = 52140004
    assert jonas in state.app_user_ids(WORKATO_APP_ID)
    deleted = api.call("DELETE", f"/api/2/users/{jonas}")
    assert (deleted.status_code, deleted.data) == (204, b"")
    assert jonas not in [u["id"] for u in api.get("/api/2/users").json]
    assert all(jonas not in role.user_ids for role in state.roles.values())
    assert jonas not in state.app_user_ids(WORKATO_APP_ID)
    assert all(user != jonas for user, _ in state.provisioning)
    assert api.get(f"/api/2/users/{jonas}").status_code == 404
    again = api.call("DELETE", f"/api/2/users/{jonas}")
    assert again.status_code == 404
    assert again.json == {"error": True, "code": 404, "type": "Not Found", "message": "Not Found"}


def test_custom_attributes_are_written_through_v1_and_read_through_v2(api: Api) -> None:
    """v1 set_custom_attributes writes; an empty value clears; v2 reads them back."""
    body = {"custom_attributes": {"workato_role": "Admin", "workato_role_prod": ""}}
    response = api.call("PUT", "/api/1/users/52140004/set_custom_attributes", json=body)
    assert response.json["status"]["code"] == 200
    values = api.get("/api/2/users/52140004").json["custom_attributes"]
    assert (values["workato_role"], values["workato_role_prod"]) == ("Admin", None)


def test_unknown_custom_attribute_is_a_400_listing_the_valid_ones(api: Api) -> None:
    """Writing an attribute that does not exist is refused with OneLogin's v1 message."""
    body = {"custom_attributes": {"workato_rol": "Admin"}}
    response = api.call("PUT", "/api/1/users/52140004/set_custom_attributes", json=body)
    assert response.status_code == 400
    message = response.json["status"]["message"]
    assert message.startswith("input custom_attributes is not valid")
    assert "workato_role_prod" in message


def test_custom_attribute_definitions_on_v1_and_v2_agree(api: Api, state: OneLoginState) -> None:
    """Both paths list the same short names, in order, including newly defined ones."""
    state.define_attribute("workato_role_uat", "Workato role (UAT)")
    v2 = [a["shortname"] for a in api.get("/api/2/users/custom_attributes").json]
    assert api.get("/api/1/users/custom_attributes").json["data"] == [v2]
    assert v2[-1] == "workato_role_uat"


# --- apps, roles and provisioning ------------------------------------------------------


def test_workato_app_is_saml_with_provisioning_and_role_parameters(api: Api) -> None:
    """The seeded app: SAML, provisioning on, role parameters mapped to same-named fields."""
    app = api.get(f"/api/2/apps/{WORKATO_APP_ID}").json
    assert (app["auth_method"], app["provisioning"]) == (2, {"enabled": True})
    for short in ("workato_role", "workato_role_test", "workato_role_prod"):
        assert app["parameters"][short]["user_attribute_mappings"] == f"custom_attribute_{short}"


def test_seeded_problems_are_there_to_find(api: Api) -> None:
    """The demo's seeded problems: prod role not in the assertion, a role in the wrong case,
    an assigned user without a role, failed and pending provisioning."""
    parameters = api.get(f"/api/2/apps/{WORKATO_APP_ID}").json["parameters"]
    assert parameters["workato_role_prod"]["include_in_saml_assertion"] is False
    assert parameters["workato_role"]["include_in_saml_assertion"] is True
    users = api.get("/api/2/users").json
    roles = {u["username"]: u["custom_attributes"]["workato_role"] for u in users}
    assert roles["jonas.weber"] == "admin"
    assert roles["kwame.mensah"] is None
    states = {
        u: api.get(f"/api/2/users/{u}/apps").json[0]["provisioning_state"]
        for u in (52140009, 52140012)
    }
    assert states == {52140009: "provisioning_failed", 52140012: "modifying_pending_approval"}
    assert all(u["email"].endswith("@example.com") for u in users)


def test_app_changes_show_in_the_api(api: Api, state: OneLoginState) -> None:
    """Toggling provisioning or a parameter in the state is what the API then answers."""
    app = state.apps[WORKATO_APP_ID]
    app.provisioning_enabled = False
    app.parameters["workato_role_prod"].include_in_saml_assertion = True
    del app.parameters["workato_role_test"]
    answer = api.get(f"/api/2/apps/{WORKATO_APP_ID}").json
    assert answer["provisioning"] == {"enabled": False}
    assert answer["parameters"]["workato_role_prod"]["include_in_saml_assertion"] is True
    assert "workato_role_test" not in answer["parameters"]


def test_app_users_are_who_hold_a_role_with_the_app(api: Api, state: OneLoginState) -> None:
    """App users come through roles, up to 1000 a page; removed people are not listed."""
    listed = api.get(f"/api/2/apps/{WORKATO_APP_ID}/users", query_string={"limit": 5000}).json
    assert [u["id"] for u in listed] == state.app_user_ids(WORKATO_APP_ID)
    assert {"noah.williams", "omar.haddad", "hannah.schmidt"}.isdisjoint(
        u["username"] for u in listed
    )
    for n in range(1100):
        state.roles[700002].user_ids.append(state.add_user("Bulk", f"User{n}").id)
    big = api.get(f"/api/2/apps/{WORKATO_APP_ID}/users", query_string={"limit": 5000})
    assert len(big.json) == 1000
    assert big.headers["After-Cursor"]


def test_role_membership_changes_take_a_bare_array(api: Api, state: OneLoginState) -> None:
    """POST and DELETE /roles/{id}/users take a JSON array of ids and change app access."""
    roles = api.get("/api/2/roles", query_string={"app_id": WORKATO_APP_ID}).json
    assert [r["name"] for r in roles] == ["Workato Admins", "Workato Users"]
    noah = 52140008
    assert api.call("POST", "/api/2/roles/700002/users", json=[noah]).json == [{"id": noah}]
    assert noah in state.app_user_ids(WORKATO_APP_ID)
    members = api.get("/api/2/roles/700002/users").json
    assert {"id": noah, "name": "Noah Williams", "username": "noah.williams"} in members
    assert api.call("DELETE", "/api/2/roles/700002/users", json=[noah]).status_code == 204
    assert noah not in state.app_user_ids(WORKATO_APP_ID)
    assert api.call("POST", "/api/2/roles/700002/users", json={"ids": [1]}).status_code == 400
    assert api.call("POST", "/api/2/roles/700002/users", json=[999]).status_code == 422


def test_user_apps_carry_provisioning_state(api: Api, state: OneLoginState) -> None:
    """Each app a user holds says whether it provisions and how far that user got."""
    state.provisioning[(52140001, WORKATO_APP_ID)] = ("deleting_failed", "disabling_failed")
    apps = {a["id"]: a for a in api.get("/api/2/users/52140001/apps").json}
    assert apps[WORKATO_APP_ID]["provisioning_state"] == "deleting_failed"
    assert apps[SLACK_APP_ID]["provisioning_enabled"] is False
    assert "provisioning_state" not in apps[SLACK_APP_ID]


# --- events ----------------------------------------------------------------------------


def test_events_come_50_a_page_newest_first(api: Api, state: OneLoginState) -> None:
    """Events page 50 at a time through pagination.after_cursor, newest first."""
    for n in range(70):
        state.add_event(51, created_at=f"2025-04-01T10:{n // 60:02d}:{n % 60:02d}.000Z")
    first = api.get("/api/1/events", query_string={"event_type_id": "51"}).json
    assert len(first["data"]) == 50
    assert first["data"][0]["created_at"] == "2025-04-01T10:01:09.000Z"
    cursor = first["pagination"]["after_cursor"]
    assert first["pagination"]["next_link"].endswith(f"after_cursor={cursor}")
    query = {"event_type_id": "51", "after_cursor": cursor}
    second = api.get("/api/1/events", query_string=query).json
    assert len(second["data"]) == 20
    assert second["pagination"]["after_cursor"] is None


def test_events_filter_by_type_user_and_since(api: Api, state: OneLoginState) -> None:
    """event_type_id (repeated or comma-separated), user_id and since narrow the events."""
    state.events = [e for e in state.events if e["created_at"] < "2025-03-03T09:28"]
    query = [("event_type_id", "26"), ("event_type_id", "54")]
    types = api.get("/api/1/events", query_string=query).json["data"]
    assert sorted(e["event_type_id"] for e in types) == [26, 54]
    mine = api.get("/api/1/events", query_string={"user_id": 52140009}).json["data"]
    assert {e["user_id"] for e in mine} == {52140009}
    late = api.get("/api/1/events", query_string={"since": "2025-03-03T09:25:00Z"}).json
    assert all(e["created_at"] >= "2025-03-03T09:25" for e in late["data"])
    assert len(late["data"]) == 3


def test_changes_through_the_api_are_logged_as_events(api: Api, state: OneLoginState) -> None:
    """As OneLogin does: who changed (the API credential), whom, and what; nothing for a
    write that changes nothing."""
    before = len(state.events)
    role = {"custom_attributes": {"workato_role": "Analyst"}}
    api.call("PUT", "/api/1/users/52140004/set_custom_attributes", json=role)
    api.call("PUT", "/api/1/users/52140004/set_custom_attributes", json=role)  # already so
    api.call("PUT", "/api/2/users/52140004", json={"status": 2})
    api.call("DELETE", "/api/2/roles/700002/users", json=[52140004])
    api.call("DELETE", "/api/2/users/52140004")
    logged = [
        (e["event_type_id"], e["user_id"], e.get("custom_message"), e["client_id"])
        for e in state.events[before:]
    ]
    assert logged == [
        (14, 52140004, "workato_role", DEMO_CLIENT_ID),
        (21, 52140004, None, DEMO_CLIENT_ID),
        (55, 52140004, None, DEMO_CLIENT_ID),
        (17, 52140004, None, DEMO_CLIENT_ID),
    ]


def test_event_types_need_no_token(api: Api) -> None:
    """The event type list is public, as OneLogin documents it."""
    types = api.client.get("/api/1/events/types").json["data"]
    assert {
        "id": 4,
        "name": "USER_ASSIGNED_ROLE",
        "description": "Assigned %role% to user %user%",
    } in types


# --- the test server -------------------------------------------------------------------


def test_running_serves_on_a_free_port_and_stops() -> None:
    """The helper serves the simulator on 127.0.0.1 and frees the port afterwards."""
    with running(OneLoginState()) as url:
        assert requests.get(url + "/api/1/events/types", timeout=5).status_code == 200
    with pytest.raises(requests.ConnectionError):
        requests.get(url + "/api/1/events/types", timeout=5)


# --- the published contract ------------------------------------------------------------


class _SpecLoader(yaml.CSafeLoader):
    """Leaves dates and the YAML "=" value as strings, as a JSON answer has them."""


_SpecLoader.yaml_implicit_resolvers = {
    first: [(tag, regex) for tag, regex in resolvers if not tag.endswith((":timestamp", ":value"))]
    for first, resolvers in yaml.CSafeLoader.yaml_implicit_resolvers.items()
}


def _error_schema(path: str) -> dict[str, Any]:
    """OneLogin's error style for `path` (see the simulator's module docstring)."""
    if path.startswith("/api/1/"):
        return {"$ref": "#/components/schemas/v1Error"}
    if path.startswith(("/auth/", "/api/2/users")) and path != "/api/2/users/custom_attributes":
        return {"$ref": "#/components/schemas/Error"}
    return {"$ref": "#/components/schemas/altErr"}


def _answer(schema: dict[str, Any], description: str = "answer") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


RATE_HEADERS = {
    name: {"schema": {"type": "integer"}}
    for name in ("Retry-After", "X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset")
}


def patch_known_defects(spec: dict[str, Any]) -> dict[str, Any]:
    """The published spec, corrected where it is known to differ from OneLogin's answers and
    docs, and made strict (no unnamed fields) where the simulator answers, to catch drift."""
    schemas, paths = spec["components"]["schemas"], spec["paths"]
    spec["servers"] = [{"url": "/"}]  # wherever the test runs the simulator
    # The user schema lacks custom_attributes (null where the user has no value).
    schemas["user"]["properties"]["custom_attributes"] = {
        "type": "object",
        "additionalProperties": {"type": "string", "nullable": True},
    }
    # v1 errors come wrapped in "status" (OneLogin's v1 docs and answers); the spec has them flat.
    schemas["v1Error"] = {
        "type": "object",
        "required": ["status"],
        "properties": {"status": {"$ref": "#/components/schemas/Error"}},
    }
    # The v1 set_custom_attributes path is missing altogether.
    paths["/api/1/users/{user_id}/set_custom_attributes"] = {
        "put": {
            "parameters": [
                {"name": "user_id", "in": "path", "required": True, "schema": {"type": "integer"}}
            ],
            "security": [{"OAuth2": ["Manage users", "Manage All"]}],
            "responses": {
                status: _answer({"$ref": "#/components/schemas/v1Error"})
                for status in ("200", "400", "404")
            },
        }
    }
    # Only the v1 path lists custom attribute definitions; OneLogin's docs give v2's too.
    paths["/api/2/users/custom_attributes"] = {
        "get": {
            "security": [{"OAuth2": ["Read Users", "Manage users", "Read All", "Manage All"]}],
            "responses": {
                "200": _answer(
                    {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["id", "name", "shortname"],
                            "properties": {
                                "id": {"type": "integer"},
                                "name": {"type": "string"},
                                "shortname": {"type": "string"},
                                "position": {"type": "integer"},
                            },
                        },
                    }
                )
            },
        }
    }
    # Role members: the media type is misspelt, and the items are not users but what the
    # spec's own example shows: {id, name, username, added_by, added_at, assigned}.
    members = paths["/api/2/roles/{role_id}/users"]["get"]["responses"]["200"]
    members["content"] = {"application/json": members["content"].pop("applcation/json")}
    members["content"]["application/json"]["schema"]["items"] = {
        "type": "object",
        "required": ["id"],
        "additionalProperties": False,
        "properties": {
            "id": {"type": "integer"},
            "name": {"type": "string"},
            "username": {"type": "string"},
            "added_by": {"type": "object"},
            "added_at": {"type": "string"},
            "assigned": {"type": "boolean"},
        },
    }
    # An app's parameters are keyed by short name, each one a parameter; the spec describes a
    # single parameter, and lacks its id and provisioned_entitlements.
    parameter = schemas["app_parameters"]
    parameter["properties"] |= {
        "id": {"type": "integer"},
        "provisioned_entitlements": {"type": "boolean"},
    }
    schemas["generic-app"]["properties"]["parameters"] = {
        "type": "object",
        "additionalProperties": {"$ref": "#/components/schemas/app_parameters"},
    }
    # Updating a user declares no security at all, though it needs a token with the scope
    # that deleting one does (OneLogin's docs: "Manage users" or "Manage All").
    one_user = paths["/api/2/users/{user_id}"]
    one_user["put"]["security"] = one_user["delete"]["security"]
    # Adding users to a role that does not exist is a 404, as removing them is; the spec
    # declares it only for removing.
    add_members = paths["/api/2/roles/{role_id}/users"]["post"]["responses"]
    add_members["404"] = _answer({"$ref": "#/components/schemas/altErr"}, "Not Found")
    # v1 paging: cursors and links are null where there is no such page (the spec's example
    # shows the string "null").
    for value in schemas["getEvents_200_response_pagination"]["properties"].values():
        value["nullable"] = True
    for path, operations in paths.items():
        for operation in operations.values():
            if isinstance(operation, dict) and "responses" in operation:
                _complete_answers(path, operation)
    for name in (
        "user",
        "generic-app",
        "app_parameters",
        "event",
        "getUserApps_200_response_inner",
        "oauth_token",
        "getEventTypes_200_response_data_inner",
        "getEvents_200_response_pagination",
        "getRateLimit_200_response",
        "rate_limit",
        "Error",
        "altErr",
    ):
        schemas[name]["additionalProperties"] = False
    return spec


SIMULATED = (
    "/auth/oauth2/v2/token",
    "/auth/rate_limit",
    "/api/1/",
    "/api/2/users",
    "/api/2/apps",
    "/api/2/roles",
)


def _complete_answers(path: str, operation: dict[str, Any]) -> None:
    """No operation declares 403 (scope) or 429 (rate limit), some lack 401, and v1 errors
    are worded flat."""
    if not path.startswith(SIMULATED):
        return
    answers = operation["responses"]
    needs_token = any("OAuth2" in s for s in operation.get("security", []))
    for status in ("401", "403", "429") if needs_token else ("429",):
        answers.setdefault(status, _answer(_error_schema(path), status))
    answers["429"]["headers"] = RATE_HEADERS
    if path.startswith("/api/1/"):
        for status, answer in answers.items():
            if status.isdigit() and int(status) >= 400:
                answer["content"] = {"application/json": {"schema": _error_schema(path)}}


@pytest.fixture(scope="module")
def spec() -> OpenAPI:
    published = yaml.load(SPEC_FILE.read_text(), Loader=_SpecLoader)  # noqa: S506
    return OpenAPI.from_dict(patch_known_defects(published))


@dataclass
class Case:
    """One call whose answer must match the spec."""

    name: str
    method: str
    path: str
    status: int = 200
    body: Any = None
    scope: str | None = MANAGE_ALL  # None: no token at all
    prepare: Callable[[OneLoginState], None] = lambda state: None
    query: dict[str, Any] | None = None

    def send(self, state: OneLoginState, url: str, session: requests.Session):
        self.prepare(state)
        headers = {}
        if self.path == TOKEN:
            secret = "wrong" if self.status == 401 else DEMO_CLIENT_SECRET
            headers["Authorization"] = f"client_id:{DEMO_CLIENT_ID}, client_secret:{secret}"
        elif self.scope is not None:
            state.add_credential("spec-client", "spec-secret", self.scope)
            token = state.token_for(state.credentials["spec-client"]).value
            headers["Authorization"] = f"Bearer {token}"
        return session.request(
            self.method,
            url + self.path,
            params=self.query,
            json=self.body,
            headers=headers,
            timeout=5,
        )


def _many_events(state: OneLoginState) -> None:
    for _ in range(60):
        state.add_event(51, user_id=52140001)


def _changes(state: OneLoginState) -> None:
    """One change of each kind the simulator logs an event for, from the console or the API."""
    maya, liam, priya, *_ = sorted(state.users)
    role = next(r.id for r in state.roles.values() if r.name == "Workato Users")
    state.update_attributes(maya, {"workato_role": "Operator"}, actor_user_name="Maya Chen")
    state.set_status(liam, 2, client_id=DEMO_CLIENT_ID)
    state.set_status(liam, 1, client_id=DEMO_CLIENT_ID)
    state.unassign_role(role, [maya], client_id=DEMO_CLIENT_ID)
    state.assign_role(role, [maya], actor_user_name="Maya Chen")
    state.delete_user(priya, client_id=DEMO_CLIENT_ID)


def _many_users(state: OneLoginState) -> None:
    for n in range(60):
        state.add_user("Many", f"Person{n}")


SET_ROLE = {"custom_attributes": {"workato_role": "Analyst"}}
CASES = [
    Case("token", "POST", TOKEN, body={"grant_type": "client_credentials"}),
    Case("token wrong secret", "POST", TOKEN, 401, body={"grant_type": "client_credentials"}),
    Case("token bad grant", "POST", TOKEN, 400, body={"grant_type": "password"}),
    Case("rate limit", "GET", "/auth/rate_limit"),
    Case("rate limit spent", "GET", "/auth/rate_limit", prepare=lambda s: s.set_budget(0)),
    Case("rate limit no token", "GET", "/auth/rate_limit", 401, scope=None),
    Case("rate limit out of scope", "GET", "/auth/rate_limit", 403, scope=AUTH_ONLY),
    Case("users page", "GET", "/api/2/users", prepare=_many_users),
    Case("users fields", "GET", "/api/2/users", query={"fields": "id,email,custom_attributes"}),
    Case("users bad filter", "GET", "/api/2/users", 400, query={"first_login": "x"}),
    Case("users no token", "GET", "/api/2/users", 401, scope=None),
    Case("users out of scope", "GET", "/api/2/users", 403, scope=AUTH_ONLY),
    Case(
        "users throttled",
        "GET",
        "/api/2/users",
        429,
        prepare=lambda s: s.throttle_next(retry_after=3),
    ),
    Case("user", "GET", "/api/2/users/52140004"),
    Case("user missing", "GET", "/api/2/users/1", 404),
    Case("user update", "PUT", "/api/2/users/52140004", body={"status": 2, **SET_ROLE}),
    Case("user update bad status", "PUT", "/api/2/users/52140004", 422, body={"status": 6}),
    Case("user suspend", "PUT", "/api/2/users/52140004", body={"status": 2}),
    Case("user update missing", "PUT", "/api/2/users/1", 404, body={"status": 2}),
    Case(
        "user update out of scope",
        "PUT",
        "/api/2/users/52140004",
        403,
        body={"status": 2},
        scope=READ_ALL,
    ),
    Case("user delete", "DELETE", "/api/2/users/52140004", 204),
    Case("user delete missing", "DELETE", "/api/2/users/1", 404),
    Case("user delete out of scope", "DELETE", "/api/2/users/52140004", 403, scope=READ_ALL),
    Case("user delete no token", "DELETE", "/api/2/users/52140004", 401, scope=None),
    Case("user apps", "GET", "/api/2/users/52140009/apps"),
    Case("set attributes", "PUT", "/api/1/users/52140004/set_custom_attributes", body=SET_ROLE),
    Case(
        "set unknown attribute",
        "PUT",
        "/api/1/users/52140004/set_custom_attributes",
        400,
        body={"custom_attributes": {"nope": "x"}},
    ),
    Case(
        "set attributes out of scope",
        "PUT",
        "/api/1/users/52140004/set_custom_attributes",
        403,
        body=SET_ROLE,
        scope=READ_ALL,
    ),
    Case(
        "set attributes no user", "PUT", "/api/1/users/1/set_custom_attributes", 404, body=SET_ROLE
    ),
    Case("attributes v2", "GET", "/api/2/users/custom_attributes"),
    Case("attributes v2 no token", "GET", "/api/2/users/custom_attributes", 401, scope=None),
    Case("attributes v1", "GET", "/api/1/users/custom_attributes"),
    Case("attributes v1 no token", "GET", "/api/1/users/custom_attributes", 401, scope=None),
    Case("apps", "GET", "/api/2/apps"),
    Case("app", "GET", f"/api/2/apps/{WORKATO_APP_ID}"),
    Case("app missing", "GET", "/api/2/apps/1", 404),
    Case("app out of scope", "GET", f"/api/2/apps/{WORKATO_APP_ID}", 403, scope=READ_USERS),
    Case("app users", "GET", f"/api/2/apps/{WORKATO_APP_ID}/users", query={"limit": 3}),
    Case("roles of app", "GET", "/api/2/roles", query={"app_id": WORKATO_APP_ID}),
    Case("role users", "GET", "/api/2/roles/700002/users", query={"limit": 4}),
    Case("add role users", "POST", "/api/2/roles/700002/users", body=[52140008]),
    Case("add unknown role users", "POST", "/api/2/roles/700002/users", 422, body=[1]),
    Case("remove role users", "DELETE", "/api/2/roles/700002/users", 204, body=[52140004]),
    Case("add users to a missing role", "POST", "/api/2/roles/1/users", 404, body=[52140008]),
    Case("remove users from a missing role", "DELETE", "/api/2/roles/1/users", 404, body=[1]),
    Case(
        "add role users out of scope",
        "POST",
        "/api/2/roles/700002/users",
        403,
        body=[52140008],
        scope=MANAGE_USERS,
    ),
    Case("events", "GET", "/api/1/events", prepare=_many_events),
    Case("events filtered", "GET", "/api/1/events", query={"event_type_id": [25, 26]}),
    Case(
        "events of changes",
        "GET",
        "/api/1/events",
        query={"event_type_id": [4, 14, 17, 21, 32, 55]},
        prepare=_changes,
    ),
    Case("events no token", "GET", "/api/1/events", 401, scope=None),
    Case("events throttled", "GET", "/api/1/events", 429, prepare=lambda s: s.throttle_next()),
    Case("event types", "GET", "/api/1/events/types", scope=None),
]


@pytest.fixture
def served() -> Iterator[tuple[OneLoginState, str, requests.Session]]:
    state = OneLoginState.seeded()
    with running(state) as url, requests.Session() as session:
        yield state, url, session


def validate(spec: OpenAPI, response: requests.Response) -> None:
    spec.validate_response(
        RequestsOpenAPIRequest(response.request), RequestsOpenAPIResponse(response)
    )


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_answer_matches_onelogins_published_spec(spec: OpenAPI, served, case: Case) -> None:
    """The simulator's answer (status, headers, body) is one OneLogin's spec allows."""
    response = case.send(*served)
    assert response.status_code == case.status, response.text
    validate(spec, response)


def test_the_cases_cover_every_simulated_endpoint() -> None:
    """Every route the simulator serves is called by at least one contract case."""
    urls = create_app(OneLoginState()).url_map.bind("localhost")
    covered = {urls.match(case.path, case.method)[0] for case in CASES}
    served = {rule.endpoint for rule in urls.map.iter_rules() if rule.endpoint != "static"}
    assert served - covered == set()


def _tamper(response: requests.Response, change: Callable[[Any], None]) -> requests.Response:
    body = response.json()
    change(body)
    response._content = json.dumps(body).encode()
    return response


@pytest.mark.parametrize(
    ("case", "change"),
    [
        ("user", lambda user: user.update(status=6)),
        ("user suspend", lambda user: user.update(status="2")),
        ("user", lambda user: user.update(provisioning_state="provisioned")),
        ("user", lambda user: user["custom_attributes"].update(workato_role=1)),
        (
            "app",
            lambda app: app["parameters"]["workato_role"].update(include_in_saml_assertion="yes"),
        ),
        ("user apps", lambda apps: apps[0].update(provisioning_state="stuck")),
        ("events", lambda page: page["pagination"].update(after_cursor=12)),
        ("token", lambda token: token.update(expires_in="36000")),
    ],
)
def test_a_wrong_answer_fails_the_contract(spec: OpenAPI, served, case: str, change) -> None:
    """The contract check bites: an answer OneLogin would not give fails validation."""
    response = next(c for c in CASES if c.name == case).send(*served)
    validate(spec, response)
    with pytest.raises(ValidationError):
        validate(spec, _tamper(response, change))


def test_cursor_in_an_answer_is_opaque_but_decodable_only_by_the_simulator(api: Api) -> None:
    """A cursor the simulator did not make is a 400, not a silent first page."""
    forged = base64.urlsafe_b64encode(b"not json").decode()
    assert api.get("/api/2/users", query_string={"cursor": forged}).status_code == 400
