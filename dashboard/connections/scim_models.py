"""Workato's SCIM resources as the dashboard writes and reads them: the User with the
WorkatoRole extension (RFC 7643), what /ServiceProviderConfig announces, and the readers that
turn the server's JSON into ScimUser and Capabilities, or into a `bad_response` problem when
it is not what SCIM promises. No HTTP here: the client (scim.py) fetches, these read.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from pydantic import ValidationError
from scim2_models import (
    Attribute,
    Context,
    Email,
    Extension,
    Name,
    Schema,
    ScimPolicy,
    ServiceProviderConfig,
    User,
)

from dashboard.connections import errors

SERVICE = "Workato SCIM API"
CORE_USER = "urn:ietf:params:scim:schemas:core:2.0:User"
WORKATO_ROLE = "urn:ietf:params:scim:schemas:workato:1.0:WorkatoRole"
DEFAULT_ROLE_FIELDS = ("workato_role", "workato_role_test", "workato_role_prod")
# Read what Workato sends even when it carries attributes we do not model.
TOLERANT = ScimPolicy(unknown=ScimPolicy.Unknown.keep)
_ATTRIBUTE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")  # RFC 7643 §2.1 ATTRNAME


@lru_cache(maxsize=32)  # also keeps the built classes alive (scim2-models holds them weakly)
def workato_user_model(role_fields: tuple[str, ...] = DEFAULT_ROLE_FIELDS) -> type[User]:
    """User[WorkatoRole], the extension declaring `role_fields`: the role fields are
    configurable (extra environments), so the extension is built from a Schema."""
    for name in role_fields:
        if not _ATTRIBUTE_NAME.match(name):
            raise ValueError(f"{name!r} is not a valid SCIM attribute name for a role field.")
    schema = Schema(
        id=WORKATO_ROLE,
        name="WorkatoRole",
        attributes=[
            Attribute(name=n, type=Attribute.Type.string, multi_valued=False, case_exact=True)
            for n in role_fields
        ],
    )
    return User[Extension.from_schema(schema)]


def build_user(
    user_name: str,
    *,
    given_name: str | None = None,
    family_name: str | None = None,
    email: str | None = None,
    active: bool = True,
    roles: Mapping[str, str | None] | None = None,
    role_fields: Sequence[str] = DEFAULT_ROLE_FIELDS,
) -> dict[str, Any]:
    """The JSON of a Workato user, as a creation request carries it."""
    model = workato_user_model(tuple(role_fields))
    user = model(
        user_name=user_name,
        name=Name(given_name=given_name, family_name=family_name)
        if given_name or family_name
        else None,
        emails=[Email(value=email, type="work", primary=True)] if email else None,
        active=active,
    )
    if roles:
        extension = model.get_extension_models()[WORKATO_ROLE]
        user[extension] = extension(**roles)
    return user.model_dump(scim_ctx=Context.RESOURCE_CREATION_REQUEST)


@dataclass(frozen=True)
class Capabilities:
    """What /ServiceProviderConfig announces. `served` is False when it is missing: the
    values are then the safe defaults (PUT instead of PATCH, no bulk, no ETags)."""

    patch: bool
    bulk: bool
    filter: bool
    etag: bool
    max_results: int | None = None
    served: bool = True


# Filter stays on without a config: OneLogin's own connector finds Workato users by filter.
DEFAULT_CAPABILITIES = Capabilities(patch=False, bulk=False, filter=True, etag=False, served=False)


@dataclass(frozen=True)
class ScimUser:
    """A user as Workato holds it: the fields a planner compares, plus the raw JSON.
    `roles` has every configured role field (None when unset) and any other the extension
    block carries. `active` is True when the server leaves it out (RFC 7643 §4.1.1)."""

    id: str
    user_name: str
    active: bool
    name: dict[str, Any]
    emails: list[dict[str, Any]]
    roles: dict[str, str | None]
    version: str | None
    raw: dict[str, Any] = field(repr=False)

    @property
    def primary_email(self) -> str | None:
        values = [e for e in self.emails if e.get("value")]
        primary = [e for e in values if e.get("primary")]
        return (primary or values or [{}])[0].get("value")


@dataclass(frozen=True)
class UserPage:
    users: list[ScimUser]
    total: int
    start_index: int


def first_error(exc: ValidationError, whole: str) -> str:
    """Where and what the first validation error is, without the offending value (which
    may be anything the server sent)."""
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or whole
    return f"{where}: {first['msg']}"


def read_capabilities(data: Any) -> Capabilities:
    """The Capabilities a /ServiceProviderConfig document announces."""
    try:
        config = ServiceProviderConfig.model_validate(data, scim_policy=TOLERANT)
    except ValidationError as exc:
        where = first_error(exc, "the document")
        raise errors.bad_response(SERVICE, f"unreadable /ServiceProviderConfig: {where}") from None

    def supported(feature: Any) -> bool:
        return bool(feature is not None and feature.supported)

    return Capabilities(
        patch=supported(config.patch),
        bulk=supported(config.bulk),
        # An explicit "not supported" is believed; a missing block gets the default.
        filter=supported(config.filter) if config.filter is not None else True,
        etag=supported(config.etag),
        max_results=config.filter.max_results if config.filter else None,
    )


def read_user(data: Any, role_fields: tuple[str, ...] = DEFAULT_ROLE_FIELDS) -> ScimUser:
    """The ScimUser in a User resource, checked against User[WorkatoRole] for `role_fields`."""
    try:
        user = workato_user_model(role_fields).model_validate(
            data, scim_ctx=Context.RESOURCE_QUERY_RESPONSE, scim_policy=TOLERANT
        )
    except ValidationError as exc:
        where = first_error(exc, "the user")
        raise errors.bad_response(SERVICE, f"a user that is not valid SCIM: {where}") from None
    if not isinstance(user.id, str) or not user.id:
        raise errors.bad_response(SERVICE, "a user without an id")
    # Attribute names are case-insensitive (RFC 7643 §2.1), extension URNs included.
    extension = next((v for k, v in data.items() if k.lower() == WORKATO_ROLE.lower()), None)
    if not isinstance(extension, dict | None):
        raise errors.bad_response(SERVICE, f"a user whose {WORKATO_ROLE} is not an object")
    roles: dict[str, Any] = dict.fromkeys(role_fields)
    roles.update({k: v for k, v in (extension or {}).items() if k != "schemas"})
    if not all(isinstance(v, str | None) for v in roles.values()):
        raise errors.bad_response(SERVICE, f"a user whose {WORKATO_ROLE} values are not text")
    return ScimUser(
        id=user.id,
        user_name=user.user_name or "",
        # The validated value: the raw one may be the string "false".
        active=user.active is not False,
        # The answer's own objects, not copies: a plan holds every Workato user at once.
        name=data.get("name") or {},
        emails=data.get("emails") or [],
        roles=roles,
        version=user.meta.version if user.meta is not None else None,
        raw=data,
    )


def read_list_response(
    data: Any, role_fields: tuple[str, ...] = DEFAULT_ROLE_FIELDS
) -> tuple[list[ScimUser], int]:
    """The users of a ListResponse (RFC 7644 §3.4.2) and its totalResults."""
    total = data.get("totalResults") if isinstance(data, dict) else None
    resources = (data.get("Resources") or []) if isinstance(data, dict) else None
    if type(total) is not int or not isinstance(resources, list):
        raise errors.bad_response(SERVICE, "a search answer that is not a ListResponse")
    return [read_user(r, role_fields) for r in resources], total
