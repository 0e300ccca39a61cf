"""The SCIM client against the real scim2-server (Workato's stand-in), with a fault proxy in
front of it for rate limits, failures, slowness and dropped connections."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from werkzeug.middleware.dispatcher import DispatcherMiddleware
from werkzeug.wrappers import Request, Response

from dashboard.connections import errors
from dashboard.connections.errors import ConnectionProblem
from dashboard.connections.http import Http, RetryPolicy
from dashboard.connections.scim import WRITES_DISABLED, ScimClient
from dashboard.connections.scim_models import DEFAULT_ROLE_FIELDS, WORKATO_ROLE, build_user
from dashboard.sandbox.workato_scim import create_workato_scim_app
from tests.support.fault_proxy import FaultProxy
from tests.support.scim_server import (
    Answer,
    ScimServer,
    free_port,
    json_app,
    serve_wsgi,
    workato_schemas_with,
)

CORE = "urn:ietf:params:scim:schemas:core:2.0:User"
ERROR_URN = "urn:ietf:params:scim:api:messages:2.0:Error"
LIST = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"]}
NO_CONFIG = {"patch": {"supported": False}, "filter": {"supported": True}}
NO_PATCH_CONFIG = {
    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
    "patch": {"supported": False},
    "bulk": {"supported": False, "maxOperations": 0, "maxPayloadSize": 0},
    "filter": {"supported": True, "maxResults": 200},
    "changePassword": {"supported": False},
    "sort": {"supported": False},
    "etag": {"supported": False},
}


def unique(who: str = "user") -> str:
    return f"{who}.{uuid.uuid4().hex[:10]}@example.com"


@pytest.fixture(scope="module")
def scim_server() -> Iterator[ScimServer]:
    with ScimServer() as server:
        yield server


@pytest.fixture(scope="module")
def no_patch_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ScimServer]:
    folder = tmp_path_factory.mktemp("no-patch")
    with ScimServer(service_provider_config=NO_PATCH_CONFIG, folder=folder) as server:
        yield server


@pytest.fixture
def sleeps() -> list[float]:
    """The waits the client asked for: nobody really sleeps."""
    return []


@pytest.fixture
def make_client(sleeps: list[float]) -> Iterator[Callable[..., ScimClient]]:
    clients: list[ScimClient] = []

    def make(base_url: str, token: str, attempts: int = 4, **kwargs) -> ScimClient:
        retry = RetryPolicy(attempts=attempts, sleep=sleeps.append)
        client = ScimClient(base_url, token, retry=retry, **kwargs)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def scim(scim_server: ScimServer, make_client) -> ScimClient:
    return make_client(scim_server.base_url, scim_server.token)


@pytest.fixture
def proxy(scim_server: ScimServer) -> Iterator[FaultProxy]:
    with FaultProxy(scim_server.root_url) as fault_proxy:
        yield fault_proxy


@pytest.fixture
def proxied(proxy: FaultProxy, scim_server: ScimServer, make_client) -> ScimClient:
    return make_client(proxy.root_url + "/v2", scim_server.token)


def problem_of(call: Callable[[], object]) -> ConnectionProblem:
    with pytest.raises(ConnectionProblem) as caught:
        call()
    return caught.value


# --- discovery ------------------------------------------------------------------------------


def test_check_proves_url_and_token_and_counts_users(scim: ScimClient):
    """check() succeeds with the right URL and token and reports how many users Workato has."""
    before = scim.check()
    scim.create_user(build_user(unique()))
    assert scim.check() == before + 1


def test_service_provider_config_reports_capabilities(scim: ScimClient):
    """The announced PATCH, bulk, filter and ETag support is read from the server."""
    caps = scim.service_provider_config()
    assert (caps.served, caps.patch, caps.bulk, caps.filter, caps.etag) == (
        True,
        True,
        True,
        True,
        True,
    )
    assert caps.max_results == 1000


def test_workato_role_schema_is_declared(scim: ScimClient):
    """A Workato stand-in declares the WorkatoRole extension with its three role fields."""
    assert scim.has_schema(WORKATO_ROLE) is True
    schema = next(s for s in scim.schemas() if s.id == WORKATO_ROLE)
    assert [a.name for a in schema.attributes] == list(DEFAULT_ROLE_FIELDS)
    user_type = next(t for t in scim.resource_types() if t.id == "User")
    assert WORKATO_ROLE in [str(e.schema_) for e in user_type.schema_extensions]


def test_server_without_workato_schema_says_so(make_client):
    """A SCIM server without Workato's schema files answers has_schema False, not None."""
    with ScimServer(workato=False) as server:
        client = make_client(server.base_url, server.token)
        assert client.has_schema(WORKATO_ROLE) is False
        assert client.has_schema("urn:ietf:params:scim:schemas:core:2.0:User") is True


@pytest.fixture
def bare_scim_url() -> Iterator[str]:
    """A SCIM server that serves no discovery endpoint at all (404 for each)."""
    inner = create_workato_scim_app("bare-token")

    def app(environ, start_response):
        path = Request(environ).path
        if path.endswith(("/ServiceProviderConfig", "/Schemas", "/ResourceTypes")):
            return Response("no such page", status=404)(environ, start_response)
        return inner(environ, start_response)

    with serve_wsgi(app) as root:
        yield root + "/v2"


def test_missing_discovery_gives_safe_defaults(bare_scim_url: str, make_client):
    """Without /ServiceProviderConfig the client falls back to PUT and plain reads."""
    client = make_client(bare_scim_url, "bare-token")
    caps = client.service_provider_config()
    assert (caps.served, caps.patch, caps.bulk, caps.filter, caps.etag) == (
        False,
        False,
        False,
        True,
        False,
    )


def test_missing_schemas_endpoint_means_cannot_tell(bare_scim_url: str, make_client):
    """Without /Schemas the extension's presence is unknown (None), not absent."""
    client = make_client(bare_scim_url, "bare-token")
    assert client.has_schema(WORKATO_ROLE) is None
    assert client.schemas() is None
    assert client.resource_types() is None


def test_deactivate_without_announced_patch_uses_put(bare_scim_url: str, make_client):
    """With no config served, suspending replaces the whole user and keeps its roles."""
    client = make_client(bare_scim_url, "bare-token")
    created = client.create_user(build_user(unique(), roles={"workato_role": "Analyst"}))
    suspended = client.deactivate_user(created.id)
    assert suspended.active is False
    assert suspended.roles["workato_role"] == "Analyst"


# --- users ---------------------------------------------------------------------------------


def test_create_and_get_round_trip_with_roles(scim: ScimClient):
    """A created user comes back with its names, email and WorkatoRole values."""
    name = unique("ada")
    resource = build_user(
        name,
        given_name="Ada",
        family_name="Lovelace",
        email=name,
        roles={"workato_role": "Admin", "workato_role_prod": "Recipe Reviewer"},
    )
    created = scim.create_user(resource)
    fetched = scim.get_user(created.id)
    for user in (created, fetched):
        assert user.user_name == name
        assert user.active is True
        assert user.name == {"givenName": "Ada", "familyName": "Lovelace"}
        assert user.primary_email == name
        assert user.roles == {
            "workato_role": "Admin",
            "workato_role_test": None,
            "workato_role_prod": "Recipe Reviewer",
        }
        assert user.raw[WORKATO_ROLE]["workato_role"] == "Admin"
    assert fetched.version is not None


def test_create_accepts_a_template_dict_without_schemas(scim: ScimClient):
    """A rendered template that forgets `schemas` still names the core and extension URNs."""
    name = unique()
    created = scim.create_user({"userName": name, WORKATO_ROLE: {"workato_role": "Operator"}})
    assert created.roles["workato_role"] == "Operator"


def test_find_user_ignores_case(scim: ScimClient):
    """OneLogin matches by userName; Workato's userName is case-insensitive."""
    name = unique("Mixed.Case")
    created = scim.create_user(build_user(name))
    found = scim.find_user(name.upper())
    assert found is not None and found.id == created.id


def test_find_user_quotes_the_filter_value(scim: ScimClient):
    """Quotes and backslashes in a userName cannot break or widen the filter."""
    odd = f'o"brien\\{uuid.uuid4().hex[:6]}@example.com'
    created = scim.create_user(build_user(odd))
    scim.create_user(build_user("o" + unique()))
    found = scim.find_user(odd)
    assert found is not None and found.id == created.id


def test_find_user_absent_is_none(scim: ScimClient):
    """Looking up a userName Workato does not have answers None."""
    assert scim.find_user(unique("nobody")) is None


def test_get_unknown_user_is_none(scim: ScimClient):
    """A SCIM id Workato does not know answers None (the user was deleted there)."""
    assert scim.get_user("no-such-id") is None


def test_replace_user_sets_exactly_the_new_roles(scim: ScimClient):
    """PUT replaces the roles: a role left out of the new resource is cleared."""
    name = unique()
    created = scim.create_user(build_user(name, roles={"workato_role": "Admin"}))
    replaced = scim.replace_user(
        created.id, build_user(name, roles={"workato_role_test": "Operator"})
    )
    assert replaced.roles == {
        "workato_role": None,
        "workato_role_test": "Operator",
        "workato_role_prod": None,
    }
    assert scim.get_user(created.id).roles == replaced.roles


def test_replace_unknown_user_is_not_found(scim: ScimClient):
    """Replacing a user Workato no longer has says so, not that the base URL is wrong."""
    problem = problem_of(lambda: scim.replace_user("gone-id", build_user(unique())))
    assert problem.kind == "not_found"
    assert "no user with SCIM id gone-id" in problem.message


def test_patch_user_changes_one_role(scim: ScimClient):
    """PATCH changes one role field and leaves the others (204 answers are re-read)."""
    created = scim.create_user(
        build_user(unique(), roles={"workato_role": "Admin", "workato_role_test": "Analyst"})
    )
    path = f"{WORKATO_ROLE}:workato_role_test"
    patched = scim.patch_user(created.id, [{"op": "replace", "path": path, "value": "Operator"}])
    assert patched.roles["workato_role_test"] == "Operator"
    assert patched.roles["workato_role"] == "Admin"


def test_deactivate_and_reactivate_use_patch(proxied: ScimClient, proxy: FaultProxy):
    """Suspending and reactivating flip `active` with one PATCH each when PATCH is announced."""
    created = proxied.create_user(build_user(unique(), roles={"workato_role": "Analyst"}))
    assert proxied.deactivate_user(created.id).active is False
    assert proxied.get_user(created.id).active is False
    reactivated = proxied.reactivate_user(created.id)
    assert reactivated.active is True
    assert reactivated.roles["workato_role"] == "Analyst"
    assert (proxy.seen("PATCH"), proxy.seen("PUT")) == (2, 0)


def test_deactivate_uses_put_when_patch_not_announced(no_patch_server: ScimServer, make_client):
    """A server announcing no PATCH is sent a PUT of the whole user with active false."""
    with FaultProxy(no_patch_server.root_url) as proxy:
        client = make_client(proxy.root_url + "/v2", no_patch_server.token)
        created = client.create_user(build_user(unique(), roles={"workato_role": "Operator"}))
        suspended = client.deactivate_user(created.id)
        assert (proxy.seen("PATCH"), proxy.seen("PUT")) == (0, 1)
    assert suspended.active is False
    assert suspended.roles["workato_role"] == "Operator"


def test_patch_refused_when_not_announced(no_patch_server: ScimServer, make_client):
    """patch_user refuses up front when the server does not announce PATCH."""
    client = make_client(no_patch_server.base_url, no_patch_server.token)
    created = client.create_user(build_user(unique()))
    problem = problem_of(
        lambda: client.patch_user(created.id, [{"op": "replace", "path": "active", "value": False}])
    )
    assert problem.kind == "rejected"
    assert "PATCH" in problem.message


def test_list_users_pages_through_everyone(make_client):
    """Listing walks startIndex/count pages until totalResults, without repeats."""
    with ScimServer() as server:
        client = make_client(server.base_url, server.token)
        names = {unique(f"p{i}") for i in range(7)}
        for name in names:
            client.create_user(build_user(name))
        first = client.users_page(1, 3)
        listed = [u.user_name for u in client.list_users(page_size=3)]
    assert (len(first.users), first.total) == (3, 7)
    assert sorted(listed) == sorted(names)


def test_extra_environment_role_field(tmp_path: Path, make_client):
    """An extra environment role field works once Workato's schema declares it."""
    fields = (*DEFAULT_ROLE_FIELDS, "workato_role_staging")
    schemas = workato_schemas_with(tmp_path, ["workato_role_staging"])
    with ScimServer(schemas=schemas) as server:
        client = make_client(server.base_url, server.token, role_fields=fields)
        created = client.create_user(
            build_user(unique(), roles={"workato_role_staging": "Analyst"}, role_fields=fields)
        )
        path = f"{WORKATO_ROLE}:workato_role_staging"
        patched = client.patch_user(created.id, [{"op": "replace", "path": path, "value": "Admin"}])
        found = client.find_user(created.user_name)
    assert created.roles["workato_role_staging"] == "Analyst"
    assert patched.roles["workato_role_staging"] == "Admin"
    assert found.roles["workato_role_staging"] == "Admin"


# --- refusals --------------------------------------------------------------------------------


def test_wrong_token_is_unauthorized_without_revealing_it(scim_server: ScimServer, make_client):
    """A wrong token says where to generate a new one, and never shows the token."""
    secret = "wrong-token-" + uuid.uuid4().hex
    problem = problem_of(make_client(scim_server.base_url, secret).check)
    assert problem.kind == "unauthorized"
    assert "Workspace admin > Settings > SCIM" in problem.message
    assert secret not in problem.message and secret not in repr(problem)


def test_wrong_base_path_is_not_found(scim_server: ScimServer, make_client):
    """A base URL with the wrong path says the base URL is probably wrong."""
    client = make_client(scim_server.root_url + "/scim/v2", scim_server.token)
    problem = problem_of(client.check)
    assert problem.kind == "not_found"
    assert "base URL" in problem.message


def test_closed_port_is_connect(make_client, sleeps: list[float]):
    """Nothing listening gives a connection problem after the configured attempts."""
    client = make_client(f"http://127.0.0.1:{free_port()}/v2", "t", attempts=2)
    problem = problem_of(client.check)
    assert problem.kind == "connect"
    assert len(sleeps) == 1


def test_undeclared_attribute_is_rejected_with_scim_type(scim: ScimClient):
    """An undeclared role field is refused with Workato's scimType and detail in the message."""
    resource = build_user(unique())
    resource[WORKATO_ROLE] = {"workato_role_staging": "Admin"}
    problem = problem_of(lambda: scim.create_user(resource))
    assert (problem.kind, problem.status, problem.scim_type) == ("rejected", 400, "invalidSyntax")
    assert "invalidSyntax" in problem.message
    assert "workato_role_staging" in problem.message


def test_duplicate_user_name_is_a_uniqueness_refusal(scim: ScimClient):
    """Creating a userName twice is refused as uniqueness (409), explained."""
    name = unique()
    scim.create_user(build_user(name))
    problem = problem_of(lambda: scim.create_user(build_user(name.upper())))
    assert (problem.kind, problem.status, problem.scim_type) == ("rejected", 409, "uniqueness")
    assert "already taken" in problem.message


def test_html_answer_is_bad_response(make_client):
    """A base URL that answers a web page is reported as not the SCIM API."""

    def page(environ, start_response):
        return Response("<html>Sign in</html>", mimetype="text/html")(environ, start_response)

    with serve_wsgi(page) as root:
        problem = problem_of(make_client(root + "/v2", "t").check)
    assert problem.kind == "bad_response"


# --- transient failures through the fault proxy -----------------------------------------------


def test_rate_limit_is_retried_after_retry_after(proxied, proxy, scim, sleeps):
    """A 429 is waited out for exactly the Retry-After seconds, then the read succeeds."""
    created = scim.create_user(build_user(unique()))
    proxy.answer_next(1, 429, retry_after="7")
    assert proxied.get_user(created.id).id == created.id
    assert sleeps == [7.0]
    assert proxy.seen("GET") == 2


def test_unavailable_is_retried_then_succeeds(proxied, proxy, scim, sleeps):
    """Two 503 answers are retried with backoff, then the call succeeds with the server's
    real answer."""
    users = scim.check()  # straight to the server, not through the proxy
    proxy.answer_next(2, 503)
    assert proxied.check() == users
    assert len(sleeps) == 2
    assert proxy.seen() == 3


def test_persistent_server_error_gives_up_after_attempts(proxy, scim_server, make_client, sleeps):
    """A 500 that persists ends as server_error after the configured attempts."""
    client = make_client(proxy.root_url + "/v2", scim_server.token, attempts=3)
    proxy.answer_next(10, 500)
    problem = problem_of(client.check)
    assert (problem.kind, problem.status) == ("server_error", 500)
    assert proxy.seen() == 3 and len(sleeps) == 2


def test_create_is_not_retried(proxied, proxy, scim, sleeps):
    """A create answered 503 is not sent again (it may have been applied)."""
    name = unique()
    proxy.answer_next(1, 503)
    problem = problem_of(lambda: proxied.create_user(build_user(name)))
    assert problem.kind == "server_error"
    assert (proxy.seen("POST"), sleeps) == (1, [])
    assert scim.find_user(name) is None


def test_dropped_connection_on_read_is_retried(proxied, proxy, scim, sleeps):
    """A connection dropped without an answer is retried for a read, which then answers."""
    users = scim.check()  # straight to the server, not through the proxy
    proxy.drop_next(1)
    assert proxied.check() == users
    assert len(sleeps) == 1


def test_slow_answer_is_a_timeout(proxy, scim_server, make_client):
    """An answer slower than the timeout says so, naming the timeout."""
    client = make_client(proxy.root_url + "/v2", scim_server.token, attempts=1, timeout=0.3)
    release = proxy.hold_next(1)
    try:
        problem = problem_of(client.check)
    finally:
        release.set()
    assert problem.kind == "timeout"
    assert "0.3 s" in problem.message


# --- the demo's in-process stand-in ----------------------------------------------------------


def test_demo_stand_in_works_under_a_path_prefix(make_client):
    """Mounted under /sandbox/workato/scim, the stand-in serves SCIM at .../scim/v2."""
    prefix = "/sandbox/workato/scim"
    app = DispatcherMiddleware(Response("dashboard"), {prefix: create_workato_scim_app("demo")})
    with serve_wsgi(app) as root:
        client = make_client(f"{root}{prefix}/v2", "demo")
        assert client.check() == 0
        assert client.has_schema(WORKATO_ROLE) is True
        created = client.create_user(build_user(unique(), roles={"workato_role": "Admin"}))
        found = client.find_user(created.user_name)
    assert found.roles["workato_role"] == "Admin"
    assert created.raw["meta"]["location"] == f"{root}{prefix}/v2/Users/{created.id}"


# --- the token goes to the base URL only (S2) -----------------------------------------------


def a_user(user_id: str = "u-1", **extra: object) -> dict[str, object]:
    return {"schemas": [CORE], "id": user_id, "userName": "ada@example.com", **extra}


@pytest.fixture
def elsewhere() -> Iterator[tuple[str, list[Request]]]:
    """Another host (127.0.0.2 is not the base URL's 127.0.0.1) that records what reaches it."""
    seen: list[Request] = []

    def answer(request: Request) -> Answer:
        seen.append(request)
        return 200, a_user()

    with serve_wsgi(json_app(answer)) as root:
        yield root.replace("127.0.0.1", "127.0.0.2"), seen


def created_with_location(location: Callable[[str], str], seen: list[Request]):
    """A SCIM server answering POST /v2/Users with 201, no body and `location(its root)`,
    and GET /v2/Users/u-1 with the user."""
    root: list[str] = []

    def answer(request: Request) -> Answer:
        seen.append(request)
        if request.method == "POST":
            return 201, None, {"Location": location(root[0])}
        return 200, a_user()

    return root, json_app(answer)


@pytest.mark.parametrize(
    "where",
    [
        "another host",
        "another host, scheme-relative",
        "another path of the same host",
        "a path climbing out of the base URL",
    ],
)
def test_location_outside_the_base_url_is_not_followed(where, elsewhere, make_client):
    """A 201 whose Location leads away from the base URL is a bad response: the bearer token
    is never sent there (S2)."""
    other_host, other_seen = elsewhere
    seen: list[Request] = []
    locations = {
        "another host": lambda root: f"{other_host}/v2/Users/u-1",
        "another host, scheme-relative": lambda root: f"{other_host[5:]}/v2/Users/u-1",
        "another path of the same host": lambda root: f"{root}/admin/Users/u-1",
        "a path climbing out of the base URL": lambda root: f"{root}/v2/../admin/Users/u-1",
    }
    root, app = created_with_location(locations[where], seen)
    with serve_wsgi(app) as served:
        root.append(served)
        client = make_client(served + "/v2", "scim-secret")
        problem = problem_of(lambda: client.create_user(build_user(unique())))
    assert problem.kind == errors.BAD_RESPONSE
    assert "outside the base URL" in problem.message
    assert [r.method for r in seen] == ["POST"]
    assert other_seen == []


@pytest.mark.parametrize(
    "location",
    [lambda root: f"{root}/v2/Users/u-1", lambda root: "/v2/Users/u-1", lambda root: "Users/u-1"],
    ids=["absolute", "root-relative", "relative"],
)
def test_location_under_the_base_url_is_followed(location, make_client):
    """A 201 without a body is followed by a GET of its Location under the base URL, however
    the Location is written."""
    seen: list[Request] = []
    root, app = created_with_location(location, seen)
    with serve_wsgi(app) as served:
        root.append(served)
        created = make_client(served + "/v2", "scim-secret").create_user(build_user(unique()))
    assert created.id == "u-1"
    assert [(r.method, r.path) for r in seen] == [("POST", "/v2/Users"), ("GET", "/v2/Users/u-1")]


@pytest.mark.parametrize(
    ("url", "under"),
    [
        ("https://scim.example.com/v2", True),
        ("https://scim.example.com/v2/Users/1", True),
        ("HTTPS://SCIM.example.com/v2/Users/1", True),
        ("https://scim.example.com/v2x/Users/1", False),
        ("https://scim.example.com/v2/../Users/1", False),
        ("https://scim.example.com/v2/%2e%2e/Users/1", False),
        ("http://scim.example.com/v2/Users/1", False),
        ("https://scim.example.com:8443/v2/Users/1", False),
        ("https://scim.example.com.evil.test/v2/Users/1", False),
        ("https://scim.example.com@evil.test/v2/Users/1", False),
        ("https://evil.test/v2/Users/1", False),
    ],
)
def test_http_follows_only_urls_under_its_base(url: str, under: bool):
    """Http.url takes a path, or an absolute URL under the base URL; anything else is refused."""
    http = Http("Workato SCIM API", "https://scim.example.com/v2", describe=lambda r: None)
    assert http.is_under_base(url) is under
    if under:
        assert http.url(url) == url
    else:
        assert problem_of(lambda: http.url(url)).kind == errors.BAD_RESPONSE
    assert http.url("/Users") == "https://scim.example.com/v2/Users"


# --- the token never appears in a problem (S3) ----------------------------------------------


@pytest.mark.parametrize("status", [400, 401, 403, 404, 500])
def test_echoed_token_is_redacted_from_problems(status: int, make_client):
    """A server whose error echoes the Authorization header: neither the problem's message
    nor its detail carries the token."""
    token = "scim-token-" + uuid.uuid4().hex

    def echo(request: Request) -> Answer:
        said = f"bad credentials: {request.headers.get('Authorization')}"
        return status, {"schemas": [ERROR_URN], "status": str(status), "detail": said}

    with serve_wsgi(json_app(echo)) as root:
        problem = problem_of(make_client(root + "/v2", token, attempts=1).check)
    assert problem.status == status
    for text in (problem.message, problem.detail, str(problem), repr(problem)):
        assert token not in text
    assert "Bearer [redacted]" in problem.detail


# --- SCIM disabled: no writes (C5) ----------------------------------------------------------


def test_disabled_scim_sends_no_writes_but_reads(scim, proxy, scim_server, make_client):
    """With writes_allowed False every write is refused as scim_disabled before anything is
    sent, and the user in Workato is untouched; reads still work."""
    existing = scim.create_user(build_user(unique(), roles={"workato_role": "Analyst"}))
    client = make_client(proxy.root_url + "/v2", scim_server.token, writes_allowed=False)
    replace_op = [{"op": "replace", "path": "active", "value": False}]
    writes = {
        "create_user": lambda: client.create_user(build_user(unique())),
        "replace_user": lambda: client.replace_user(existing.id, build_user(unique())),
        "patch_user": lambda: client.patch_user(existing.id, replace_op),
        "set_active": lambda: client.set_active(existing.id, False),
        "deactivate_user": lambda: client.deactivate_user(existing.id),
        "reactivate_user": lambda: client.reactivate_user(existing.id),
    }
    for name, write in writes.items():
        problem = problem_of(write)
        assert (problem.kind, problem.message) == (errors.SCIM_DISABLED, WRITES_DISABLED), name
        assert problem.transient is False
    assert proxy.requests == []  # not even a read on the way to a write

    def state(user):  # raw differs: meta.location names the proxy's port
        return (user.id, user.active, user.roles, user.version)

    assert state(client.get_user(existing.id)) == state(existing)
    assert state(client.find_user(existing.user_name)) == state(existing)
    assert client.check() >= 1
    assert {method for method, _ in proxy.requests} == {"GET"}


# --- answers of the wrong shape are bad responses -------------------------------------------


@pytest.fixture
def answering(make_client) -> Iterator[Callable[..., ScimClient]]:
    """A client of a server answering `answer` to everything, but `config` at
    /ServiceProviderConfig."""
    with ExitStack() as servers:

        def start(answer: Answer, config: Answer = (200, NO_CONFIG)) -> ScimClient:
            def respond(request: Request) -> Answer:
                return config if request.path.endswith("/ServiceProviderConfig") else answer

            root = servers.enter_context(serve_wsgi(json_app(respond)))
            return make_client(root + "/v2", "scim-secret", attempts=1)

        yield start


@pytest.mark.parametrize(
    ("call", "answer"),
    [
        ("check", {**LIST, "totalResults": True}),
        ("users_page", {**LIST, "totalResults": 1, "Resources": 5}),
        ("users_page", {**LIST, "totalResults": 1, "Resources": {"id": "u-1"}}),
        ("users_page", {**LIST, "totalResults": 1, "Resources": [a_user(id={})]}),
        ("find_user", {**LIST, "totalResults": 1, "Resources": [["not", "a", "user"]]}),
        ("get_user", a_user(**{WORKATO_ROLE: {"workato_role_other": {"nested": 1}}})),
        ("get_user", a_user(**{WORKATO_ROLE: "Admin"})),
        ("get_user", a_user(meta={"version": 7})),
        ("get_user", []),
        ("service_provider_config", {"patch": "yes"}),
        ("schemas", {"Resources": 5}),
        ("schemas", [{"id": 5, "attributes": "none"}]),
    ],
)
def test_wrong_shapes_are_bad_responses(call: str, answer: Any, answering):
    """JSON of a shape SCIM does not allow is a bad_response, never a KeyError or
    TypeError from inside the client."""
    config = answer if call == "service_provider_config" else NO_CONFIG
    client = answering((200, answer), config=(200, config))
    arguments = {"get_user": ("u-1",), "find_user": ("ada@example.com",)}
    problem = problem_of(lambda: getattr(client, call)(*arguments.get(call, ())))
    assert problem.kind == errors.BAD_RESPONSE


@pytest.mark.parametrize(
    "error",
    [
        {"schemas": 5, "detail": "went wrong"},
        {"detail": {"nested": "object"}, "scimType": ["list"]},
        {"schemas": [ERROR_URN], "scimType": {"x": 1}, "detail": 404},
    ],
)
def test_error_bodies_of_the_wrong_shape_still_describe_the_failure(error, answering):
    """An error body of an odd shape still gives a problem for its status, with no
    unhashable scimType or object detail in it."""
    problem = problem_of(answering((409, error)).check)
    assert (problem.kind, problem.status, problem.scim_type) == ("rejected", 409, None)
    assert problem.detail in (None, "went wrong", "SCIM error 409")


def test_active_is_read_from_the_validated_value(answering):
    """A server sending "active": "false" as text has a suspended user, not an active one."""
    client = answering((200, a_user(active="false")))
    assert client.get_user("u-1").active is False


@pytest.mark.parametrize("retry_after", ["²", "Wed, 21 Oct 2015 07:28:00 -0000", "soon"])
def test_odd_retry_after_is_a_server_error_not_a_crash(retry_after: str, answering):
    """A Retry-After that is neither ASCII seconds nor a zoned date gives the usual problem
    (once a ValueError or TypeError escaped from inside the client)."""
    problem = problem_of(answering((503, {"detail": "busy"}, {"Retry-After": retry_after})).check)
    assert (problem.kind, problem.status) == (errors.SERVER_ERROR, 503)
    assert problem.retry_after in (None, 0.0)
