"""A SCIM 2.0 client (RFC 7643/7644) for Workato's SCIM API. Plain typed Python: no Flask,
no database. Failures are ConnectionProblems whose message an admin can act on.

Workato's SCIM behaviour beyond its docs (PATCH, /Bulk, 200 or 204, error bodies) is not
confirmed, so the client reads /ServiceProviderConfig and works either way: PATCH when
announced, else PUT of the whole resource; a 204 is followed by a GET.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Any
from urllib.parse import quote

import requests
from pydantic import ValidationError
from scim2_models import (
    Attribute,
    Context,
    Email,
    Error,
    Extension,
    Name,
    PatchOp,
    PatchOperation,
    Resource,
    ResourceType,
    Schema,
    ScimPolicy,
    ServiceProviderConfig,
    User,
)

from dashboard.connections import errors
from dashboard.connections.http import Http, RetryPolicy
from dashboard.connections.urls import check_base_url

SERVICE = "Workato SCIM API"
EXAMPLE_URL = "https://workato.com/scim/v2"
CORE_USER = "urn:ietf:params:scim:schemas:core:2.0:User"
ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"
WORKATO_ROLE = "urn:ietf:params:scim:schemas:workato:1.0:WorkatoRole"
DEFAULT_ROLE_FIELDS = ("workato_role", "workato_role_test", "workato_role_prod")
SCIM_JSON = "application/scim+json"

UNAUTHORIZED = (
    "Workato rejected the SCIM token: generate a new one in Workato (Workspace admin > "
    "Settings > SCIM) and save it on Connections."
)
FORBIDDEN = (
    "Workato accepted the SCIM token but it lacks permission for this request: generate the "
    "token as a workspace admin (Workspace admin > Settings > SCIM) and save it on Connections."
)
# RFC 7644 §3.12, Table 9, in an admin's words.
SCIM_TYPES = {
    "invalidFilter": "the search filter is not valid or not supported",
    "tooMany": "the search would return more results than the server allows",
    "uniqueness": "a value that must be unique, such as userName, is already taken",
    "mutability": "the request tried to change a read-only attribute",
    "invalidSyntax": "the request does not follow the schema Workato declares (for example "
    "an attribute or role field Workato does not know)",
    "invalidPath": "a PATCH path is not valid",
    "noTarget": "a PATCH path matched nothing",
    "invalidValue": "a value is missing, of the wrong type, or not allowed",
    "invalidVers": "this SCIM version is not supported",
    "sensitive": "the request put sensitive data where it is not allowed",
}
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


class ScimClient:
    """Workato's SCIM API at `base_url` (e.g. https://workato.com/scim/v2), bearer `token`."""

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        timeout: float = 10.0,
        retry: RetryPolicy | None = None,
        session: requests.Session | None = None,
        role_fields: Sequence[str] = DEFAULT_ROLE_FIELDS,
    ) -> None:
        self._token = token
        self._owns_session = session is None
        self.role_fields = tuple(role_fields)
        self.user_model = workato_user_model(self.role_fields)
        self._capabilities: Capabilities | None = None
        self._http = Http(
            SERVICE,
            check_base_url(base_url, EXAMPLE_URL),
            self._describe,
            timeout=timeout,
            retry=retry or RetryPolicy(),
            session=session or requests.Session(),
        )

    def close(self) -> None:
        if self._owns_session:
            self._http.session.close()

    def __enter__(self) -> ScimClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- discovery -----------------------------------------------------------------------

    def check(self) -> int:
        """Prove the base URL and token with one cheap authenticated call (/ServiceProvider
        Config may be served without auth, so it proves nothing). The number of users."""
        data = self._http.json(self._call("GET", "/Users", params={"startIndex": 1, "count": 1}))
        if not isinstance(data, dict) or not isinstance(data.get("totalResults"), int):
            raise errors.bad_response(SERVICE, "no SCIM ListResponse at /Users")
        return data["totalResults"]

    def service_provider_config(self) -> Capabilities:
        data = self._discovery("/ServiceProviderConfig")
        if data is None:
            self._capabilities = DEFAULT_CAPABILITIES
            return self._capabilities
        try:
            config = ServiceProviderConfig.model_validate(data, scim_policy=TOLERANT)
        except ValidationError as exc:
            problem = errors.bad_response(SERVICE, f"unreadable /ServiceProviderConfig: {exc}")
            raise problem from None

        def supported(feature: Any) -> bool:
            return bool(feature is not None and feature.supported)

        self._capabilities = Capabilities(
            patch=supported(config.patch),
            bulk=supported(config.bulk),
            # An explicit "not supported" is believed; a missing block gets the default.
            filter=supported(config.filter) if config.filter is not None else True,
            etag=supported(config.etag),
            max_results=config.filter.max_results if config.filter else None,
        )
        return self._capabilities

    def capabilities(self) -> Capabilities:
        """The announced capabilities, fetched once per client."""
        return self._capabilities or self.service_provider_config()

    def schemas(self) -> list[Schema] | None:
        """The schemas Workato declares; None when /Schemas is not served."""
        return self._discovery_list("/Schemas", Schema)

    def has_schema(self, urn: str) -> bool | None:
        """Whether `urn` (e.g. the WorkatoRole extension) is declared; None: cannot tell."""
        documents = self._discovery_list("/Schemas")
        if documents is None:
            return None
        return any(str(d.get("id", "")).lower() == urn.lower() for d in documents)

    def resource_types(self) -> list[ResourceType] | None:
        return self._discovery_list("/ResourceTypes", ResourceType)

    # --- users ---------------------------------------------------------------------------

    def users_page(self, start_index: int = 1, count: int = 100) -> UserPage:
        data = self._http.json(
            self._call("GET", "/Users", params={"startIndex": start_index, "count": count})
        )
        users, total = self._list_response(data)
        return UserPage(users, total, start_index)

    def list_users(self, page_size: int = 100) -> Iterator[ScimUser]:
        """Every user, a page at a time (startIndex/count, RFC 7644 §3.4.2.4)."""
        start = 1
        while True:
            page = self.users_page(start, page_size)
            yield from page.users
            start += len(page.users)
            # An empty page ends it too: a server shrinking meanwhile must not loop us.
            if not page.users or start > page.total:
                return

    def find_user(self, user_name: str) -> ScimUser | None:
        """The user whose userName matches, ignoring case (userName is caseExact=false)."""
        if self.capabilities().filter:
            # The comparison value is a JSON string (RFC 7644 §3.4.2.2): json.dumps escapes
            # quotes and backslashes; non-ASCII stays literal and requests percent-encodes it.
            expression = f"userName eq {json.dumps(user_name, ensure_ascii=False)}"
            data = self._http.json(self._call("GET", "/Users", params={"filter": expression}))
            candidates: Iterator[ScimUser] | list[ScimUser] = self._list_response(data)[0]
        else:
            candidates = self.list_users()
        matches = [u for u in candidates if u.user_name.casefold() == user_name.casefold()]
        if len(matches) > 1:
            raise errors.bad_response(SERVICE, f"{len(matches)} users have userName {user_name}")
        return matches[0] if matches else None

    def get_user(self, user_id: str) -> ScimUser | None:
        """The user, or None when Workato says (with a SCIM error) that it has no such id."""
        try:
            return self._user(self._call("GET", self._user_path(user_id)))
        except errors.ConnectionProblem as problem:
            if problem.kind == errors.NOT_FOUND and problem.detail is not None:
                return None
            raise

    def create_user(self, resource: Mapping[str, Any] | Resource) -> ScimUser:
        # Never retried: a 5xx or a timeout may come after Workato created the user, and a
        # blind retry would then fail with uniqueness. The caller looks it up by userName.
        body = self._body(resource, Context.RESOURCE_CREATION_REQUEST, drop=("id", "meta"))
        response = self._call("POST", "/Users", json_body=body, retry=False)
        if not response.content and response.headers.get("Location"):
            response = self._call("GET", response.headers["Location"])
        return self._user(response)

    def replace_user(self, user_id: str, resource: Mapping[str, Any] | Resource) -> ScimUser:
        """PUT: idempotent, so retried on transient failures."""
        body = self._body(resource, Context.RESOURCE_REPLACEMENT_REQUEST, drop=("meta",))
        response = self._on_user(user_id, "PUT", json_body=body)
        return self._user(response) if response.content else self._require(user_id)

    def patch_user(
        self, user_id: str, operations: Sequence[PatchOperation | Mapping[str, Any]]
    ) -> ScimUser:
        """PATCH (only when announced). Retried unless an `add` is in it: adding to a
        multi-valued attribute twice is not the same as once."""
        if not self.capabilities().patch:
            raise errors.ConnectionProblem(
                errors.REJECTED,
                SERVICE,
                "Workato's SCIM API does not announce PATCH support; the user must be "
                "replaced (PUT) instead.",
            )
        ops = [
            op if isinstance(op, PatchOperation) else PatchOperation.model_validate(dict(op))
            for op in operations
        ]
        body = PatchOp[self.user_model](operations=ops).model_dump(
            scim_ctx=Context.RESOURCE_PATCH_REQUEST
        )
        retry = all(op.op != PatchOperation.Op.add for op in ops)
        response = self._on_user(user_id, "PATCH", json_body=body, retry=retry)
        return self._user(response) if response.content else self._require(user_id)

    def set_active(self, user_id: str, active: bool) -> ScimUser:
        """Suspend or reactivate: PATCH `active` when announced, else PUT the current user
        with `active` changed (Workato deprovisions by suspending, never by deleting)."""
        if self.capabilities().patch:
            return self.patch_user(user_id, [{"op": "replace", "path": "active", "value": active}])
        current = self._require(user_id)
        # meta and groups are read-only (RFC 7643 §4.1): they do not belong in a PUT.
        body = {k: v for k, v in current.raw.items() if k not in ("meta", "groups")}
        return self.replace_user(user_id, {**body, "active": active})

    def deactivate_user(self, user_id: str) -> ScimUser:
        return self.set_active(user_id, False)

    def reactivate_user(self, user_id: str) -> ScimUser:
        return self.set_active(user_id, True)

    # --- plumbing ------------------------------------------------------------------------

    def _call(
        self, method: str, path: str, *, json_body: Any = None, retry: bool = True, **kwargs: Any
    ) -> requests.Response:
        # The token goes on each request, never on a session the caller may share.
        headers = {
            "Authorization": f"Bearer {self._token}",
            "Accept": f"{SCIM_JSON}, application/json",
        }
        if json_body is not None:
            headers["Content-Type"] = SCIM_JSON
            kwargs["data"] = json.dumps(json_body).encode()
        return self._http.request(method, path, retry=retry, headers=headers, **kwargs)

    @staticmethod
    def _user_path(user_id: str) -> str:
        return "/Users/" + quote(user_id, safe="")

    def _on_user(self, user_id: str, method: str, **kwargs: Any) -> requests.Response:
        try:
            return self._call(method, self._user_path(user_id), **kwargs)
        except errors.ConnectionProblem as problem:
            if problem.kind == errors.NOT_FOUND and problem.detail is not None:
                raise replace(problem, message=self._gone(user_id)) from None
            raise

    def _require(self, user_id: str) -> ScimUser:
        user = self.get_user(user_id)
        if user is None:
            raise errors.ConnectionProblem(errors.NOT_FOUND, SERVICE, self._gone(user_id), 404)
        return user

    @staticmethod
    def _gone(user_id: str) -> str:
        return f"Workato has no user with SCIM id {user_id} (404): it may have been deleted there."

    def _body(self, resource: Mapping[str, Any] | Resource, ctx: Context, drop: tuple) -> dict:
        if isinstance(resource, Resource):
            return resource.model_dump(scim_ctx=ctx)
        body = {k: v for k, v in resource.items() if k not in drop}
        # RFC 7643 §3: `schemas` names the core schema and every extension block present.
        schemas = list(body.get("schemas") or [CORE_USER])
        for key, value in body.items():
            if key.lower().startswith("urn:") and isinstance(value, dict) and key not in schemas:
                schemas.append(key)
        body["schemas"] = schemas
        return body

    def _user(self, response: requests.Response) -> ScimUser:
        return self._parse_user(self._http.json(response))

    def _parse_user(self, data: Any) -> ScimUser:
        try:
            self.user_model.model_validate(
                data, scim_ctx=Context.RESOURCE_QUERY_RESPONSE, scim_policy=TOLERANT
            )
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "the user"
            raise errors.bad_response(
                SERVICE, f"a user that is not valid SCIM: {where}: {first['msg']}"
            ) from None
        extension = data.get(WORKATO_ROLE) or {}
        roles = {name: None for name in self.role_fields}
        roles.update({k: v for k, v in extension.items() if k != "schemas"})
        return ScimUser(
            id=data["id"],
            user_name=data.get("userName", ""),
            active=data.get("active", True) is not False,
            name=dict(data.get("name") or {}),
            emails=[dict(e) for e in data.get("emails") or []],
            roles=roles,
            version=(data.get("meta") or {}).get("version"),
            raw=data,
        )

    def _list_response(self, data: Any) -> tuple[list[ScimUser], int]:
        if not isinstance(data, dict) or not isinstance(data.get("totalResults"), int):
            raise errors.bad_response(SERVICE, "a search answer that is not a ListResponse")
        return [self._parse_user(r) for r in data.get("Resources") or []], data["totalResults"]

    def _discovery(self, path: str) -> Any:
        """The JSON at a discovery endpoint, or None when the server does not serve it."""
        try:
            return self._http.json(self._call("GET", path))
        except errors.ConnectionProblem as problem:
            if problem.status in (404, 501):
                return None
            raise

    def _discovery_list(self, path: str, model: type | None = None) -> list | None:
        """The documents at /Schemas or /ResourceTypes, parsed with `model` when given."""
        data = self._discovery(path)
        if data is None:
            return None
        # Some servers answer a bare array instead of a ListResponse.
        documents = data.get("Resources", []) if isinstance(data, dict) else data
        if not isinstance(documents, list) or not all(isinstance(d, dict) for d in documents):
            raise errors.bad_response(SERVICE, f"unreadable {path}")
        try:
            return [
                model.model_validate(d, scim_policy=TOLERANT) if model else d for d in documents
            ]
        except ValidationError as exc:
            raise errors.bad_response(SERVICE, f"unreadable {path}: {exc}") from None

    def _describe(self, response: requests.Response) -> errors.ConnectionProblem:
        """A SCIM Error body (RFC 7644 §3.12) becomes the problem's detail and scim_type."""
        detail = scim_type = None
        try:
            data = response.json()
        except ValueError:
            data = None
        if isinstance(data, dict) and (ERROR in (data.get("schemas") or []) or "detail" in data):
            try:
                error = Error.model_validate(data, scim_policy=TOLERANT)
                detail, scim_type = error.detail, error.scim_type
            except ValidationError:
                detail, scim_type = data.get("detail"), data.get("scimType")
            detail = str(detail or "").strip()[:500] or f"SCIM error {response.status_code}"
        problem = errors.from_response(
            SERVICE,
            response,
            unauthorized=UNAUTHORIZED,
            forbidden=FORBIDDEN,
            detail=detail,
            scim_type=scim_type,
        )
        if scim_type:
            meaning = SCIM_TYPES.get(scim_type, "see Workato's detail")
            problem = replace(
                problem,
                scim_type=scim_type,
                message=f"{problem.message} (SCIM error {scim_type}: {meaning}.)",
            )
        return problem
