"""The OneLogin simulator's routes: OneLogin's paths, shapes and cursor paging for the part of
its API this dashboard uses, over a `OneLoginState`. `create_app(state)` is a standalone WSGI
app serving them behind the gateway (onelogin_gateway); the tests validate its answers
against OneLogin's published OpenAPI spec.
"""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime
from functools import partial
from typing import Any
from urllib.parse import urlencode

from flask import Flask, Response, g, jsonify, request

from dashboard.sandbox.onelogin import (
    MANAGE_ALL_SCOPES,
    READ_APPS_SCOPES,
    READ_USERS_SCOPES,
    USER_STATUSES,
    USER_UPDATED,
    WRITE_USERS_SCOPES,
    App,
    OneLoginState,
    Role,
    User,
    stamp,
)
from dashboard.sandbox.onelogin_gateway import (
    ALT,
    FLAT,
    RATE_HEADERS,
    ROUTES,
    V1,
    Refusal,
    body_json,
    error,
    find,
    gate,
    int_arg,
    matches,
    page,
    paged,
    route,
    serialised,
    stamp_headers,
    v1,
)


def create_app(state: OneLoginState) -> Flask:
    """A standalone app for `state`: mount it under any prefix, or serve it on a port."""
    app = Flask(__name__)
    app.json.sort_keys = False  # type: ignore[attr-defined]
    meta: dict[str, tuple[str, frozenset[str] | None]] = {}
    for rule, method, style, scopes, view in ROUTES:
        app.add_url_rule(rule, view.__name__, partial(view, state), methods=[method])
        meta[view.__name__] = (style, scopes)
    app.before_request(partial(gate, state, meta))
    app.after_request(partial(stamp_headers, state))

    def refuse(refusal: Refusal) -> Response:
        return error(meta.get(request.endpoint or "", (FLAT,))[0], refusal.status, refusal.message)

    app.register_error_handler(Refusal, refuse)
    app.register_error_handler(404, lambda e: error(FLAT, 404, "No Route Exists"))
    app.register_error_handler(405, lambda e: error(FLAT, 405, "Method Not Allowed"))
    app.wsgi_app = serialised(app.wsgi_app, state.lock)  # type: ignore[method-assign]
    return app


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


@route("/auth/rate_limit", FLAT, READ_USERS_SCOPES)
def rate_limit(state: OneLoginState) -> Response:
    """The account's budget, without spending a call: v1's envelope, the figures named as
    the headers are (the spec's getRateLimit)."""
    return v1(dict(zip(RATE_HEADERS, state.budget(), strict=True)))


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
    """Change the fields given (the dashboard sends `status` to suspend or reactivate) and
    answer the whole user, as OneLogin does; any change moves updated_at."""
    user, body = find(state.users, user_id), body_json()
    if not isinstance(body, dict):
        raise Refusal(400, "Input JSON is not valid")
    status = body.get("status", user.status)
    if type(status) is not int or status not in USER_STATUSES:  # a JSON true is not 1
        raise Refusal(422, f"Validation failed: status {status!r} is not valid")
    values = body.get("custom_attributes") or {}
    if not isinstance(values, dict) or not all(isinstance(v, str | None) for v in values.values()):
        raise Refusal(400, "Input JSON is not valid")
    if set(values) - set(state.attribute_names()):
        raise Refusal(422, "Validation failed: unknown custom attribute")
    before = {n: getattr(user, n) for n in ("firstname", "lastname", "email", "username")}
    for name in before:
        setattr(user, name, body.get(name, getattr(user, name)))
    renamed = sorted(n for n, old in before.items() if getattr(user, n) != old)
    if renamed:
        state.log_user_event(USER_UPDATED, user, custom_message=", ".join(renamed), **caller())
    state.update_attributes(user_id, values, **caller())
    state.set_status(user_id, status, **caller())
    user.updated_at = stamp(state.clock())
    return jsonify(user_json(state, user))


@route("/api/2/users/<int:user_id>", FLAT, WRITE_USERS_SCOPES, "DELETE")
def delete_user(state: OneLoginState, user_id: int) -> Response:
    """OneLogin's deleteUser2: 204 and no body; the user leaves every role with it."""
    find(state.users, user_id)
    state.delete_user(user_id, **caller())
    return Response(status=204)


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
    state.update_attributes(user_id, values, **caller())
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


def caller() -> dict[str, str]:
    """The actor fields of the event a change logs: the API credential that made it."""
    return {"client_id": g.client_id} if "client_id" in g else {}


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
    state.assign_role(role.id, user_ids, **caller())
    return jsonify([{"id": i} for i in user_ids])


@route("/api/2/roles/<int:role_id>/users", ALT, MANAGE_ALL_SCOPES, "DELETE")
def remove_role_users(state: OneLoginState, role_id: int) -> Response:
    role, user_ids = role_change(state, role_id)
    state.unassign_role(role.id, user_ids, **caller())
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
