"""The Workato developer API client against the simulator, over real HTTP."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from datetime import UTC, datetime

import pytest
import requests
from werkzeug.wrappers import Request

from dashboard.connections import errors
from dashboard.connections.errors import ConnectionProblem
from dashboard.connections.http import RetryPolicy
from dashboard.connections.workato_api import WorkatoApiClient
from dashboard.sandbox import workato_api as simulator
from tests.support.scim_server import Answer, free_port, json_app, serve_wsgi

TOKEN = "api-client-token"


class Clock:
    """The simulator's clock: tests move time instead of sleeping."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def serve(clock: Clock) -> Iterator[Callable[..., str]]:
    """Start a simulator with the given data; its /api base URL."""
    with ExitStack() as stack:

        def start(**kwargs) -> str:
            app = simulator.create_app(TOKEN, clock=clock, **kwargs)
            return stack.enter_context(serve_wsgi(app)) + "/api"

        yield start


@pytest.fixture
def make_client(sleeps: list[float], clock: Clock) -> Iterator[Callable[..., WorkatoApiClient]]:
    clients: list[WorkatoApiClient] = []

    def wait(seconds: float) -> None:
        sleeps.append(seconds)
        clock.now += seconds  # waiting moves the simulator's time, as it would for real

    def make(base_url: str, token: str = TOKEN, attempts: int = 4) -> WorkatoApiClient:
        client = WorkatoApiClient(base_url, token, retry=RetryPolicy(attempts=attempts, sleep=wait))
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def api(serve, make_client) -> WorkatoApiClient:
    return make_client(serve())


def problem_of(call: Callable[[], object]) -> ConnectionProblem:
    with pytest.raises(ConnectionProblem) as caught:
        call()
    return caught.value


def test_roles_are_the_system_roles_then_custom_ones(api: WorkatoApiClient):
    """Role names offered are Admin, Analyst, Operator, then the workspace's custom roles."""
    assert api.roles() == ["Admin", "Analyst", "Operator", "Recipe Reviewer"]


def test_role_names_keep_their_case(serve, make_client):
    """A custom role differing only in case is a different role; a duplicate is listed once."""
    custom = [{"id": 1, "name": "analyst"}, {"id": 2, "name": "Analyst"}]
    client = make_client(serve(custom_roles=custom))
    assert client.roles() == ["Admin", "Analyst", "Operator", "analyst"]


def test_roles_are_read_across_pages(serve, make_client):
    """More custom roles than one page holds are all listed."""
    custom = [{"id": n, "name": f"Role {n}"} for n in range(150)]
    client = make_client(serve(custom_roles=custom))
    assert len(client.roles()) == 3 + 150


def test_members_are_listed_with_their_roles(api: WorkatoApiClient):
    """Collaborators come back with their email and role name."""
    members = {m["email"]: m["role_name"] for m in api.members()}
    assert members["ada.admin@example.com"] == "Admin"
    assert members["rita.reviewer@example.com"] == "Recipe Reviewer"
    assert len(members) == 4


def test_members_are_read_across_pages(serve, make_client):
    """More collaborators than one page holds are all listed, each once."""
    many = [{"id": n, "name": f"M{n}", "email": f"m{n}@example.com"} for n in range(230)]
    client = make_client(serve(members=many))
    assert [m["id"] for m in client.members()] == list(range(230))


def test_check_passes_with_a_valid_token(api: WorkatoApiClient):
    """check() succeeds when the token may read roles and members."""
    api.check()


def test_site_address_works_as_base_url(serve, make_client):
    """An admin may paste the site address; the client adds Workato's /api."""
    base = serve().removesuffix("/api")
    client = make_client(base)
    assert client.base_url == base + "/api"
    assert "Admin" in client.roles()


def test_wrong_token_says_where_to_create_one(serve, make_client):
    """A wrong token points to Workspace admin > API clients and is never shown."""
    secret = "wrong-" + uuid.uuid4().hex
    problem = problem_of(make_client(serve(), secret).check)
    assert problem.kind == "unauthorized"
    assert "Workspace admin > API clients" in problem.message
    assert secret not in problem.message and secret not in repr(problem)


def test_missing_privilege_names_the_endpoint(serve, make_client):
    """A client role without the collaborators privilege is told which call it lacks."""
    client = make_client(serve(privileges=("roles",)))
    problem = problem_of(client.check)
    assert problem.kind == "forbidden"
    assert "/api/members" in problem.message
    assert "Client roles" in problem.message


def test_simulator_allows_sixty_requests_a_minute(serve, clock: Clock):
    """The 61st request within a minute is answered 429 with Retry-After; later ones pass."""
    base = serve()
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with requests.Session() as session:
        statuses = [session.get(base + "/roles", headers=headers).status_code for _ in range(61)]
        refused = session.get(base + "/roles", headers=headers)
        other_resource = session.get(base + "/members", headers=headers)
        clock.now += 60
        later = session.get(base + "/roles", headers=headers)
    assert statuses == [200] * 60 + [429]
    assert (refused.status_code, refused.headers["Retry-After"]) == (429, "60")
    assert other_resource.status_code == 200  # the limit is per resource, as Workato's
    assert later.status_code == 200


def test_rate_limited_call_waits_and_succeeds(serve, make_client, sleeps: list[float]):
    """When the minute's budget is spent, the client waits Retry-After and carries on."""
    client = make_client(serve())
    for _ in range(60):
        client.roles()
    assert client.roles()[0] == "Admin"
    # The shared retry policy caps one wait at 30 s, so the minute is waited out in two.
    assert sum(sleeps) == 60.0


def test_rate_limit_without_retries_left_says_when(serve, make_client):
    """With no attempts left, a 429 says when to try again."""
    client = make_client(serve(), attempts=1)
    for _ in range(60):
        client.members()
    problem = problem_of(client.members)
    assert (problem.kind, problem.retry_after) == ("rate_limited", 60.0)
    assert "retry after 60 s" in problem.message


def test_activity_logs_are_paged_in_order(api: WorkatoApiClient):
    """The activity log is read page by page, oldest first."""
    assert [e["id"] for e in api.activity_logs(page_size=1)] == ["a1", "a2"]


def test_activity_logs_since(api: WorkatoApiClient):
    """Only entries from the given time on are read."""
    since = datetime(2025, 6, 2, tzinfo=UTC)
    assert [e["id"] for e in api.activity_logs(since=since)] == ["a2"]


def test_closed_port_is_connect(make_client):
    """Nothing listening gives a connection problem."""
    client = make_client(f"http://127.0.0.1:{free_port()}/api", attempts=1)
    assert problem_of(client.check).kind == "connect"


# --- servers that answer what Workato would not -------------------------------------------


@pytest.fixture
def answering(make_client) -> Iterator[Callable[..., WorkatoApiClient]]:
    """A client of a server answering each resource (roles=..., members=...) as told, and
    an empty list for the others."""
    with ExitStack() as servers:

        def start(**answers: Answer) -> WorkatoApiClient:
            def respond(request: Request) -> Answer:
                resource = request.path.removeprefix("/api/").split("/")[0]
                return answers.get(resource, (200, []))

            root = servers.enter_context(serve_wsgi(json_app(respond)))
            return make_client(root + "/api", attempts=1)

        yield start


@pytest.mark.parametrize(
    "answers",
    [
        {"roles": (200, {"unexpected": True})},
        {"members": (200, {"unexpected": True})},
        {"members": (200, {"data": {"id": 1}})},
        {"roles": (200, "Connected")},
        {"roles": (200, [1, 2, 3])},
        {"members": (200, [{"id": 1, "email": ["ada@example.com"]}])},
    ],
)
def test_check_refuses_answers_that_are_not_workatos_lists(answers, answering):
    """check() is not "Connected" for JSON of another shape: roles must be a list of roles,
    members a list (bare or under "data") of collaborators (C2)."""
    problem = problem_of(answering(**answers).check)
    assert problem.kind == errors.BAD_RESPONSE


def test_check_accepts_both_documented_envelopes(answering):
    """A bare array and {"data": [...]} are both Workato's lists."""
    answering(roles=(200, []), members=(200, {"data": []})).check()
    answering(roles=(200, [{"id": 1, "name": "Reviewer"}]), members=(200, [])).check()


@pytest.mark.parametrize(
    ("call", "answers"),
    [
        ("roles", {"roles": (200, [{"id": {}, "name": "Reviewer"}])}),
        ("roles", {"roles": (200, [{"id": [1], "name": "Reviewer"}])}),
        ("roles", {"roles": (200, [{"id": 1, "name": 5}])}),
        ("roles", {"roles": (200, [{"id": 1, "name": {"en": "Reviewer"}}])}),
        ("members", {"members": (200, {"data": [{"id": 1, "role_name": ["Admin"]}]})}),
        ("activity_logs", {"activity_logs": (200, {"data": [{"id": {"after": 1}}]})}),
    ],
)
def test_wrong_shapes_are_bad_responses(call, answers, answering):
    """Ids that are not numbers or text, and names that are not text, are bad responses, not
    a TypeError (an unhashable id) or a role named "5"."""
    client = answering(**answers)
    problem = problem_of(lambda: list(getattr(client, call)()))
    assert problem.kind == errors.BAD_RESPONSE


@pytest.mark.parametrize("status", [400, 401, 403, 429, 500])
def test_echoed_token_is_redacted_from_problems(status):
    """A server whose error echoes the Authorization header: the token is in neither the
    problem's message nor its detail (S3)."""

    def echo(request: Request) -> Answer:
        return status, {"message": f"refused {request.headers.get('Authorization')}"}

    with serve_wsgi(json_app(echo)) as root:
        client = WorkatoApiClient(root + "/api", TOKEN, retry=RetryPolicy(attempts=1))
        with client:
            problem = problem_of(client.check)
    assert problem.status == status
    for text in (problem.message, problem.detail, str(problem), repr(problem)):
        assert TOKEN not in text
    assert problem.detail == "refused Bearer [redacted]"
