"""A simulator of the parts of Workato's developer API the dashboard reads: `GET /api/roles`
(custom roles only, a bare array paged by `page`/`per_page`), `GET /api/members` and
`GET /api/activity_logs`, behind an API client's bearer token, with Workato's 60 requests per
minute per resource answered by 429 and Retry-After. A standalone Flask app: the demo mounts
it, the tests serve it over real HTTP.
"""

from __future__ import annotations

import hmac
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Collection, Sequence
from datetime import UTC, datetime
from typing import Any

from flask import Flask, Response, jsonify, request

DEMO_TOKEN = "demo-workato-api-token"  # noqa: S105  (the demo's, printed on its own page)
LIMIT_PER_MINUTE = 60

CUSTOM_ROLES: tuple[dict[str, Any], ...] = (
    {
        "id": 478,
        "name": "Recipe Reviewer",
        "inheritable": False,
        "folder_ids": [],
        "created_at": "2025-05-20T11:54:31.706-07:00",
        "updated_at": "2025-05-20T11:54:31.706-07:00",
        "privileges": {"Recipes": ["read"], "Jobs": ["read"]},
    },
)

MEMBERS: tuple[dict[str, Any], ...] = tuple(
    {
        "id": 9000 + n,
        "grant_type": "team",
        "name": name,
        "email": email,
        "external_id": None,
        "role_name": role,
        "time_zone": "Pacific Time (US & Canada)",
    }
    for n, (name, email, role) in enumerate(
        [
            ("Ada Admin", "ada.admin@example.com", "Admin"),
            ("Ana Lyst", "ana.lyst@example.com", "Analyst"),
            ("Otto Operator", "otto.operator@example.com", "Operator"),
            ("Rita Reviewer", "rita.reviewer@example.com", "Recipe Reviewer"),
        ],
        start=1,
    )
)

ACTIVITY: tuple[dict[str, Any], ...] = (
    {
        "id": "a1",
        "event_type": "user_joined_team",
        "timestamp": "2025-06-01T09:00:00Z",
        "user": {"id": 9001, "name": "Ada Admin", "email": "ada.admin@example.com"},
        "resource": {"id": 9002, "type": "User", "name": "Ana Lyst"},
        "details": {"via": "SCIM"},
    },
    {
        "id": "a2",
        "event_type": "collaborator_role_changed",
        "timestamp": "2025-06-02T10:30:00Z",
        "user": {"id": 9001, "name": "Ada Admin", "email": "ada.admin@example.com"},
        "resource": {"id": 9004, "type": "User", "name": "Rita Reviewer"},
        "details": {"role_name": "Recipe Reviewer"},
    },
)


class RateLimit:
    """A sliding one-minute window per resource, on an injectable clock (tests move time
    instead of sleeping)."""

    def __init__(self, per_minute: int, clock: Callable[[], float]):
        self.per_minute, self.clock = per_minute, clock
        self._calls: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def wait(self, resource: str) -> int:
        """0 when the call may go ahead (and is counted), else the seconds to wait."""
        with self._lock:
            now = self.clock()
            calls = self._calls.setdefault(resource, deque())
            while calls and calls[0] <= now - 60:
                calls.popleft()
            if len(calls) >= self.per_minute:
                return max(1, math.ceil(calls[0] + 60 - now))
            calls.append(now)
            return 0


def _int_arg(name: str, default: int, low: int, high: int) -> int:
    try:
        value = int(request.args.get(name, default))
    except ValueError:
        value = default
    return min(max(value, low), high)


def _when(value: str) -> datetime:
    when = datetime.fromisoformat(value)
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def create_app(
    token: str = DEMO_TOKEN,
    *,
    custom_roles: Sequence[dict[str, Any]] = CUSTOM_ROLES,
    members: Sequence[dict[str, Any]] = MEMBERS,
    activity: Sequence[dict[str, Any]] = ACTIVITY,
    privileges: Collection[str] = ("roles", "members", "activity_logs"),
    limit_per_minute: int = LIMIT_PER_MINUTE,
    clock: Callable[[], float] = time.monotonic,
) -> Flask:
    app = Flask(__name__)
    app.json.sort_keys = False  # keep Workato's field order
    limit = RateLimit(limit_per_minute, clock)
    app.extensions["workato_api.rate_limit"] = limit

    def refuse(status: int, message: str, **headers: str) -> Response:
        response = jsonify({"message": message})
        response.status_code = status
        response.headers.update(headers)
        return response

    @app.before_request
    def authenticate_and_limit() -> Response | None:
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.encode(), token.encode()):
            return refuse(401, "Unauthorized")
        resource = request.path.removeprefix("/api/").split("/")[0]
        # What the API client's role allows (Workspace admin > API clients > Client roles).
        if resource not in privileges:
            return refuse(403, "Forbidden")
        wait = limit.wait(resource)
        if wait:
            return refuse(429, "Too many requests", **{"Retry-After": str(wait)})
        return None

    def page_of(items: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        page = _int_arg("page", 1, 1, 10**6)
        per_page = _int_arg("per_page", 100, 1, 100)
        return list(items[(page - 1) * per_page : page * per_page])

    @app.get("/api/roles")
    def roles() -> Response:
        return jsonify(page_of(custom_roles))

    @app.get("/api/members")
    def list_members() -> Response:
        return jsonify({"data": page_of(members)})

    @app.get("/api/activity_logs")
    def activity_logs() -> Response:
        size = _int_arg("page[size]", 100, 1, 100)
        after = request.args.get("page[after]")
        entries = list(activity)
        if after is not None:
            ids = [e["id"] for e in entries]
            entries = entries[ids.index(after) + 1 :] if after in ids else []
        if since := request.args.get("from"):
            try:
                start = _when(since)
            except ValueError:
                return refuse(400, "from must be an ISO 8601 time")
            entries = [e for e in entries if _when(e["timestamp"]) >= start]
        return jsonify({"data": entries[:size]})

    return app
