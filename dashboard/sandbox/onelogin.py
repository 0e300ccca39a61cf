"""A stateful stand-in for the part of OneLogin's API this dashboard uses (DESIGN.md §2).

`OneLoginState` is the tenant: plain dataclasses that tests and the demo change directly (a
role's `user_ids`, an app's `parameters`, a user's `status`) or through the helpers that keep
ids and invariants. `create_app(state)` is a standalone WSGI app serving it with OneLogin's
paths, shapes, cursor paging, credential scopes, error bodies and rate-limit headers; the tests
validate its answers against OneLogin's published OpenAPI spec.

OneLogin words errors in three styles, kept here: v1 wraps them in `status`, the v2 user and
token endpoints use a flat `{error, code, type, message}`, the other v2 endpoints
`{statusCode, name, message}`. A query parameter this double does not implement is refused
with 400, never ignored, so no client believes a filter worked when it did not.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
import secrets
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any
from urllib.parse import urlencode

from flask import Flask, Response, g, jsonify, request

AUTH_ONLY, READ_USERS, MANAGE_USERS = "Authentication Only", "Read users", "Manage users"
READ_ALL, MANAGE_ALL = "Read All", "Manage All"
# Which credential scopes may make each call, per OneLogin's API docs.
READ_USERS_SCOPES = frozenset({READ_USERS, MANAGE_USERS, READ_ALL, MANAGE_ALL})
WRITE_USERS_SCOPES = frozenset({MANAGE_USERS, MANAGE_ALL})
READ_APPS_SCOPES = frozenset({READ_ALL, MANAGE_ALL})
MANAGE_ALL_SCOPES = frozenset({MANAGE_ALL})

USER_STATUSES = frozenset({0, 1, 2, 3, 4, 5, 7, 8})  # there is no 6
TOKEN_LIFETIME = 36000
V1, FLAT, ALT = "v1", "flat", "alt"  # the error styles of the module docstring
PAGING_HEADERS = ("After-Cursor", "Total-Count", "Page-Items")
RATE_HEADERS = ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset")
CREATED = "2024-01-08T09:00:00.000Z"


def stamp(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


@dataclass
class User:
    id: int
    username: str
    email: str
    firstname: str
    lastname: str
    status: int = 1
    custom_attributes: dict[str, str | None] = field(default_factory=dict)
    created_at: str = CREATED
    updated_at: str = CREATED


@dataclass
class Parameter:
    """An app parameter; App.parameters keys it by its short name."""

    label: str
    user_attribute_mappings: str  # "email", "custom_attribute_<shortname>", "_macro_", ...
    include_in_saml_assertion: bool = True
    provisioned_entitlements: bool = False
    user_attribute_macros: str | None = None
    id: int = 0


@dataclass
class App:
    id: int
    name: str
    connector_id: int
    auth_method: int = 2  # SAML
    provisioning_enabled: bool = True
    parameters: dict[str, Parameter] = field(default_factory=dict)
    created_at: str = CREATED


@dataclass
class Role:
    id: int
    name: str
    app_ids: list[int] = field(default_factory=list)
    user_ids: list[int] = field(default_factory=list)  # users get apps through roles


@dataclass
class CustomAttribute:
    id: int
    shortname: str
    name: str


@dataclass
class Credential:
    client_id: str
    client_secret: str
    scope: str = MANAGE_ALL


@dataclass
class Token:
    value: str
    credential: Credential
    created_at: float
    expires_at: float


@dataclass
class Scheduled:
    """A canned answer (a fault or a 429) for the next `times` calls under `path`."""

    status: int
    times: int
    retry_after: int | None = None
    path: str = "/"


@dataclass
class OneLoginState:
    account_id: int = 81234
    users: dict[int, User] = field(default_factory=dict)
    apps: dict[int, App] = field(default_factory=dict)
    roles: dict[int, Role] = field(default_factory=dict)
    attributes: list[CustomAttribute] = field(default_factory=list)  # in display order
    events: list[dict[str, Any]] = field(default_factory=list)
    event_types: list[dict[str, Any]] = field(default_factory=list)
    credentials: dict[str, Credential] = field(default_factory=dict)
    # (user id, app id) -> (provisioning_state, provisioning_status); default provisioned
    provisioning: dict[tuple[int, int], tuple[str, str]] = field(default_factory=dict)
    rate_limit: int = 5000  # API calls per window (OneLogin's v1 limit), tokens not counted
    rate_window: int = 3600  # seconds
    lower_case_headers: bool = False  # paging and rate headers, as OneLogin sometimes sends
    clock: Callable[[], float] = time.time
    calls: Counter[str] = field(default_factory=Counter)  # per endpoint: "issue_token", ...
    log: deque[str] = field(default_factory=lambda: deque(maxlen=1000))  # "PUT /api/..."
    tokens: dict[str, Token] = field(default_factory=dict)
    scheduled: list[Scheduled] = field(default_factory=list)
    window: tuple[float, int] = (0.0, 0)  # (start, calls so far)
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False, compare=False)

    @classmethod
    def seeded(cls) -> OneLoginState:
        """The demo tenant and its seeded problems (see onelogin_seed)."""
        from dashboard.sandbox.onelogin_seed import seed

        return seed(cls())

    def add_credential(self, client_id: str, secret: str, scope: str = MANAGE_ALL) -> Credential:
        self.credentials[client_id] = Credential(client_id, secret, scope)
        return self.credentials[client_id]

    def expire_tokens(self) -> None:
        for token in self.tokens.values():
            token.expires_at = self.clock() - 1

    def token_for(self, credential: Credential) -> Token:
        """OneLogin hands out the same token until it expires."""
        now = self.clock()
        self.tokens = {v: t for v, t in self.tokens.items() if t.expires_at > now}
        for token in self.tokens.values():
            if token.credential is credential:
                return token
        token = Token(secrets.token_hex(32), credential, now, now + TOKEN_LIFETIME)
        self.tokens[token.value] = token
        return token

    def add_user(self, firstname: str, lastname: str, *, status: int = 1, **roles: str) -> User:
        """A user named first.last@example.com, with custom attribute values `roles`."""
        local = re.sub(r"[^a-z.]", "", f"{firstname}.{lastname}".lower())
        user_id = max(self.users, default=52140000) + 1
        self.users[user_id] = User(user_id, local, f"{local}@example.com", firstname, lastname)
        self.users[user_id].status = status
        self.set_custom_attributes(user_id, roles)
        return self.users[user_id]

    def set_custom_attributes(self, user_id: int, values: dict[str, str | None]) -> None:
        unknown = set(values) - set(self.attribute_names())
        if unknown:
            raise KeyError(f"no custom attribute {sorted(unknown)}")
        user = self.users[user_id]
        # An empty value clears the field, as the v1 API documents.
        user.custom_attributes.update({k: v or None for k, v in values.items()})
        user.updated_at = stamp(self.clock())

    def attribute_names(self) -> list[str]:
        return [a.shortname for a in self.attributes]

    def define_attribute(self, shortname: str, name: str | None = None) -> CustomAttribute:
        next_id = max((a.id for a in self.attributes), default=87000) + 1
        self.attributes.append(CustomAttribute(next_id, shortname, name or shortname))
        return self.attributes[-1]

    def remove_attribute(self, shortname: str) -> None:
        self.attributes = [a for a in self.attributes if a.shortname != shortname]
        for user in self.users.values():
            user.custom_attributes.pop(shortname, None)

    def add_role(self, name: str, app_ids: list[int], user_ids: list[int]) -> Role:
        role_id = max(self.roles, default=700000) + 1
        self.roles[role_id] = Role(role_id, name, list(app_ids), list(user_ids))
        return self.roles[role_id]

    def app_user_ids(self, app_id: int) -> list[int]:
        roles = [r for r in self.roles.values() if app_id in r.app_ids]
        return sorted({u for r in roles for u in r.user_ids if u in self.users})

    def user_app_ids(self, user_id: int) -> list[int]:
        return sorted({a for r in self.roles.values() if user_id in r.user_ids for a in r.app_ids})

    def add_event(self, event_type_id: int, *, created_at: str | None = None, **fields: Any):
        event_id = max((e["id"] for e in self.events), default=990000000) + 1
        event = {"id": event_id, "created_at": created_at or stamp(self.clock())}
        event |= {"account_id": self.account_id, "event_type_id": event_type_id, **fields}
        self.events.append(event)
        return event

    def fail_next(self, status: int = 503, times: int = 1, *, path: str = "/") -> None:
        self.scheduled.append(Scheduled(status, times, None, path))

    def throttle_next(self, times: int = 1, *, retry_after: int = 1, path: str = "/") -> None:
        self.scheduled.append(Scheduled(429, times, retry_after, path))

    def take_scheduled(self, path: str) -> Scheduled | None:
        for answer in self.scheduled:
            if answer.times > 0 and path.startswith(answer.path):
                answer.times -= 1
                return answer
        return None

    def count_call(self) -> tuple[int, int]:
        """(calls left, seconds to the window's reset) once this call is counted."""
        now = self.clock()
        start, used = self.window
        if now >= start + self.rate_window:
            start, used = now, 0
        self.window = (start, used + 1)
        return self.rate_limit - used - 1, max(1, math.ceil(start + self.rate_window - now))


# --- the WSGI app ----------------------------------------------------------------------

_ROUTES: list[tuple[str, str, str, frozenset[str] | None, Callable[..., Any]]] = []
_TYPES = {
    400: ("bad request", "BadRequestError"),
    401: ("Unauthorized", "UnauthorizedError"),
    403: ("Forbidden", "ForbiddenError"),
    404: ("Not Found", "NotFoundError"),
    405: ("Method Not Allowed", "MethodNotAllowedError"),
    422: ("Unprocessable Entity", "UnprocessableEntityError"),
    429: ("Too Many Requests", "TooManyRequestsError"),
}


class Refusal(Exception):
    """A request OneLogin would refuse; answered in the endpoint's error style."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


def error(style: str, status: int, message: str) -> Response:
    kind, name = _TYPES.get(status, ("Server Error", "ServerError"))
    flat = {"error": True, "code": status, "type": kind, "message": message}
    styled = {V1: {"status": flat}, FLAT: flat}
    response = jsonify(styled.get(style, {"statusCode": status, "name": name, "message": message}))
    response.status_code = status
    return response


def route(rule: str, style: str, scopes: frozenset[str] | None, method: str = "GET"):
    """Register a view; `scopes` None means no access token needed."""

    def register(view: Callable[..., Any]) -> Callable[..., Any]:
        _ROUTES.append((rule, method, style, scopes, view))
        return view

    return register


def create_app(state: OneLoginState) -> Flask:
    """A standalone app for `state`: mount it under any prefix, or serve it on a port."""
    app = Flask(__name__)
    app.json.sort_keys = False  # type: ignore[attr-defined]
    meta: dict[str, tuple[str, frozenset[str] | None]] = {}
    for rule, method, style, scopes, view in _ROUTES:
        app.add_url_rule(rule, view.__name__, partial(view, state), methods=[method])
        meta[view.__name__] = (style, scopes)
    app.before_request(partial(_gate, state, meta))
    app.after_request(partial(_stamp_headers, state))

    def refuse(refusal: Refusal) -> Response:
        return error(meta.get(request.endpoint or "", (FLAT,))[0], refusal.status, refusal.message)

    app.register_error_handler(Refusal, refuse)
    app.register_error_handler(404, lambda e: error(FLAT, 404, "No Route Exists"))
    app.register_error_handler(405, lambda e: error(FLAT, 405, "Method Not Allowed"))
    app.wsgi_app = _serialised(app.wsgi_app, state.lock)  # type: ignore[method-assign]
    return app


def _serialised(wsgi_app: Callable[..., Any], lock: threading.RLock) -> Callable[..., Any]:
    """One request at a time, so a threaded server (the demo's) cannot interleave changes."""

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        with lock:
            body = wsgi_app(environ, start_response)
            try:
                return [b"".join(body)]
            finally:
                getattr(body, "close", lambda: None)()

    return app


def _gate(state: OneLoginState, meta: dict[str, tuple[str, frozenset[str] | None]]):
    """Faults, rate limit, then the access token and its scope, as a gateway would."""
    endpoint = request.endpoint or "unknown"
    state.calls[endpoint] += 1
    state.log.append(f"{request.method} {request.full_path.rstrip('?')}")
    style, scopes = meta.get(endpoint, (FLAT, None))
    answer = state.take_scheduled(request.path)
    if answer is None and endpoint in meta and endpoint != "issue_token":
        left, reset = state.count_call()
        g.rate = (state.rate_limit, max(0, left), reset)
        answer = Scheduled(429, 0, reset) if left < 0 else None
    if answer is not None:
        message = _TYPES.get(answer.status, ("Service unavailable",))[0]
        response = error(style, answer.status, message)
        if answer.retry_after is not None:
            response.headers["Retry-After"] = str(answer.retry_after)
        return response
    if scopes is None:
        return None
    bearer = re.fullmatch(r"(?i)bearer[: ]\s*(\S+)", request.headers.get("Authorization", ""))
    token = state.tokens.get(bearer.group(1)) if bearer else None
    if token is None or token.expires_at <= state.clock():
        return error(style, 401, "Authentication Failure" if style == V1 else "Unauthorized")
    if token.credential.scope not in scopes:
        return error(style, 403, "Authorization Failure: insufficient scope for this request")
    return None


def _stamp_headers(state: OneLoginState, response: Response) -> Response:
    if "rate" in g:
        response.headers.update(zip(RATE_HEADERS, map(str, g.rate), strict=True))
    if state.lower_case_headers:
        for name in (*PAGING_HEADERS, *RATE_HEADERS):
            if name in response.headers:
                response.headers[name.lower()] = response.headers.pop(name)
    return response


# --- request helpers -------------------------------------------------------------------


def body_json() -> Any:
    try:
        return json.loads(request.get_data(as_text=True) or "null")
    except ValueError:
        raise Refusal(400, "Input JSON is not valid") from None


def int_arg(name: str, default: int) -> int:
    try:
        return int(request.args.get(name, default))
    except ValueError:
        raise Refusal(400, f"invalid value in {name!r}") from None


def page(items: list[Any], key: Callable[[Any], int], limits: tuple[int, int], cursor: str):
    """(this page's items, the next page's cursor or None); `items` ascend by `key`."""
    limit = min(max(int_arg("limit", limits[0]), 1), limits[1])
    after = None
    if request.args.get(cursor):
        try:
            after = int(json.loads(base64.urlsafe_b64decode(request.args[cursor]))["after"])
        except (ValueError, KeyError, TypeError, binascii.Error):
            raise Refusal(400, "invalid cursor") from None
    rest = [i for i in items if after is None or key(i) > after]
    if len(rest) <= limit:
        return rest, None
    mark = json.dumps({"after": key(rest[limit - 1])}).encode()
    return rest[:limit], base64.urlsafe_b64encode(mark).decode()


def paged(items: list[Any], render: Callable[[Any], Any], maximum: int = 100) -> Response:
    """A v2 list of items with an `id`: a JSON array, the next cursor in After-Cursor."""
    chosen, after = page(items, lambda item: item.id, (50, maximum), "cursor")
    response = jsonify([render(item) for item in chosen])
    response.headers.update({"Total-Count": str(len(items)), "Page-Items": str(len(chosen))})
    if after:
        response.headers["After-Cursor"] = after
    return response


def v1(data: Any = None, **extra: Any) -> Response:
    status = {"error": False, "code": 200, "type": "success", "message": "Success"}
    return jsonify({"status": status, **extra} | ({} if data is None else {"data": data}))


def matches(pattern: str, value: str) -> bool:
    """OneLogin's filters: case-insensitive, * a wildcard."""
    regex = ".*".join(re.escape(part) for part in pattern.lower().split("*"))
    return re.fullmatch(regex, value.lower()) is not None


def find(table: dict[int, Any], key: int, message: str = "Not Found") -> Any:
    if key not in table:
        raise Refusal(404, message)
    return table[key]


# --- the routes --------------------------------------------------------------------------


@route("/auth/oauth2/v2/token", FLAT, None, "POST")
def issue_token(state: OneLoginState) -> Response:
    header = request.headers.get("Authorization", "")
    given = re.fullmatch(r"\s*client_id:\s*([^,\s]+)\s*,\s*client_secret:\s*(\S+)\s*", header)
    credential = state.credentials.get(given[1]) if given else None
    if credential is None or not secrets.compare_digest(credential.client_secret, given[2]):
        return error(FLAT, 401, "Authentication Failure")
    body = body_json()
    if not isinstance(body, dict) or body.get("grant_type") != "client_credentials":
        return error(FLAT, 400, "grant_type must be client_credentials")
    token = state.token_for(credential)
    return jsonify(
        access_token=token.value,
        created_at=stamp(token.created_at),
        expires_in=max(0, round(token.expires_at - state.clock())),
        refresh_token="deprecated",  # noqa: S106  (OneLogin's own value)
        token_type="bearer",  # noqa: S106
        account_id=state.account_id,
    )


def user_json(state: OneLoginState, user: User) -> dict[str, Any]:
    return {
        "id": user.id,
        "username": user.username,
        "email": user.email,
        "firstname": user.firstname,
        "lastname": user.lastname,
        "status": user.status,
        "state": 1,
        "created_at": user.created_at,
        "updated_at": user.updated_at,
        "role_ids": [r.id for r in state.roles.values() if user.id in r.user_ids],
        # Every defined attribute appears, null where the user has no value.
        "custom_attributes": {n: user.custom_attributes.get(n) for n in state.attribute_names()},
    }


USER_FILTERS = ("email", "username", "firstname", "lastname")


@route("/api/2/users", FLAT, READ_USERS_SCOPES)
def list_users(state: OneLoginState) -> Response:
    unknown = set(request.args) - {"limit", "cursor", "fields", "user_ids", *USER_FILTERS}
    if unknown:
        raise Refusal(400, f"query parameter(s) not allowed: {', '.join(sorted(unknown))}")
    users = sorted(state.users.values(), key=lambda u: u.id)
    if request.args.get("user_ids"):
        try:
            wanted = {int(i) for i in request.args["user_ids"].split(",")}
        except ValueError:
            raise Refusal(400, "invalid value in 'user_ids'") from None
        users = [u for u in users if u.id in wanted]
    for name in set(USER_FILTERS) & set(request.args):
        users = [u for u in users if matches(request.args[name], getattr(u, name))]
    fields = set(request.args.get("fields", "").replace(" ", "").split(",")) - {""}

    def render(user: User) -> dict[str, Any]:
        body = user_json(state, user)
        return {k: v for k, v in body.items() if not fields or k in fields or k == "id"}

    return paged(users, render)


@route("/api/2/users/<int:user_id>", FLAT, READ_USERS_SCOPES)
def get_user(state: OneLoginState, user_id: int) -> Response:
    return jsonify(user_json(state, find(state.users, user_id)))


@route("/api/2/users/<int:user_id>", FLAT, WRITE_USERS_SCOPES, "PUT")
def update_user(state: OneLoginState, user_id: int) -> Response:
    user, body = find(state.users, user_id), body_json()
    if not isinstance(body, dict):
        raise Refusal(400, "Input JSON is not valid")
    if body.get("status", 1) not in USER_STATUSES:
        raise Refusal(422, f"Validation failed: status {body['status']!r} is not valid")
    values = body.get("custom_attributes") or {}
    if set(values) - set(state.attribute_names()):
        raise Refusal(422, "Validation failed: unknown custom attribute")
    for name in ("firstname", "lastname", "email", "username", "status"):
        setattr(user, name, body.get(name, getattr(user, name)))
    state.set_custom_attributes(user_id, values)
    return jsonify(user_json(state, user))


@route("/api/1/users/<int:user_id>/set_custom_attributes", V1, WRITE_USERS_SCOPES, "PUT")
def set_custom_attributes(state: OneLoginState, user_id: int) -> Response:
    body = body_json()
    values = body.get("custom_attributes") if isinstance(body, dict) else None
    if not isinstance(values, dict) or not all(isinstance(v, str | None) for v in values.values()):
        raise Refusal(400, "Input JSON is not valid")
    if not values:
        raise Refusal(400, "custom_attributes is empty")
    if set(values) - set(state.attribute_names()):
        valid = "".join(f"{n} " for n in state.attribute_names())
        raise Refusal(
            400, f"input custom_attributes is not valid. Valid custom_attributes -> [{valid}]"
        )
    find(state.users, user_id)
    state.set_custom_attributes(user_id, values)
    return v1()


@route("/api/2/users/custom_attributes", ALT, READ_USERS_SCOPES)
def custom_attributes(state: OneLoginState) -> Response:
    attributes = enumerate(state.attributes, start=1)
    return jsonify(
        [
            {"name": a.name, "id": a.id, "position": n, "shortname": a.shortname}
            for n, a in attributes
        ]
    )


@route("/api/1/users/custom_attributes", V1, READ_USERS_SCOPES)
def custom_attributes_v1(state: OneLoginState) -> Response:
    return v1([state.attribute_names()])  # sic: a list inside a list, as OneLogin sends


@route("/api/2/users/<int:user_id>/apps", FLAT, READ_USERS_SCOPES)
def user_apps(state: OneLoginState, user_id: int) -> Response:
    find(state.users, user_id)
    result = []
    for app in (state.apps[a] for a in state.user_app_ids(user_id) if a in state.apps):
        item = {"id": app.id, "name": app.name, "icon_url": f"/images/{app.connector_id}.png"}
        item |= {"extension": False, "login_id": user_id * 31 + app.id}
        item["provisioning_enabled"] = app.provisioning_enabled
        if app.provisioning_enabled:
            known = state.provisioning.get((user_id, app.id), ("provisioned", "enabled"))
            item |= {"provisioning_state": known[0], "provisioning_status": known[1]}
        result.append(item)
    return jsonify(result)


def app_json(state: OneLoginState, app: App) -> dict[str, Any]:
    parameters = {
        short: {k: v for k, v in vars(p).items() if v is not None}
        for short, p in app.parameters.items()
    }
    return {
        "id": app.id,
        "name": app.name,
        "visible": True,
        "icon_url": f"/images/{app.connector_id}.png",
        "auth_method": app.auth_method,
        "connector_id": app.connector_id,
        "created_at": app.created_at,
        "updated_at": app.created_at,
        "role_ids": [r.id for r in state.roles.values() if app.id in r.app_ids],
        "provisioning": {"enabled": app.provisioning_enabled},
        "parameters": parameters,
    }


NO_SUCH_ID = "The resource with the given id could not be found"


@route("/api/2/apps", ALT, READ_APPS_SCOPES)
def list_apps(state: OneLoginState) -> Response:
    return paged(sorted(state.apps.values(), key=lambda a: a.id), partial(app_json, state))


@route("/api/2/apps/<int:app_id>", ALT, READ_APPS_SCOPES)
def get_app(state: OneLoginState, app_id: int) -> Response:
    return jsonify(app_json(state, find(state.apps, app_id, NO_SUCH_ID)))


@route("/api/2/apps/<int:app_id>/users", ALT, READ_APPS_SCOPES)
def app_users(state: OneLoginState, app_id: int) -> Response:
    find(state.apps, app_id, NO_SUCH_ID)
    users = [state.users[u] for u in state.app_user_ids(app_id)]
    fields = ("id", "firstname", "lastname", "username", "email")
    return paged(users, lambda u: {f: getattr(u, f) for f in fields}, maximum=1000)


@route("/api/2/roles", ALT, READ_USERS_SCOPES)
def list_roles(state: OneLoginState) -> Response:
    roles = sorted(state.roles.values(), key=lambda r: r.id)
    if "app_id" in request.args:
        roles = [r for r in roles if int_arg("app_id", 0) in r.app_ids]
    return paged(roles, lambda r: {"id": r.id, "name": r.name, "apps": r.app_ids})


@route("/api/2/roles/<int:role_id>/users", ALT, READ_USERS_SCOPES)
def role_users(state: OneLoginState, role_id: int) -> Response:
    role = find(state.roles, role_id, NO_SUCH_ID)
    members = [state.users[u] for u in sorted(role.user_ids) if u in state.users]
    return paged(
        members,
        lambda u: {"id": u.id, "name": f"{u.firstname} {u.lastname}", "username": u.username},
    )


def role_change(state: OneLoginState, role_id: int) -> tuple[Role, list[int]]:
    """The role and the body of a membership change: a bare JSON array of user ids."""
    role, body = find(state.roles, role_id, NO_SUCH_ID), body_json()
    if not isinstance(body, list) or not all(type(i) is int for i in body):
        raise Refusal(400, "the body must be a JSON array of user ids")
    missing = [str(i) for i in body if i not in state.users]
    if missing:
        raise Refusal(422, f"invalid value in user ids: {', '.join(missing)}")
    return role, body


@route("/api/2/roles/<int:role_id>/users", ALT, MANAGE_ALL_SCOPES, "POST")
def add_role_users(state: OneLoginState, role_id: int) -> Response:
    role, user_ids = role_change(state, role_id)
    role.user_ids += [i for i in dict.fromkeys(user_ids) if i not in role.user_ids]
    return jsonify([{"id": i} for i in user_ids])


@route("/api/2/roles/<int:role_id>/users", ALT, MANAGE_ALL_SCOPES, "DELETE")
def remove_role_users(state: OneLoginState, role_id: int) -> Response:
    role, user_ids = role_change(state, role_id)
    role.user_ids = [i for i in role.user_ids if i not in user_ids]
    return Response(status=204)


@route("/api/1/events", V1, READ_USERS_SCOPES)
def list_events(state: OneLoginState) -> Response:
    try:
        types = {int(t) for v in request.args.getlist("event_type_id") for t in v.split(",")}
        since = datetime.fromisoformat(request.args.get("since", "0001-01-01T00:00:00Z"))
    except ValueError:
        raise Refusal(400, "invalid value in 'event_type_id' or 'since'") from None
    since = since if since.tzinfo else since.replace(tzinfo=UTC)
    user_id = int_arg("user_id", 0)
    events = [
        e
        for e in sorted(state.events, key=lambda e: -e["id"])  # newest first, as OneLogin
        if (not types or e["event_type_id"] in types)
        and (not user_id or e.get("user_id") == user_id)
        and datetime.fromisoformat(e["created_at"]) >= since
    ]
    chosen, after = page(events, lambda e: -e["id"], (50, 50), "after_cursor")
    query = [(k, v) for k, v in request.args.items(multi=True) if k != "after_cursor"]
    next_link = f"{request.base_url}?{urlencode([*query, ('after_cursor', after)])}"
    pagination = {"before_cursor": None, "after_cursor": after, "previous_link": None}
    return v1(chosen, pagination=pagination | {"next_link": next_link if after else None})


@route("/api/1/events/types", V1, None)
def event_types(state: OneLoginState) -> Response:
    return v1(state.event_types)
