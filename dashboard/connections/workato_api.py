"""A small client for Workato's developer API (docs.workato.com/workato-api): the roles an
admin may put in the role fields, and the workspace's collaborators. Optional: the dashboard
works without it. Plain typed Python: no Flask, no database.

Shapes from Workato's docs: `GET /api/roles` lists the CUSTOM (legacy) roles only, as a bare
array paged by `page`/`per_page`; the system roles Admin, Analyst and Operator are not in it.
`GET /api/members` lists collaborators; it is read as a bare array or as `{"data": [...]}`
(which one is not confirmed). Each resource allows 60 requests per minute.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import requests

from dashboard.connections import errors
from dashboard.connections.http import ApiClient, Http, RetryPolicy
from dashboard.connections.urls import check_base_url

SERVICE = "Workato developer API"
EXAMPLE_URL = "https://www.workato.com/api"
# Workato's system roles an admin can hold (the Team Owner is not assigned, so not listed).
# Role names are case-sensitive.
BUILT_IN_ROLES = ("Admin", "Analyst", "Operator")
PAGE_SIZE = 100
MAX_PAGES = 1000  # a bound, so a server that ignores paging cannot keep us looping
# The fields the dashboard reads from each listing's items: text, or null, when present.
TEXT_FIELDS = {"/roles": ("name",), "/members": ("name", "email", "role_name")}

UNAUTHORIZED = (
    "Workato rejected the developer API token: create an API client in Workato (Workspace "
    "admin > API clients), copy its token and save it on Connections."
)


def _forbidden(response: requests.Response) -> str:
    path = urlsplit(response.url or "").path or "this endpoint"
    return (
        f"Workato's API client may not call {path}: in Workato (Workspace admin > API clients "
        "> Client roles) give the client's role the Get collaborators (GET /api/members) and "
        "List roles (GET /api/roles) privileges, then try again."
    )


class WorkatoApiClient(ApiClient):
    """Workato's developer API at `base_url` (https://www.workato.com/api, or another data
    centre's), with an API client's bearer `token`."""

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        timeout: float = 10.0,
        retry: RetryPolicy | None = None,
        session: requests.Session | None = None,
    ) -> None:
        base = check_base_url(base_url, EXAMPLE_URL)
        # Admins paste the site address as often as the API's: both mean the same API.
        if not urlsplit(base).path.endswith("/api"):
            base += "/api"
        self._token = token
        self._owns_session = session is None
        self._http = Http(
            SERVICE,
            base,
            self._describe,
            timeout=timeout,
            retry=retry or RetryPolicy(),
            session=session or requests.Session(),
            secrets=(token,),
        )

    @property
    def base_url(self) -> str:
        return self._http.base_url

    def check(self) -> None:
        """Prove the token may call both endpoints the dashboard uses (one page of each),
        and that both answer lists as Workato documents them: a JSON answer of another shape
        is a `bad_response`, not "Connected"."""
        for path in ("/roles", "/members"):
            self._items(self._get(path, {"page": 1, "per_page": 1}), path)

    def custom_roles(self) -> list[dict[str, Any]]:
        return list(self._pages("/roles"))

    def roles(self) -> list[str]:
        """Every role name a user can be given: the system roles, then the custom ones,
        exactly as Workato spells them."""
        names = list(BUILT_IN_ROLES)
        for role in self.custom_roles():
            name = role.get("name")  # text or None: _items checked it
            if name and name not in names:
                names.append(name)
        return names

    def members(self) -> list[dict[str, Any]]:
        """The workspace's collaborators (id, name, email, role_name, ...), as Workato sends
        them."""
        return list(self._pages("/members"))

    def member(self, email: str) -> dict[str, Any] | None:
        """The collaborator with this email (ignoring case), reading only the pages up to it:
        Workato allows 60 calls a minute."""
        wanted = email.casefold()
        return next(
            (m for m in self._pages("/members") if (m.get("email") or "").casefold() == wanted),
            None,
        )

    def activity_logs(
        self, *, since: datetime | None = None, page_size: int = PAGE_SIZE
    ) -> Iterator[dict[str, Any]]:
        """The workspace's activity audit log, oldest cursor first, paged by `page[after]`
        (the id of the last entry seen). The paging is UNCONFIRMED beyond Workato's docs."""
        params: dict[str, Any] = {"page[size]": page_size}
        if since is not None:
            params["from"] = since.isoformat()
        for _ in range(MAX_PAGES):
            entries = self._items(self._get("/activity_logs", params), "/activity_logs")
            yield from entries
            if len(entries) < page_size or entries[-1].get("id") is None:
                return
            params["page[after]"] = entries[-1]["id"]  # an int or text: _items checked it

    # --- plumbing ------------------------------------------------------------------------

    def _get(self, path: str, params: dict[str, Any]) -> Any:
        headers = {"Authorization": f"Bearer {self._token}", "Accept": "application/json"}
        response = self._http.request("GET", path, params=params, headers=headers)
        return self._http.json(response)

    def _pages(self, path: str) -> Iterator[dict[str, Any]]:
        seen: set[Any] = set()
        for page in range(1, MAX_PAGES + 1):
            items = self._items(self._get(path, {"page": page, "per_page": PAGE_SIZE}), path)
            fresh = [i for i in items if i.get("id") is None or i.get("id") not in seen]
            seen.update(i.get("id") for i in items)
            yield from fresh
            # A short page is the last; so is one that repeats the last (paging ignored).
            if len(items) < PAGE_SIZE or not fresh:
                return

    @staticmethod
    def _items(data: Any, path: str) -> list[dict[str, Any]]:
        """The items of a listing: a bare array, or one under "data" (or "items"). Each is
        an object whose id, when present, is a number or text, and whose TEXT_FIELDS are
        text or null; any other shape is a `bad_response`."""
        items = data.get("data", data.get("items")) if isinstance(data, dict) else data
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            raise errors.bad_response(SERVICE, f"no list at {path}")
        for item in items:
            if item.get("id") is not None and type(item["id"]) not in (int, str):
                raise errors.bad_response(SERVICE, f"an id that is not a number or text at {path}")
            for name in TEXT_FIELDS.get(path, ()):
                if not isinstance(item.get(name), str | None):
                    raise errors.bad_response(SERVICE, f"a {name} that is not text at {path}")
        return items

    @staticmethod
    def _describe(response: requests.Response) -> errors.ConnectionProblem:
        detail = None
        try:
            data = response.json()
        except ValueError:
            data = None
        if isinstance(data, dict):
            said = data.get("message") or data.get("error") or data.get("errors")
            detail = str(said).strip()[:300] if said else None
        return errors.from_response(
            SERVICE,
            response,
            unauthorized=UNAUTHORIZED,
            forbidden=_forbidden(response),
            detail=detail,
        )
