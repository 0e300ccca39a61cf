"""The OneLogin client against the simulator over real HTTP: tokens, paging, retries, and
failures an admin can act on."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from datetime import UTC, datetime

import pytest
from werkzeug.wrappers import Request

from dashboard.connections import errors
from dashboard.connections.http import RetryPolicy
from dashboard.connections.onelogin import (
    ROLE_SCOPE,
    SAML,
    WRITE_SCOPE,
    OneLoginClient,
    after_cursor,
)
from dashboard.sandbox.onelogin import MANAGE_USERS, READ_ALL, READ_USERS, OneLoginState
from dashboard.sandbox.onelogin_seed import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, WORKATO_APP_ID
from tests.support.onelogin import refusing_port, running, silent_server
from tests.support.scim_server import Answer, json_app, serve_wsgi

JONAS, ELENA, NOAH, AIKO = 52140004, 52140007, 52140008, 52140009
WORKATO_USERS = 700002  # the seeded role that gives the Workato app to most people
SECRET_LOOKING = "s3cr3t-Value-that-must-not-leak"


@pytest.fixture
def state() -> OneLoginState:
    return OneLoginState.seeded()


@pytest.fixture
def url(state: OneLoginState) -> Iterator[str]:
    with running(state) as base_url:
        yield base_url


@pytest.fixture
def sleeps() -> list[float]:
    """The delays the client would have slept between retries; nothing really sleeps."""
    return []


@pytest.fixture
def connect(url: str, sleeps: list[float]) -> Iterator[Callable[..., OneLoginClient]]:
    """Make a client (the demo credential unless told otherwise); all are closed after."""
    made: list[OneLoginClient] = []

    def connect(
        client_id: str = DEMO_CLIENT_ID,
        secret: str = DEMO_CLIENT_SECRET,
        base_url: str | None = None,
        **options,
    ) -> OneLoginClient:
        options.setdefault("retry", RetryPolicy(sleep=sleeps.append))
        made.append(OneLoginClient(base_url or url, client_id, secret, **options))
        return made[-1]

    yield connect
    for client in made:
        client.close()


@pytest.fixture
def client(connect) -> OneLoginClient:
    return connect()


def problem_of(call: Callable[[], object]) -> errors.ConnectionProblem:
    with pytest.raises(errors.ConnectionProblem) as caught:
        call()
    return caught.value


# --- the credential and its token ------------------------------------------------------


def test_check_proves_the_credential_and_names_the_account(client, state) -> None:
    """check() gets a token and reads once; it answers OneLogin's account id."""
    assert client.check() == state.account_id
    assert state.calls["issue_token"] == 1
    assert state.calls["list_apps"] == 1


def test_token_is_fetched_once_and_reused(client, state) -> None:
    """One token serves every call until it nears expiry."""
    client.check()
    client.user(JONAS)
    list(client.users())
    assert state.calls["issue_token"] == 1


def test_token_is_renewed_just_before_it_expires(connect, state) -> None:
    """A token is replaced shortly before OneLogin's expires_in runs out, not after."""
    now = [1000.0]
    client = connect(clock=lambda: now[0])
    client.check()
    now[0] += 36000 - 120
    client.check()
    assert state.calls["issue_token"] == 1
    now[0] += 90  # inside the last minute
    client.check()
    assert state.calls["issue_token"] == 2


def test_expired_token_is_renewed_once_on_401(client, state) -> None:
    """A token OneLogin stopped honouring early is renewed once, and the call succeeds."""
    client.check()
    state.expire_tokens()
    assert client.user(JONAS)["username"] == "jonas.weber"
    assert state.calls["issue_token"] == 2


def test_a_second_401_stands(client, state) -> None:
    """If the renewed token is refused too, the 401 reaches the caller: no loop."""
    client.check()
    state.fail_next(401, times=5, path="/api/2/users/")
    problem = problem_of(lambda: client.user(JONAS))
    assert problem.kind == errors.UNAUTHORIZED
    assert state.calls["issue_token"] == 2
    assert state.calls["get_user"] == 2


def test_wrong_secret_is_unauthorized_and_never_echoed(connect, state) -> None:
    """A wrong secret says to fix the API credential, once, without repeating the secret."""
    client = connect(secret=SECRET_LOOKING)
    problem = problem_of(client.check)
    assert problem.kind == errors.UNAUTHORIZED
    assert "Developers > API Credentials" in problem.message
    assert "save it again on Connections" in problem.message
    for text in (str(problem), repr(problem), problem.detail or "", repr(client)):
        assert SECRET_LOOKING not in text
    assert state.calls["issue_token"] == 1  # a wrong secret is not retried


def test_token_never_appears_in_a_problem(client, state) -> None:
    """Even a 403 after a good token carries no token in its message or detail."""
    client.check()
    token = next(iter(state.tokens))
    state.credentials[DEMO_CLIENT_ID].scope = READ_USERS
    state.tokens.clear()
    problem = problem_of(lambda: client.app(WORKATO_APP_ID))
    assert token not in f"{problem!r} {problem}"


# --- scopes and failures ---------------------------------------------------------------


def test_reading_apps_without_the_scope_is_forbidden_naming_it(connect, state) -> None:
    """A "Read users" credential cannot read apps: the message names the scopes needed."""
    state.add_credential("reader", "reader-secret", READ_USERS)
    problem = problem_of(lambda: connect("reader", "reader-secret").app(WORKATO_APP_ID))
    assert problem.kind == errors.FORBIDDEN
    assert '"Read All" or "Manage All"' in problem.message
    assert problem.detail and "scope" in problem.detail  # OneLogin's own words


def test_writing_attributes_without_the_scope_is_forbidden_naming_it(connect, state) -> None:
    """A "Read All" credential cannot change custom attributes: it needs Manage users/All."""
    state.add_credential("auditor", "auditor-secret", READ_ALL)
    client = connect("auditor", "auditor-secret")
    problem = problem_of(lambda: client.set_custom_attributes(JONAS, {"workato_role": "Admin"}))
    assert problem.kind == errors.FORBIDDEN
    assert '"Manage users" or "Manage All"' in problem.message
    assert state.users[JONAS].custom_attributes["workato_role"] == "admin"


def test_manage_users_scope_may_write_attributes(connect, state) -> None:
    """A "Manage users" credential is enough to change custom attributes."""
    state.add_credential("hr", "hr-secret", MANAGE_USERS)
    connect("hr", "hr-secret").set_custom_attributes(JONAS, {"workato_role": "Admin"})
    assert state.users[JONAS].custom_attributes["workato_role"] == "Admin"


def test_wrong_base_url_is_not_found(connect, url) -> None:
    """A base URL with a path OneLogin does not have says the base URL is probably wrong."""
    problem = problem_of(connect(base_url=url + "/onelogin").check)
    assert problem.kind == errors.NOT_FOUND
    assert "base URL is probably wrong" in problem.message


def test_refused_connection_is_connect(connect) -> None:
    """Nothing listening at the base URL is a connection problem, retried then reported."""
    with refusing_port() as nowhere:
        problem = problem_of(connect(base_url=nowhere).check)
    assert problem.kind == errors.CONNECT


def test_silent_server_is_a_timeout(connect, sleeps) -> None:
    """A server that accepts but never answers times out with the configured timeout."""
    with silent_server() as silent:
        client = connect(base_url=silent, timeout=0.05, retry=RetryPolicy(2, sleep=sleeps.append))
        problem = problem_of(client.check)
    assert problem.kind == errors.TIMEOUT
    assert "0.05 s" in problem.message
    assert len(sleeps) == 1  # retried once, as a transient failure


def test_rate_limit_waits_retry_after_then_succeeds(client, state, sleeps) -> None:
    """A 429 is retried after exactly the Retry-After OneLogin gave, then the call works."""
    client.check()
    state.throttle_next(1, retry_after=7, path="/api/2/users/")
    assert client.user(JONAS)["id"] == JONAS
    assert sleeps == [7.0]


def test_server_errors_are_retried_then_reported(client, state, sleeps) -> None:
    """5xx answers are retried with backoff, then given up as a server_error."""
    client.check()
    state.fail_next(503, times=10, path="/api/2/apps/")
    problem = problem_of(lambda: client.app(WORKATO_APP_ID))
    assert problem.kind == errors.SERVER_ERROR
    assert state.calls["get_app"] == 4
    assert len(sleeps) == 3


def test_custom_attribute_write_is_retried_after_a_fault(client, state) -> None:
    """The PUT of custom attributes is idempotent, so a 503 is simply retried."""
    client.check()
    state.fail_next(503, path=f"/api/1/users/{JONAS}/set_custom_attributes")
    client.set_custom_attributes(JONAS, {"workato_role": "Admin"})
    assert state.calls["set_custom_attributes"] == 2
    assert state.users[JONAS].custom_attributes["workato_role"] == "Admin"


# --- reading the tenant ----------------------------------------------------------------


def test_users_page_through_lower_case_after_cursor(client, state) -> None:
    """All users arrive across pages of 100, following a lower-case after-cursor header."""
    for n in range(240):
        state.add_user("Paged", f"Person{n}")
    state.lower_case_headers = True
    users = list(client.users())
    assert [u["id"] for u in users] == sorted(state.users)
    pages = -(-len(state.users) // 100)
    assert pages >= 3
    assert len([line for line in state.log if line.startswith("GET /api/2/users?")]) == pages
    assert users[3]["custom_attributes"]["workato_role"] == "admin"


def test_after_cursor_is_found_in_any_letter_case() -> None:
    """The cursor header is found whatever its case, even in a plain dict."""
    assert after_cursor({"after-cursor": "abc"}) == "abc"
    assert after_cursor({"AFTER-CURSOR": " abc "}) == "abc"
    assert after_cursor({"After-Cursor": ""}) is None
    assert after_cursor({}) is None


def test_users_by_id_with_chosen_fields(client) -> None:
    """users() can ask for some ids and some fields; the rest stay empty."""
    users = list(
        client.users(user_ids=[JONAS, ELENA], fields=["id", "status", "custom_attributes"])
    )
    assert [(u["id"], u["status"], u.get("email")) for u in users] == [
        (JONAS, 1, None),
        (ELENA, 2, None),
    ]
    assert users[0]["custom_attributes"]["workato_role"] == "admin"
    assert list(client.users(user_ids=[])) == []


def test_users_by_name_filters_with_wildcards(client) -> None:
    """users() passes OneLogin's name filters on: exact but for case, * for any text."""
    assert [u["id"] for u in client.users(username="JONAS.WEBER")] == [JONAS]
    assert [u["id"] for u in client.users(firstname="jon*", lastname="*eber")] == [JONAS]
    assert [u["id"] for u in client.users(email="*jonas.weber*")] == [JONAS]
    assert list(client.users(lastname="Webe")) == []


def test_app_shows_saml_provisioning_and_parameters(client) -> None:
    """app() reads the Workato app: SAML, provisioning on, role parameters and their flags."""
    app = client.app(WORKATO_APP_ID)
    assert app["auth_method"] == SAML
    assert app["provisioning"] == {"enabled": True}
    prod = app["parameters"]["workato_role_prod"]
    assert prod["user_attribute_mappings"] == "custom_attribute_workato_role_prod"
    assert prod["include_in_saml_assertion"] is False
    assert app["parameters"]["workato_role"]["include_in_saml_assertion"] is True


def test_app_users_come_in_pages_of_up_to_1000(client, state) -> None:
    """Every assigned user arrives, in pages of 1000."""
    for n in range(1100):
        state.roles[700002].user_ids.append(state.add_user("Bulk", f"User{n}").id)
    users = list(client.app_users(WORKATO_APP_ID))
    assert [u["id"] for u in users] == state.app_user_ids(WORKATO_APP_ID)
    assert len([line for line in state.log if "/users?limit=1000" in line]) == 2


def test_user_apps_carry_onelogins_provisioning_state(client) -> None:
    """user_apps() says how OneLogin's own provisioning went for that user."""
    workato = next(a for a in client.user_apps(AIKO) if a["id"] == WORKATO_APP_ID)
    assert (workato["provisioning_state"], workato["provisioning_status"]) == (
        "provisioning_failed",
        "enabling_failed",
    )


def test_custom_attribute_definitions_from_v2(client) -> None:
    """The definitions carry short names and display names from the v2 API."""
    definitions = client.custom_attribute_definitions()
    assert {"shortname": "workato_role_prod", "name": "Workato role prod"} in definitions


def test_custom_attribute_definitions_fall_back_to_v1(client, state) -> None:
    """Where the v2 path is missing (404), the v1 list of short names is used."""
    client.check()
    state.fail_next(404, path="/api/2/users/custom_attributes")
    names = [a["shortname"] for a in client.custom_attribute_definitions()]
    assert names == ["workato_role", "workato_role_test", "workato_role_prod", "employee_id"]
    assert state.calls["custom_attributes_v1"] == 1


def test_set_custom_attributes_writes_and_clears(client, state) -> None:
    """Values are written; None clears a field."""
    client.set_custom_attributes(JONAS, {"workato_role": "Admin", "workato_role_prod": None})
    assert client.user(JONAS)["custom_attributes"]["workato_role"] == "Admin"
    assert state.users[JONAS].custom_attributes["workato_role_prod"] is None


def test_unknown_custom_attribute_is_rejected_in_onelogins_words(client) -> None:
    """Writing a field that does not exist is refused, with OneLogin's list of valid ones."""
    problem = problem_of(lambda: client.set_custom_attributes(JONAS, {"workato_rol": "Admin"}))
    assert problem.kind == errors.REJECTED
    assert problem.detail.startswith("input custom_attributes is not valid")
    assert "workato_role_prod" in problem.message


def test_roles_that_give_the_app_and_their_members(client) -> None:
    """app_roles() lists the roles granting the app; role_users() lists their members."""
    roles = client.app_roles(WORKATO_APP_ID)
    assert [r["name"] for r in roles] == ["Workato Admins", "Workato Users"]
    maya = {"id": 52140001, "name": "Maya Chen", "username": "maya.chen"}
    assert list(client.role_users(roles[0]["id"])) == [maya]


def test_events_page_with_after_cursor(client, state) -> None:
    """events() gives 50 a page, newest first, and a cursor until the last page."""
    for n in range(70):
        state.add_event(51, created_at=f"2025-04-01T10:{n // 60:02d}:{n % 60:02d}.000Z")
    first, cursor = client.events(event_type_ids=[51])
    assert len(first) == 50 and cursor
    rest, end = client.events(event_type_ids=[51], cursor=cursor)
    assert (len(rest), end) == (20, None)
    assert {e["id"] for e in first}.isdisjoint(e["id"] for e in rest)


def test_events_since_a_moment(client, state) -> None:
    """since narrows the events to those at or after the moment, whatever its time zone."""
    state.events = [e for e in state.events if e["created_at"] < "2025-03-03T09:28"]
    events, _ = client.events(since=datetime(2025, 3, 3, 9, 25, tzinfo=UTC))
    assert len(events) == 3
    naive, _ = client.events(since=datetime(2025, 3, 3, 9, 25))
    assert naive == events


def test_event_types_name_each_id(client) -> None:
    """event_types() maps ids to OneLogin's names."""
    names = {t["id"]: t["name"] for t in client.event_types()}
    assert names[4] == "USER_ASSIGNED_ROLE"


def test_an_answer_missing_what_onelogin_always_sends_is_a_bad_response(client, state) -> None:
    """An answer without the fields OneLogin always sends says so, not a KeyError."""
    state.event_types = [{"name": "NO_ID"}]
    problem = problem_of(client.event_types)
    assert problem.kind == errors.BAD_RESPONSE
    assert "event types" in problem.message


# --- writing to the tenant -------------------------------------------------------------


def app_user_ids(client: OneLoginClient) -> list[int]:
    return [u["id"] for u in client.app_users(WORKATO_APP_ID)]


def test_add_to_role_gives_the_app(client, state) -> None:
    """Adding a user to a role that gives the app assigns the app; ids are sent once each,
    and an empty list sends nothing."""
    assert NOAH not in app_user_ids(client)
    client.add_to_role(WORKATO_USERS, [NOAH, NOAH])
    assert NOAH in app_user_ids(client)
    assert state.roles[WORKATO_USERS].user_ids.count(NOAH) == 1
    client.add_to_role(WORKATO_USERS, [])
    assert state.calls["add_role_users"] == 1


def test_remove_from_role_takes_the_app(client, state) -> None:
    """Removing a user from every role that gives the app unassigns the app."""
    assert JONAS in app_user_ids(client)
    for role in client.app_roles(WORKATO_APP_ID):
        client.remove_from_role(role["id"], [JONAS])
    assert JONAS not in app_user_ids(client)
    assert ELENA in state.roles[WORKATO_USERS].user_ids  # only the users named leave
    client.remove_from_role(WORKATO_USERS, [])
    assert state.calls["remove_role_users"] == 2


def test_role_change_is_retried_after_a_fault(client, state, sleeps) -> None:
    """A membership change is safe to repeat, so a 503 is simply retried."""
    client.check()
    state.fail_next(503, path=f"/api/2/roles/{WORKATO_USERS}/users")
    client.add_to_role(WORKATO_USERS, [NOAH])
    assert state.calls["add_role_users"] == 2
    assert len(sleeps) == 1
    assert NOAH in state.app_user_ids(WORKATO_APP_ID)


def test_set_status_suspends_and_reactivates(client, state) -> None:
    """set_status(2) suspends the user in OneLogin and answers the updated user; 1 undoes it."""
    suspended = client.set_status(JONAS, 2)
    assert (suspended["id"], suspended["username"], suspended["status"]) == (
        JONAS,
        "jonas.weber",
        2,
    )
    assert state.users[JONAS].status == 2
    assert client.user(JONAS)["status"] == 2
    assert client.set_status(JONAS, 1)["status"] == 1
    assert state.users[JONAS].status == 1


def test_a_status_onelogin_does_not_have_is_rejected_in_its_words(client, state) -> None:
    """There is no status 6: OneLogin's 422 reaches the admin with its own reason."""
    problem = problem_of(lambda: client.set_status(JONAS, 6))
    assert (problem.kind, problem.status) == (errors.REJECTED, 422)
    assert "Validation failed" in problem.message
    assert state.users[JONAS].status == 1


def test_delete_user_removes_them_from_users_and_roles(client, state) -> None:
    """A deleted user is gone from the users, from every role and so from the app."""
    client.delete_user(JONAS)
    assert JONAS not in [u["id"] for u in client.users()]
    for role in client.app_roles(WORKATO_APP_ID):
        assert JONAS not in [m["id"] for m in client.role_users(role["id"])]
    assert JONAS not in app_user_ids(client)
    problem = problem_of(lambda: client.delete_user(JONAS))
    assert problem.kind == errors.NOT_FOUND
    assert f"has no user {JONAS}" in problem.message


def test_adding_an_unknown_user_to_a_role_is_rejected(client, state) -> None:
    """A user id OneLogin does not know is refused (422) with OneLogin's words naming it."""
    problem = problem_of(lambda: client.add_to_role(WORKATO_USERS, [NOAH, 1]))
    assert problem.kind == errors.REJECTED
    assert "invalid value in user ids: 1" in problem.message
    assert NOAH not in state.roles[WORKATO_USERS].user_ids


USER_SCOPE_TEXT = '"Manage users" or "Manage All" scope'
ROLE_SCOPE_TEXT = 'the "Manage All" scope; "Manage users" is not enough'
WRITES = {
    "set_status": lambda client, user, role: client.set_status(user, 2),
    "delete_user": lambda client, user, role: client.delete_user(user),
    "add_to_role": lambda client, user, role: client.add_to_role(role, [user]),
    "remove_from_role": lambda client, user, role: client.remove_from_role(role, [user]),
    "set_custom_attributes": lambda client, user, role: client.set_custom_attributes(
        user, {"workato_role": "Admin"}
    ),
}


@pytest.mark.parametrize(
    ("write", "scope", "needed"),
    [
        ("set_status", READ_ALL, USER_SCOPE_TEXT),
        ("delete_user", READ_ALL, USER_SCOPE_TEXT),
        ("add_to_role", READ_ALL, ROLE_SCOPE_TEXT),
        ("remove_from_role", READ_ALL, ROLE_SCOPE_TEXT),
        ("add_to_role", MANAGE_USERS, ROLE_SCOPE_TEXT),
        ("remove_from_role", MANAGE_USERS, ROLE_SCOPE_TEXT),
    ],
)
def test_writes_without_the_scope_name_the_scope_they_need(
    write, scope, needed, connect, state
) -> None:
    """A credential short of a write's scope is told exactly which scope that write needs;
    nothing changes, and neither the secret nor the token is in the problem."""
    state.add_credential("narrow", SECRET_LOOKING, scope)
    before = (state.users[JONAS].status, list(state.roles[WORKATO_USERS].user_ids))
    client = connect("narrow", SECRET_LOOKING)
    problem = problem_of(lambda: WRITES[write](client, JONAS, WORKATO_USERS))
    assert problem.kind == errors.FORBIDDEN
    assert needed in problem.message
    assert problem.detail and "scope" in problem.detail  # OneLogin's own words
    assert (state.users[JONAS].status, state.roles[WORKATO_USERS].user_ids) == before
    assert JONAS in state.users
    token = next(iter(state.tokens))
    for text in (problem.message, problem.detail, str(problem), repr(problem)):
        assert SECRET_LOOKING not in text
        assert token not in text


def test_the_write_scope_message_names_every_user_write() -> None:
    """One message serves custom attributes, status and deletion: it names all three."""
    for words in ("custom attributes", "status", "deleting"):
        assert words in WRITE_SCOPE
    assert '"Manage All"' in ROLE_SCOPE and "role" in ROLE_SCOPE


@pytest.mark.parametrize(
    ("write", "user", "role", "missing"),
    [
        ("set_status", 1, WORKATO_USERS, "user 1"),
        ("delete_user", 1, WORKATO_USERS, "user 1"),
        ("set_custom_attributes", 1, WORKATO_USERS, "user 1"),
        ("add_to_role", JONAS, 1, "role 1"),
        ("remove_from_role", JONAS, 1, "role 1"),
    ],
)
def test_a_write_to_a_missing_user_or_role_says_which(write, user, role, missing, client):
    """A 404 on a write names the user or role OneLogin does not have, not the base URL
    (the token came from the same one)."""
    problem = problem_of(lambda: WRITES[write](client, user, role))
    assert problem.kind == errors.NOT_FOUND
    assert problem.message.startswith(f"OneLogin API has no {missing} (404; deleted meanwhile?)")
    assert "base URL" not in problem.message


# --- servers that answer what OneLogin would not ---------------------------------------

ACCESS_TOKEN = "access-" + "7f3e9a" * 8
GOOD_TOKEN = (200, {"access_token": ACCESS_TOKEN, "expires_in": 36000, "account_id": 1})
Respond = Answer | Callable[[Request], Answer]


@pytest.fixture
def answering(connect) -> Iterator[Callable[..., OneLoginClient]]:
    """A client (secret SECRET_LOOKING) of a server answering `token` at the token endpoint
    and `answers[path]` at the others (404 elsewhere); an answer may be a function of the
    request."""
    with ExitStack() as servers:

        def start(answers: dict[str, Respond], token: Respond = GOOD_TOKEN) -> OneLoginClient:
            def respond(request: Request) -> Answer:
                if request.path == "/auth/oauth2/v2/token":
                    answer = token
                else:
                    answer = answers.get(request.path, (404, {"message": "No Route Exists"}))
                return answer(request) if callable(answer) else answer

            root = servers.enter_context(serve_wsgi(json_app(respond)))
            return connect(secret=SECRET_LOOKING, base_url=root, retry=RetryPolicy(attempts=1))

        yield start


def echo(status: int, style: str = "flat") -> Callable[[Request], Answer]:
    """An answer whose message repeats the request's Authorization header: flat, as the
    v2 endpoints word errors, or inside v1's `status`."""

    def answer(request: Request) -> Answer:
        said = f"refused {request.headers.get('Authorization')}"
        flat = {"error": True, "code": status, "type": "Refused", "message": said}
        return status, {"status": flat} if style == "v1" else flat

    return answer


def assert_redacted(problem: errors.ConnectionProblem, *secrets: str) -> None:
    for text in (problem.message, problem.detail or "", str(problem), repr(problem)):
        for secret in secrets:
            assert secret not in text
    assert "[redacted]" in (problem.detail or "")


@pytest.mark.parametrize("status", [400, 401])
def test_secret_echoed_by_the_token_endpoint_is_redacted(status, answering) -> None:
    """A token endpoint whose error repeats the Authorization header (which carries the
    client secret): the secret is in neither the problem's message nor its detail (S3)."""
    problem = problem_of(answering({}, token=echo(status)).check)
    assert problem.status == status
    assert_redacted(problem, SECRET_LOOKING)


@pytest.mark.parametrize("status", [400, 401, 403, 500])
def test_access_token_echoed_by_an_endpoint_is_redacted(status, answering) -> None:
    """An API endpoint whose error repeats the Authorization header (the access token): the
    token is in neither the problem's message nor its detail (S3)."""
    problem = problem_of(answering({"/api/2/apps": echo(status)}).check)
    assert problem.status == status
    assert_redacted(problem, ACCESS_TOKEN)


def test_access_token_echoed_in_a_v1_refusal_is_redacted(answering) -> None:
    """v1 may answer 200 with its refusal inside `status`: that message is redacted too."""
    path = f"/api/1/users/{JONAS}/set_custom_attributes"
    client = answering({path: lambda request: (200, echo(200, "v1")(request)[1])})
    problem = problem_of(lambda: client.set_custom_attributes(JONAS, {"workato_role": "Admin"}))
    assert problem.kind == errors.REJECTED
    assert_redacted(problem, ACCESS_TOKEN)


APPS = "/api/2/apps"
USER = f"/api/2/users/{JONAS}"


@pytest.mark.parametrize("status", [403, 404, 422])
@pytest.mark.parametrize("write", ["set_status", "delete_user", "add_to_role", "remove_from_role"])
def test_access_token_echoed_by_a_write_is_redacted(write, status, answering) -> None:
    """A write whose refusal repeats the Authorization header: the access token is in
    neither the problem's message (a 404's rewritten one included) nor its detail (S3)."""
    echoing = echo(status)
    client = answering({USER: echoing, "/api/2/roles/1/users": echoing})
    problem = problem_of(lambda: WRITES[write](client, JONAS, 1))
    assert problem.status == status
    assert_redacted(problem, ACCESS_TOKEN)
    if status == 404:
        assert "deleted meanwhile?" in problem.message


@pytest.mark.parametrize(
    ("call", "answers"),
    [
        ("check", {APPS: (200, {"unexpected": True})}),
        ("check", {APPS: (200, [{"id": "1"}])}),
        ("user", {USER: (200, {"id": JONAS, "email": 5})}),
        ("user", {USER: (200, {"id": JONAS, "status": True})}),
        ("user", {USER: (200, {"id": JONAS, "custom_attributes": {"workato_role": {}}})}),
        ("set_status", {USER: (200, {"id": JONAS, "status": "2"})}),
        ("set_status", {USER: (200, [{"id": JONAS}])}),
        ("users", {"/api/2/users": (200, [{"id": JONAS, "username": ["jonas"]}])}),
        ("app", {f"{APPS}/1": (200, {"id": 1, "parameters": [["workato_role", {}]]})}),
        ("app", {f"{APPS}/1": (200, {"id": 1, "parameters": {"r": {"label": 1}}})}),
        ("app", {f"{APPS}/1": (200, {"id": 1, "provisioning": {"enabled": "yes"}})}),
        ("user_apps", {f"{USER}/apps": (200, {"id": 1})}),
        ("user_apps", {f"{USER}/apps": (200, [{"id": 1, "provisioning_state": 3}])}),
        ("app_roles", {"/api/2/roles": (200, [{"id": {}}])}),
        ("app_roles", {"/api/2/roles": (200, [{"id": 1, "name": {"en": "Users"}}])}),
        ("role_users", {"/api/2/roles/1/users": (200, [{"id": 2, "username": 7}])}),
        ("attributes", {"/api/2/users/custom_attributes": (200, [{"shortname": 5}])}),
        ("attributes", {"/api/2/users/custom_attributes": (200, [{"name": "No short"}])}),
        ("attributes", {"/api/1/users/custom_attributes": (200, {"data": [["role", {}]]})}),
        ("attributes", {"/api/1/users/custom_attributes": (200, {"data": "role"})}),
        ("events", {"/api/1/events": (200, {"data": [], "pagination": {"after_cursor": 9}})}),
        ("events", {"/api/1/events": (200, {"data": {"id": 1}})}),
        ("event_types", {"/api/1/events/types": (200, {"data": [{"id": "12", "name": "X"}]})}),
        ("event_types", {"/api/1/events/types": (200, {"data": [{"id": 12, "name": None}]})}),
    ],
)
def test_wrong_shapes_are_bad_responses(call, answers, answering) -> None:
    """JSON whose fields are not of the type OneLogin documents is a bad_response, never a
    TypeError later or a value of the wrong type handed on ("5" for a name, a list as a
    dict)."""
    client = answering(answers)
    calls = {
        "users": lambda: list(client.users()),
        "user": lambda: client.user(JONAS),
        "set_status": lambda: client.set_status(JONAS, 2),
        "app": lambda: client.app(1),
        "user_apps": lambda: client.user_apps(JONAS),
        "app_roles": lambda: client.app_roles(1),
        "role_users": lambda: list(client.role_users(1)),
        "attributes": client.custom_attribute_definitions,
        "events": client.events,
        "event_types": client.event_types,
    }
    problem = problem_of(calls.get(call, client.check))
    assert problem.kind == errors.BAD_RESPONSE


@pytest.mark.parametrize(
    "token",
    [
        {"access_token": ACCESS_TOKEN, "expires_in": "inf"},
        {"access_token": ACCESS_TOKEN, "expires_in": "NaN"},
        {"access_token": ACCESS_TOKEN, "expires_in": True},
        {"access_token": ACCESS_TOKEN, "expires_in": [36000]},
        {"access_token": ACCESS_TOKEN, "expires_in": -1},
        {"access_token": {"value": ACCESS_TOKEN}},
    ],
)
def test_a_token_answer_of_the_wrong_shape_is_a_bad_response(token, answering) -> None:
    """A token that would never (or always) be renewed, or is not text, is refused."""
    problem = problem_of(answering({APPS: (200, [])}, token=(200, token)).check)
    assert problem.kind == errors.BAD_RESPONSE
    assert "access token" in problem.message
