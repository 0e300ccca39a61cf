"""The OneLogin API client: token, users, apps, roles, custom attributes and events.

Plain typed Python, no Flask and no database. Answers are OneLogin's own JSON objects as
plain dicts (the TypedDicts below name the keys the dashboard relies on), each checked for
the essentials so a wrong answer is a `bad_response` problem, not a KeyError later. Every
failure is a ConnectionProblem whose message an admin can act on; neither the client secret
nor an access token ever appears in one. Listings that page (users, app users, role members)
are iterators: a failure on a later page surfaces while iterating.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any, Required, TypedDict

import requests

from dashboard.connections import errors
from dashboard.connections.http import Http, RetryPolicy
from dashboard.connections.urls import check_base_url

SERVICE = "OneLogin API"
EXAMPLE_BASE_URL = "https://<subdomain>.onelogin.com"
OAUTH_PATH = "/auth/oauth2/v2/token"
UNAUTHORIZED = (
    "OneLogin rejected the API client id or secret: check the API credential in OneLogin "
    "(Developers > API Credentials) and save it again on Connections."
)
READ_SCOPE = (
    'Reading apps and users needs an API credential with the "Read All" or "Manage All" '
    "scope: create one in OneLogin (Developers > API Credentials) and save it on Connections."
)
WRITE_SCOPE = (
    'Changing custom attributes needs an API credential with the "Manage users" or '
    '"Manage All" scope: create one in OneLogin (Developers > API Credentials) and save it '
    "on Connections."
)
TOKEN_MARGIN = 60.0  # seconds before OneLogin's expiry at which a token is renewed
USERS_PAGE, APP_USERS_PAGE = 100, 1000  # OneLogin's largest pages for each
SAML = 2  # an App's auth_method


class AppParameter(TypedDict, total=False):
    label: str
    user_attribute_mappings: str  # "custom_attribute_<shortname>" for a custom field
    include_in_saml_assertion: bool
    provisioned_entitlements: bool


class App(TypedDict, total=False):
    """OneLogin's app, as it sends it (more keys than these may come)."""

    id: Required[int]
    name: str
    connector_id: int
    auth_method: int  # SAML is 2
    provisioning: dict[str, bool]  # {"enabled": ...}
    parameters: dict[str, AppParameter]  # keyed by short name


class User(TypedDict, total=False):
    """OneLogin's user; a listing with `fields` carries only those (and id)."""

    id: Required[int]
    username: str
    email: str
    firstname: str
    lastname: str
    status: int  # 1 active, 2 suspended, ... (DESIGN.md §2)
    custom_attributes: dict[str, str | None]


class UserApp(TypedDict, total=False):
    """An app as one user holds it, with OneLogin's own provisioning state for that user."""

    id: Required[int]
    name: str
    provisioning_enabled: bool
    provisioning_state: str  # "provisioned", "provisioning_failed", ...
    provisioning_status: str  # "enabled", "disabled", "enabling_failed", ...


class CustomAttribute(TypedDict):
    shortname: str
    name: str | None  # None when only OneLogin's v1 API answered, which gives no names


class Role(TypedDict):
    id: int
    name: str


class RoleMember(TypedDict, total=False):
    id: Required[int]
    name: str
    username: str


class EventType(TypedDict):
    id: int
    name: str
    description: str


class OneLoginClient:
    """One OneLogin tenant, through one API credential. Use as a context manager, or close()."""

    def __init__(
        self,
        base_url: str,
        client_id: str,
        client_secret: str,
        *,
        timeout: float = 10.0,
        retry: RetryPolicy | None = None,
        session: requests.Session | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._owns_session = session is None
        self._http = Http(
            SERVICE,
            check_base_url(base_url, EXAMPLE_BASE_URL),
            self._describe,
            timeout,
            retry or RetryPolicy(),
            session or requests.Session(),
        )
        self._client_id, self._client_secret = client_id, client_secret
        self._clock = clock
        self._token_lock = threading.Lock()
        self._token: str | None = None
        self._renew_at = 0.0
        self.account_id: int | None = None

    def __repr__(self) -> str:
        return f"OneLoginClient({self._http.base_url!r}, client_id={self._client_id!r})"

    def __enter__(self) -> OneLoginClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._owns_session:
            self._http.session.close()

    # --- what the dashboard asks -------------------------------------------------------

    def check(self) -> int | None:
        """Prove the credential works: a token, then one cheap read that needs the scope the
        dashboard reads with. The OneLogin account id, when OneLogin gave it."""
        self._call("GET", "/api/2/apps", params={"limit": 1})
        return self.account_id

    def app(self, app_id: int) -> App:
        return self._read("the app", _app, self._get(f"/api/2/apps/{app_id}"))

    def app_users(self, app_id: int) -> Iterator[User]:
        """Everyone assigned the app (id, names, username, email; no status)."""
        pages = self._pages(f"/api/2/apps/{app_id}/users", {"limit": APP_USERS_PAGE})
        return (self._read("an app user", _record, item) for item in pages)

    def users(
        self, user_ids: Iterable[int] | None = None, fields: Iterable[str] | None = None
    ) -> Iterator[User]:
        params: dict[str, Any] = {"limit": USERS_PAGE}
        if user_ids is not None:
            params["user_ids"] = ",".join(str(i) for i in user_ids)
            if not params["user_ids"]:
                return iter(())
        if fields is not None:
            params["fields"] = ",".join(fields)
        pages = self._pages("/api/2/users", params)
        return (self._read("a user", _user, item) for item in pages)

    def user(self, user_id: int) -> User:
        return self._read("a user", _user, self._get(f"/api/2/users/{user_id}"))

    def user_apps(self, user_id: int) -> list[UserApp]:
        # Apps hidden from the user's portal are still assigned: ask for them too.
        body = self._get(f"/api/2/users/{user_id}/apps", ignore_visibility="true")
        return self._read("the user's apps", lambda apps: [_record(a) for a in apps], body)

    def custom_attribute_definitions(self) -> list[CustomAttribute]:
        """The custom user fields: from the v2 API, or v1 where a tenant lacks v2's path."""
        try:
            body = self._get("/api/2/users/custom_attributes")
        except errors.ConnectionProblem as problem:
            if problem.kind != errors.NOT_FOUND:
                raise
            body = self._get("/api/1/users/custom_attributes")
            return self._read("custom attributes", _v1_attributes, body)
        return self._read("custom attributes", _v2_attributes, body)

    def set_custom_attributes(self, user_id: int, values: Mapping[str, str | None]) -> None:
        """Set (None clears) custom attribute values. Safe to retry: the PUT overwrites."""
        body = {"custom_attributes": {k: v or "" for k, v in values.items()}}
        path = f"/api/1/users/{user_id}/set_custom_attributes"
        answer = self._http.json(self._call("PUT", path, json=body))
        status = answer.get("status") if isinstance(answer, dict) else None
        if isinstance(status, dict) and status.get("error"):
            # v1 can answer 200 with the failure inside the body.
            detail = self._scrub(str(status.get("message") or "no reason given"))
            raise errors.ConnectionProblem(
                errors.REJECTED, SERVICE, f"{SERVICE} refused the change: {detail}", detail=detail
            )

    def app_roles(self, app_id: int) -> list[Role]:
        """The roles that give the app; assigning one is how a user gets it."""
        pages = self._pages("/api/2/roles", {"app_id": app_id, "limit": USERS_PAGE})
        return [self._read("a role", _role, r) for r in pages]

    def role_users(self, role_id: int) -> Iterator[RoleMember]:
        pages = self._pages(f"/api/2/roles/{role_id}/users", {"limit": USERS_PAGE})
        return (self._read("a role member", _record, item) for item in pages)

    def events(
        self,
        since: datetime | None = None,
        event_type_ids: Iterable[int] | None = None,
        cursor: str | None = None,
    ) -> tuple[list[dict[str, Any]], str | None]:
        """One page of events, newest first, and the cursor of the next (None at the end).
        Pass the same filters with the cursor to walk on."""
        params: dict[str, Any] = {}
        if since is not None:
            moment = since if since.tzinfo else since.replace(tzinfo=UTC)
            params["since"] = moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        if event_type_ids is not None:
            params["event_type_id"] = [str(i) for i in event_type_ids]
        if cursor:
            params["after_cursor"] = cursor
        return self._read("events", _events_page, self._get("/api/1/events", **params))

    def event_types(self) -> list[EventType]:
        body = self._get("/api/1/events/types")
        return self._read("event types", _event_types, body)

    # --- plumbing ----------------------------------------------------------------------

    def _get(self, path: str, **params: Any) -> Any:
        return self._http.json(self._call("GET", path, params=params))

    def _pages(self, path: str, params: dict[str, Any]) -> Iterator[Any]:
        """Every item of a v2 list, following the After-Cursor header page by page."""
        params, seen = dict(params), set()
        while True:
            response = self._call("GET", path, params=params)
            items = self._http.json(response)
            if not isinstance(items, list):
                raise errors.bad_response(SERVICE, f"{path} did not answer a list")
            yield from items
            cursor = after_cursor(response.headers)
            if cursor is None:
                return
            if cursor in seen:
                raise errors.bad_response(SERVICE, f"{path} repeated a paging cursor")
            seen.add(cursor)
            params["cursor"] = cursor

    def _call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """An authenticated call. A 401 may only mean the token expired early (revoked,
        or OneLogin restarted): renew it once; a second 401 stands."""
        token = self._current_token()
        try:
            return self._send(method, path, token, **kwargs)
        except errors.ConnectionProblem as problem:
            if problem.kind != errors.UNAUTHORIZED:
                raise
        with self._token_lock:
            if self._token == token:
                self._token = None
        return self._send(method, path, self._current_token(), **kwargs)

    def _send(self, method: str, path: str, token: str, **kwargs: Any) -> requests.Response:
        # OneLogin's v1 docs spell the header "bearer:<token>", its v2 docs "bearer <token>".
        auth = f"bearer:{token}" if path.startswith("/api/1/") else f"bearer {token}"
        return self._http.request(method, path, headers={"Authorization": auth}, **kwargs)

    def _current_token(self) -> str:
        with self._token_lock:
            if self._token is None or self._clock() >= self._renew_at:
                self._token, lifetime = self._new_token()
                margin = min(TOKEN_MARGIN, lifetime / 10)
                self._renew_at = self._clock() + lifetime - margin
            return self._token

    def _new_token(self) -> tuple[str, float]:
        # The token call is safe to retry: OneLogin hands out the same token until expiry.
        credentials = f"client_id:{self._client_id}, client_secret:{self._client_secret}"
        response = self._http.request(
            "POST",
            OAUTH_PATH,
            headers={"Authorization": credentials},
            json={"grant_type": "client_credentials"},
        )
        body = self._http.json(response)
        token = body.get("access_token") if isinstance(body, dict) else None
        try:
            lifetime = float(body.get("expires_in", 36000))
        except (AttributeError, TypeError, ValueError):
            lifetime = -1.0
        if not isinstance(token, str) or not token or lifetime < 0:
            raise errors.bad_response(SERVICE, "a token answer without an access token")
        account = body.get("account_id")
        self.account_id = account if isinstance(account, int) else None
        return token, lifetime

    def _describe(self, response: requests.Response) -> errors.ConnectionProblem:
        method = response.request.method if response.request is not None else "GET"
        return errors.from_response(
            SERVICE,
            response,
            unauthorized=UNAUTHORIZED,
            forbidden=READ_SCOPE if method == "GET" else WRITE_SCOPE,
            detail=self._scrub(onelogin_message(response)),
        )

    def _scrub(self, text: str | None) -> str | None:
        """OneLogin has no reason to echo a secret or token, but a message must never carry
        one even if it did."""
        if text is None:
            return None
        for secret in (self._client_secret, self._token):
            if secret:
                text = text.replace(secret, "[redacted]")
        return text

    def _read(self, what: str, build: Callable[[Any], Any], data: Any) -> Any:
        try:
            return build(data)
        except (KeyError, TypeError, ValueError, AttributeError):
            raise errors.bad_response(SERVICE, f"{what} without the expected fields") from None


def after_cursor(headers: Mapping[str, str]) -> str | None:
    """The next page's cursor. OneLogin sometimes sends header names in lower case; look the
    name up in any case even when `headers` is a plain dict."""
    for name, value in headers.items():
        if name.lower() == "after-cursor" and value and value.strip():
            return value.strip()
    return None


def onelogin_message(response: requests.Response) -> str | None:
    """OneLogin's own words from an error body, in any of its three styles."""
    try:
        body = response.json()
    except ValueError:
        return None
    if not isinstance(body, dict):
        return None
    status = body.get("status")
    for said in (
        status.get("message") if isinstance(status, dict) else None,
        body.get("message"),
        body.get("error_description"),
    ):
        if isinstance(said, str) and said.strip():
            return said.strip()[:300]
    return None


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _record(data: Any) -> Any:
    """A JSON object with an integer id: the least any OneLogin record is."""
    if not isinstance(data, dict) or type(data.get("id")) is not int:
        raise ValueError("not a record")
    return data


def _user(data: Any) -> User:
    if not isinstance(_record(data).get("custom_attributes") or {}, dict):
        raise ValueError("custom_attributes")
    return data


def _app(data: Any) -> App:
    parameters = _record(data).get("parameters") or {}
    if not isinstance(data.get("provisioning") or {}, dict) or not all(
        isinstance(p, dict) for p in dict(parameters).values()
    ):
        raise ValueError("parameters")
    return data


def _v2_attributes(body: list[dict[str, Any]]) -> list[CustomAttribute]:
    return [{"shortname": str(a["shortname"]), "name": _text(a.get("name"))} for a in body]


def _v1_attributes(body: dict[str, Any]) -> list[CustomAttribute]:
    # v1 sends the short names as a list inside a list; accept a flat list as well.
    data = body["data"]
    names = data[0] if data and isinstance(data[0], list) else data
    return [{"shortname": str(name), "name": None} for name in names]


def _role(data: Any) -> Role:
    return {"id": _record(data)["id"], "name": str(data.get("name") or "")}


def _events_page(body: dict[str, Any]) -> tuple[list[dict[str, Any]], str | None]:
    events = body["data"]
    if not isinstance(events, list) or not all(isinstance(e, dict) for e in events):
        raise ValueError("events")
    cursor = (body.get("pagination") or {}).get("after_cursor")
    return events, (cursor or None)


def _event_types(body: dict[str, Any]) -> list[EventType]:
    return [
        {"id": int(t["id"]), "name": str(t["name"]), "description": str(t.get("description") or "")}
        for t in body["data"]
    ]
