"""The OneLogin API client: token, users, apps, roles, custom attributes and events; and the
writes the dashboard makes (custom attributes, user status, deleting users, role membership).

Plain typed Python, no Flask and no database. Answers are OneLogin's own JSON objects as
plain dicts (the TypedDicts of onelogin_records name the keys the dashboard relies on), each
checked by that module's readers so a wrong answer is a `bad_response` problem, not a KeyError
later. Every failure is a ConnectionProblem whose message an admin can act on; neither the
client secret nor an access token ever appears in one (Http redacts them). Listings that page
(users, app users, role members) are iterators: a failure on a later page surfaces while
iterating.

Given a `BudgetPace` (budget.py), every call is paced by the account's hourly API budget:
each answer's X-RateLimit-* figures are kept, and a call that would eat into the reserve kept
for the account's other integrations waits for the reset or is refused before it goes out.
"""

from __future__ import annotations

import math
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import nullcontext
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import requests

from dashboard.connections import errors
from dashboard.connections.budget import LIMIT, REMAINING, RESET, BudgetPace, Figures
from dashboard.connections.http import ApiClient, Http, RetryPolicy
from dashboard.connections.onelogin_records import (
    App,
    CustomAttribute,
    EventType,
    Malformed,
    Role,
    RoleMember,
    User,
    UserApp,
    after_cursor,
    onelogin_message,
    read_app,
    read_event_types,
    read_events_page,
    read_records,
    read_role,
    read_role_member,
    read_user,
    read_user_apps,
    read_v1_attributes,
    read_v2_attributes,
)
from dashboard.connections.urls import check_base_url

SERVICE = "OneLogin API"
EXAMPLE_BASE_URL = "https://<subdomain>.onelogin.com"
OAUTH_PATH = "/auth/oauth2/v2/token"
RATE_LIMIT_PATH = "/auth/rate_limit"  # the budget's figures, without spending a call
UNAUTHORIZED = (
    "OneLogin rejected the API client id or secret: check the API credential in OneLogin "
    "(Developers > API Credentials) and save it again on Connections."
)
READ_SCOPE = (
    'Reading apps and users needs an API credential with the "Read All" or "Manage All" '
    "scope: create one in OneLogin (Developers > API Credentials) and save it on Connections."
)
WRITE_SCOPE = (
    "Changing users in OneLogin (their custom attributes or status) or deleting them needs an "
    'API credential with the "Manage users" or "Manage All" scope: create one in OneLogin '
    "(Developers > API Credentials) and save it on Connections."
)
ROLE_SCOPE = (
    "Adding users to a role or removing them from it (how users are given the app) needs an "
    'API credential with the "Manage All" scope; "Manage users" is not enough: create one in '
    "OneLogin (Developers > API Credentials) and save it on Connections."
)
# The paths the dashboard writes to, matched on their end (a base URL may have a path).
ROLE_MEMBERS = re.compile(r"/api/2/roles/(\d+)/users$")
ONE_USER = re.compile(r"/api/[12]/users/(\d+)(?:/set_custom_attributes)?$")
TOKEN_MARGIN = 60.0  # seconds before OneLogin's expiry at which a token is renewed
USERS_PAGE, APP_USERS_PAGE = 100, 1000  # OneLogin's largest pages for each
SAML = 2  # an App's auth_method


class OneLoginClient(ApiClient):
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
        budget: BudgetPace | None = None,
    ) -> None:
        self._owns_session = session is None
        self._budget = budget
        self._http = Http(
            SERVICE,
            check_base_url(base_url, EXAMPLE_BASE_URL),
            self._describe,
            timeout,
            retry or RetryPolicy(),
            session or requests.Session(),
            secrets=(client_secret,),
            pace=budget,
        )
        self._client_id, self._client_secret = client_id, client_secret
        self._clock = clock
        self._token_lock = threading.Lock()
        self._token: str | None = None
        self._renew_at = 0.0
        self.account_id: int | None = None

    def __repr__(self) -> str:
        return f"OneLoginClient({self._http.base_url!r}, client_id={self._client_id!r})"

    def close(self) -> None:
        if self._budget is not None:
            self._budget.close()  # the figures this client last saw are kept
        super().close()

    @property
    def budget(self) -> BudgetPace | None:
        return self._budget

    # --- what the dashboard asks -------------------------------------------------------

    def check(self) -> int | None:
        """Prove the credential works: a token, then one cheap read that needs the scope the
        dashboard reads with. The OneLogin account id, when OneLogin gave it."""
        self._read("the app list", read_records, self._get("/api/2/apps", limit=1))
        return self.account_id

    def rate_limit(self) -> Figures:
        """The account's API budget now (GET /auth/rate_limit, which OneLogin does not count
        against it): the limit, the calls remaining, and when the budget resets."""
        with self._uncounted():
            body = self._get(RATE_LIMIT_PATH)
        data = body.get("data") if isinstance(body, dict) else None
        values = [
            data.get(name) if isinstance(data, dict) else None for name in (LIMIT, REMAINING, RESET)
        ]
        if not all(type(v) is int and v >= 0 for v in values) or not values[0]:
            raise errors.bad_response(SERVICE, "a rate limit answer without its three figures")
        limit, remaining, reset = values
        now = datetime.now(UTC) if self._budget is None else self._budget.budget.now()
        figures = Figures.announced(limit, min(remaining, limit), reset, now)
        if self._budget is not None:
            self._budget.budget.observe(figures)
        return figures

    def count_users(self) -> int | None:
        """How many users the account has, from the Total-Count of a one-user page (one
        call); None when OneLogin does not say."""
        response = self._call("GET", "/api/2/users", params={"limit": 1, "fields": "id"})
        total = (response.headers.get("Total-Count") or "").strip()
        return int(total) if total.isascii() and total.isdigit() else None

    def app(self, app_id: int) -> App:
        return self._read("the app", read_app, self._get(f"/api/2/apps/{app_id}"))

    def app_users(self, app_id: int) -> Iterator[User]:
        """Everyone assigned the app (id, names, username, email; no status)."""
        pages = self._pages(f"/api/2/apps/{app_id}/users", {"limit": APP_USERS_PAGE})
        return (self._read("an app user", read_user, item) for item in pages)

    def users(
        self,
        user_ids: Iterable[int] | None = None,
        fields: Iterable[str] | None = None,
        *,
        email: str | None = None,
        username: str | None = None,
        firstname: str | None = None,
        lastname: str | None = None,
    ) -> Iterator[User]:
        """Users, all or those with `user_ids`, or matching `email`, `username`, `firstname`
        or `lastname` (OneLogin's filters: ignoring case, exact unless * stands for any text)."""
        params: dict[str, Any] = {"limit": USERS_PAGE}
        named = {"email": email, "username": username, "firstname": firstname, "lastname": lastname}
        params |= {name: value for name, value in named.items() if value is not None}
        if user_ids is not None:
            params["user_ids"] = ",".join(str(i) for i in user_ids)
            if not params["user_ids"]:
                return iter(())
        if fields is not None:
            params["fields"] = ",".join(fields)
        pages = self._pages("/api/2/users", params)
        return (self._read("a user", read_user, item) for item in pages)

    def user(self, user_id: int) -> User:
        return self._read("a user", read_user, self._get(f"/api/2/users/{user_id}"))

    def user_apps(self, user_id: int) -> list[UserApp]:
        # Apps hidden from the user's portal are still assigned: ask for them too.
        body = self._get(f"/api/2/users/{user_id}/apps", ignore_visibility="true")
        return self._read("the user's apps", read_user_apps, body)

    def custom_attribute_definitions(self) -> list[CustomAttribute]:
        """The custom user fields: from the v2 API, or v1 where a tenant lacks v2's path."""
        try:
            body = self._get("/api/2/users/custom_attributes")
        except errors.ConnectionProblem as problem:
            if problem.kind != errors.NOT_FOUND:
                raise
            body = self._get("/api/1/users/custom_attributes")
            return self._read("custom attributes", read_v1_attributes, body)
        return self._read("custom attributes", read_v2_attributes, body)

    def set_custom_attributes(self, user_id: int, values: Mapping[str, str | None]) -> None:
        """Set (None clears) custom attribute values. Safe to retry: the PUT overwrites."""
        body = {"custom_attributes": {k: v or "" for k, v in values.items()}}
        path = f"/api/1/users/{user_id}/set_custom_attributes"
        answer = self._http.json(self._call("PUT", path, json=body))
        status = answer.get("status") if isinstance(answer, dict) else None
        if isinstance(status, dict) and status.get("error"):
            # v1 can answer 200 with the failure inside the body.
            said = status.get("message")
            detail = said.strip()[:300] if isinstance(said, str) and said.strip() else None
            problem = errors.ConnectionProblem(
                errors.REJECTED,
                SERVICE,
                f"{SERVICE} refused the change: {detail or 'no reason given'}",
                detail=detail,
            )
            raise self._http.scrub(problem)

    def set_status(self, user_id: int, status: int) -> User:
        """Set the user's OneLogin status (1 active, 2 suspended: how the dashboard
        deactivates a user and takes it back) and answer the user as OneLogin now holds it.
        Safe to retry: the PUT overwrites."""
        path = f"/api/2/users/{user_id}"
        body = self._http.json(self._call("PUT", path, json={"status": status}))
        return self._read("the updated user", read_user, body)

    def delete_user(self, user_id: int) -> None:
        """Delete the user in OneLogin for good (it leaves every role, and so every app).
        Retried after a transient failure like any call: if the first try had gone through,
        the retry meets a 404, whose problem (kind not_found) says the user is gone."""
        self._call("DELETE", f"/api/2/users/{user_id}")

    def add_to_role(self, role_id: int, user_ids: Iterable[int]) -> None:
        """Give the users the role, and with it the role's apps. The body is a bare JSON array
        of ids (DESIGN.md §2). Safe to retry: a member added twice is still one member."""
        self._change_members("POST", role_id, user_ids)

    def remove_from_role(self, role_id: int, user_ids: Iterable[int]) -> None:
        """Take the role, and the apps it gives, from the users. A bare JSON array of ids, as
        for adding (DESIGN.md §2; the spec's request schema, {"user_id": [...]}, disagrees).
        Safe to retry."""
        self._change_members("DELETE", role_id, user_ids)

    def app_roles(self, app_id: int) -> list[Role]:
        """The roles that give the app; assigning one is how a user gets it."""
        pages = self._pages("/api/2/roles", {"app_id": app_id, "limit": USERS_PAGE})
        return [self._read("a role", read_role, r) for r in pages]

    def role_users(self, role_id: int) -> Iterator[RoleMember]:
        pages = self._pages(f"/api/2/roles/{role_id}/users", {"limit": USERS_PAGE})
        return (self._read("a role member", read_role_member, item) for item in pages)

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
        return self._read("events", read_events_page, self._get("/api/1/events", **params))

    def event_types(self) -> list[EventType]:
        body = self._get("/api/1/events/types")
        return self._read("event types", read_event_types, body)

    # --- plumbing ----------------------------------------------------------------------

    def _get(self, path: str, **params: Any) -> Any:
        return self._http.json(self._call("GET", path, params=params))

    def _change_members(self, method: str, role_id: int, user_ids: Iterable[int]) -> None:
        ids = list(dict.fromkeys(user_ids))
        if ids:  # nothing to change: no call (OneLogin may refuse an empty array)
            self._call(method, f"/api/2/roles/{role_id}/users", json=ids)

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

    def _uncounted(self):
        """Calls OneLogin does not count against the budget go without its check."""
        return self._budget.exempt() if self._budget is not None else nullcontext()

    def _new_token(self) -> tuple[str, float]:
        # The token call is safe to retry: OneLogin hands out the same token until expiry.
        credentials = f"client_id:{self._client_id}, client_secret:{self._client_secret}"
        with self._uncounted():
            response = self._http.request(
                "POST",
                OAUTH_PATH,
                headers={"Authorization": credentials},
                json={"grant_type": "client_credentials"},
            )
        body = self._http.json(response)
        token = body.get("access_token") if isinstance(body, dict) else None
        lifetime = _seconds(body.get("expires_in", 36000) if isinstance(body, dict) else None)
        if not isinstance(token, str) or not token or lifetime is None:
            raise errors.bad_response(SERVICE, "a token answer without an access token")
        # Redact the new token from problems, and the one before it (calls may still carry it).
        self._http.secrets = (self._client_secret, token, *self._http.secrets[1:2])
        account = body.get("account_id")
        self.account_id = account if type(account) is int else None
        return token, lifetime

    def _describe(self, response: requests.Response) -> errors.ConnectionProblem:
        """A failed answer in OneLogin's terms: a 403 names the scope this very call needs,
        and a 404 on a write names the user or role that is missing."""
        method = response.request.method if response.request is not None else "GET"
        path = urlsplit(response.url or "").path
        role = ROLE_MEMBERS.search(path)
        problem = errors.from_response(
            SERVICE,
            response,
            unauthorized=UNAUTHORIZED,
            forbidden=READ_SCOPE if method == "GET" else ROLE_SCOPE if role else WRITE_SCOPE,
            detail=onelogin_message(response),  # Http redacts any secret in it
        )
        if problem.kind == errors.NOT_FOUND and method != "GET":
            return _missing(problem, role, ONE_USER.search(path)) or problem
        if problem.kind == errors.RATE_LIMITED:
            return self._throttled(problem, response)
        return problem

    def _throttled(
        self, problem: errors.ConnectionProblem, response: requests.Response
    ) -> errors.ConnectionProblem:
        """A 429: wait for its Retry-After, else for the X-RateLimit-Reset it announces. When
        that is longer than this client may wait, the budget's refusal instead: not retried."""
        if problem.retry_after is None:
            reset = (response.headers.get(RESET) or "").strip()
            if reset.isascii() and reset.isdigit():
                wait = float(reset)
                when = datetime.now(UTC) + timedelta(seconds=wait)
                problem = replace(
                    problem,
                    retry_after=wait,
                    message=f"{SERVICE} is rate limiting this dashboard (429): retry after "
                    f"{wait:.0f} s ({when:%H:%M:%S} UTC).",
                )
        if self._budget is not None:
            return self._budget.refusal_beyond_patience() or problem
        return problem

    @staticmethod
    def _read(what: str, build: Callable[[Any], Any], data: Any) -> Any:
        """`build(data)`, or a bad_response problem naming `what` when the answer is not
        shaped as OneLogin documents it."""
        try:
            return build(data)
        except Malformed as exc:
            raise errors.bad_response(
                SERVICE, f"{what} without the expected fields: {exc}"
            ) from None
        except (KeyError, TypeError, ValueError, AttributeError):
            raise errors.bad_response(SERVICE, f"{what} without the expected fields") from None


def _missing(
    problem: errors.ConnectionProblem, role: re.Match[str] | None, user: re.Match[str] | None
) -> errors.ConnectionProblem | None:
    """A 404 on a write to one role or user, told as that role or user being gone (None for
    another path). Not the base URL: the token came from the same one a moment before."""
    said = f" {SERVICE} said: {problem.detail}" if problem.detail else ""
    if role:
        message = (
            f"{SERVICE} has no role {role[1]} (404; deleted meanwhile?): check the roles that "
            "give the app in OneLogin (Users > Roles) and try again."
        )
    elif user:
        message = (
            f"{SERVICE} has no user {user[1]} (404; deleted meanwhile?): refresh the users "
            "and try again."
        )
    else:
        return None
    return replace(problem, message=message + said)


def _seconds(value: Any) -> float | None:
    """A token lifetime: a finite, non-negative number of seconds (or its text), else None."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if 0 <= seconds < math.inf else None
