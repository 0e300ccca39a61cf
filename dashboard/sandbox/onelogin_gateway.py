"""What stands before every route of the OneLogin simulator, as OneLogin's gateway does:
scheduled faults, the rate limit, the access token and its scope; and the plumbing the routes
share: error bodies in OneLogin's three styles, the route registry, request helpers, and
OneLogin's cursor paging.

OneLogin words errors in three styles, kept here: v1 wraps them in `status`, the v2 user and
token endpoints use a flat `{error, code, type, message}`, the other v2 endpoints
`{statusCode, name, message}`. A query parameter the simulator does not implement is refused
with 400, never ignored, so no client believes a filter worked when it did not.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import threading
from collections.abc import Callable
from typing import Any

from flask import Response, g, jsonify, request

from dashboard.sandbox.onelogin import OneLoginState, Scheduled

V1, FLAT, ALT = "v1", "flat", "alt"  # the error styles of the module docstring
PAGING_HEADERS = ("After-Cursor", "Total-Count", "Page-Items")
RATE_HEADERS = ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset")
UNCOUNTED = frozenset({"issue_token", "rate_limit"})  # calls the budget does not count

ROUTES: list[tuple[str, str, str, frozenset[str] | None, Callable[..., Any]]] = []
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
        ROUTES.append((rule, method, style, scopes, view))
        return view

    return register


def serialised(wsgi_app: Callable[..., Any], lock: threading.RLock) -> Callable[..., Any]:
    """One request at a time, so a threaded server (the demo's) cannot interleave changes."""

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        with lock:
            body = wsgi_app(environ, start_response)
            try:
                return [b"".join(body)]
            finally:
                getattr(body, "close", lambda: None)()

    return app


def gate(state: OneLoginState, meta: dict[str, tuple[str, frozenset[str] | None]]):
    """Faults, rate limit, then the access token and its scope, as a gateway would."""
    endpoint = request.endpoint or "unknown"
    state.calls[endpoint] += 1
    state.log.append(f"{request.method} {request.full_path.rstrip('?')}")
    style, scopes = meta.get(endpoint, (FLAT, None))
    answer = state.take_scheduled(request.path)
    if answer is None and endpoint in meta and endpoint not in UNCOUNTED:
        left, reset = state.count_call()
        g.rate = (state.rate_limit, max(0, left), reset)
        if left < 0:
            answer = Scheduled(429, 0, reset if state.rate_retry_after else None)
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
    g.client_id = token.credential.client_id  # the events a change logs name the caller
    return None


def stamp_headers(state: OneLoginState, response: Response) -> Response:
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
