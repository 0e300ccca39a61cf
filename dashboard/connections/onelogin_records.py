"""OneLogin's records as its API sends them, and the readers that check them.

The TypedDicts name the keys the dashboard relies on (OneLogin sends more). Each reader takes
the decoded JSON of one answer and returns it, or a list built from it, once the keys the
dashboard reads have the types these TypedDicts promise; anything else raises `Malformed`
(or KeyError, TypeError, ...), which the client turns into a `bad_response` problem. No HTTP
here: onelogin.py fetches, these read.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Required, TypedDict

import requests


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


class Malformed(ValueError):
    """An answer without the shape OneLogin documents; the message names what is wrong
    (never a value the server sent)."""


# --- checking fields ---------------------------------------------------------------------

TEXT, NUMBER, FLAG, OBJECT = "text", "number", "flag", "object"
_CHECKS = {
    TEXT: lambda v: isinstance(v, str),
    NUMBER: lambda v: type(v) is int,  # a JSON true is not a number
    FLAG: lambda v: isinstance(v, bool),
    OBJECT: lambda v: isinstance(v, dict),
}
USER_FIELDS = {
    "username": TEXT,
    "email": TEXT,
    "firstname": TEXT,
    "lastname": TEXT,
    "status": NUMBER,
    "custom_attributes": OBJECT,
}
USER_APP_FIELDS = {
    "name": TEXT,
    "provisioning_enabled": FLAG,
    "provisioning_state": TEXT,
    "provisioning_status": TEXT,
}
APP_FIELDS = {
    "name": TEXT,
    "connector_id": NUMBER,
    "auth_method": NUMBER,
    "provisioning": OBJECT,
    "parameters": OBJECT,
}
PARAMETER_FIELDS = {
    "label": TEXT,
    "user_attribute_mappings": TEXT,
    "include_in_saml_assertion": FLAG,
    "provisioned_entitlements": FLAG,
}
ROLE_MEMBER_FIELDS = {"name": TEXT, "username": TEXT}


def checked(data: Mapping[str, Any], fields: Mapping[str, str], owner: str = "") -> None:
    """Each of `fields` in `data` is of its kind, or null (OneLogin sends null for unset).
    `owner` ("an app parameter's") names a nested object in the message."""
    for name, kind in fields.items():
        value = data.get(name)
        if value is not None and not _CHECKS[kind](value):
            raise Malformed(f"{owner} {name} is not {kind}".strip())


def text_map(data: Any, what: str) -> dict[str, str | None]:
    """An object of text (or null) values keyed by text, as custom attributes are."""
    if not isinstance(data, dict) or not all(isinstance(v, str | None) for v in data.values()):
        raise Malformed(f"{what} are not text")
    return data


# --- the readers ---------------------------------------------------------------------------


def read_record(data: Any) -> Any:
    """A JSON object with an integer id: the least any OneLogin record is."""
    if not isinstance(data, dict) or type(data.get("id")) is not int:
        raise Malformed("no numeric id")
    return data


def read_records(data: Any) -> list[Any]:
    if not isinstance(data, list):
        raise Malformed("not a list")
    return [read_record(item) for item in data]


def read_user(data: Any) -> User:
    checked(read_record(data), USER_FIELDS)
    text_map(data.get("custom_attributes") or {}, "custom attribute values")
    return data


def read_user_apps(data: Any) -> list[UserApp]:
    apps = read_records(data)
    for app in apps:
        checked(app, USER_APP_FIELDS, "an app's")
    return apps


def read_role_member(data: Any) -> RoleMember:
    checked(read_record(data), ROLE_MEMBER_FIELDS)
    return data


def read_app(data: Any) -> App:
    checked(read_record(data), APP_FIELDS)
    for parameter in (data.get("parameters") or {}).values():
        if not isinstance(parameter, dict):
            raise Malformed("an app parameter is not an object")
        checked(parameter, PARAMETER_FIELDS, "an app parameter's")
    if not all(isinstance(v, bool) for v in (data.get("provisioning") or {}).values()):
        raise Malformed("provisioning is not flags")
    return data


def read_role(data: Any) -> Role:
    checked(read_record(data), {"name": TEXT})
    return {"id": data["id"], "name": data.get("name") or ""}


def read_v2_attributes(body: Any) -> list[CustomAttribute]:
    if not isinstance(body, list) or not all(isinstance(a, dict) for a in body):
        raise Malformed("not a list of attributes")
    for attribute in body:
        checked(attribute, {"shortname": TEXT, "name": TEXT}, "an attribute's")
        if not attribute.get("shortname"):
            raise Malformed("an attribute without a short name")
    return [{"shortname": a["shortname"], "name": a.get("name")} for a in body]


def read_v1_attributes(body: Any) -> list[CustomAttribute]:
    # v1 sends the short names as a list inside a list; accept a flat list as well.
    data = body["data"]
    names = data[0] if isinstance(data, list) and data and isinstance(data[0], list) else data
    if not isinstance(names, list) or not all(isinstance(n, str) and n for n in names):
        raise Malformed("the short names are not a list of text")
    return [{"shortname": name, "name": None} for name in names]


def read_events_page(body: Any) -> tuple[list[dict[str, Any]], str | None]:
    events = body["data"]
    if not isinstance(events, list) or not all(isinstance(e, dict) for e in events):
        raise Malformed("the events are not a list of objects")
    pagination = body.get("pagination") or {}
    cursor = pagination.get("after_cursor") if isinstance(pagination, dict) else None
    if not isinstance(cursor, str | None):
        raise Malformed("the paging cursor is not text")
    return events, (cursor or None)


def read_event_types(body: Any) -> list[EventType]:
    types = body["data"]
    if not isinstance(types, list) or not all(isinstance(t, dict) for t in types):
        raise Malformed("the event types are not a list of objects")
    for kind in types:
        checked(kind, {"name": TEXT, "description": TEXT}, "an event type's")
        if type(kind.get("id")) is not int or not kind.get("name"):
            raise Malformed("an event type without a numeric id and a name")
    return [
        {"id": t["id"], "name": t["name"], "description": t.get("description") or ""} for t in types
    ]


# --- headers and error bodies ------------------------------------------------------------


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
