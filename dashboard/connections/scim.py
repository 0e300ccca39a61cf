"""A SCIM 2.0 client (RFC 7643/7644) for Workato's SCIM API. Plain typed Python: no Flask,
no database. Failures are ConnectionProblems whose message an admin can act on.

Workato's SCIM behaviour beyond its docs (PATCH, /Bulk, 200 or 204, error bodies) is not
confirmed, so the client reads /ServiceProviderConfig and works either way: PATCH when
announced, else PUT of the whole resource; a 204 is followed by a GET. A Location the
server chooses is followed only under the base URL (Http.url), so the token reaches no other
host. The resources and the readers of Workato's answers are in scim_models.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace
from typing import Any
from urllib.parse import quote, urljoin

import requests
from pydantic import ValidationError
from scim2_models import (
    Context,
    Error,
    PatchOp,
    PatchOperation,
    Resource,
    ResourceType,
    Schema,
)

from dashboard.connections import errors
from dashboard.connections.http import ApiClient, Http, Pacing, RetryPolicy
from dashboard.connections.scim_models import (
    CORE_USER,
    DEFAULT_CAPABILITIES,
    DEFAULT_ROLE_FIELDS,
    SERVICE,
    TOLERANT,
    Capabilities,
    ScimUser,
    UserPage,
    first_error,
    read_capabilities,
    read_list_response,
    read_user,
    workato_user_model,
)
from dashboard.connections.scim_models import WORKATO_ROLE as WORKATO_ROLE  # re-exported
from dashboard.connections.scim_models import build_user as build_user  # re-exported
from dashboard.connections.urls import check_base_url

EXAMPLE_URL = "https://workato.com/scim/v2"
ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"
SCIM_JSON = "application/scim+json"

UNAUTHORIZED = (
    "Workato rejected the SCIM token: generate a new one in Workato (Workspace admin > "
    "Settings > SCIM) and save it on Connections."
)
FORBIDDEN = (
    "Workato accepted the SCIM token but it lacks permission for this request: generate the "
    "token as a workspace admin (Workspace admin > Settings > SCIM) and save it on Connections."
)
WRITES_DISABLED = (
    "SCIM is disabled on Connections: the dashboard sends no SCIM writes. Re-enable it there first."
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


class ScimClient(ApiClient):
    """Workato's SCIM API at `base_url` (e.g. https://workato.com/scim/v2), bearer `token`.
    With `writes_allowed` False (SCIM disabled on Connections) every write raises a
    SCIM_DISABLED problem before anything is sent; reads work as usual."""

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        timeout: float = 10.0,
        retry: RetryPolicy | None = None,
        session: requests.Session | None = None,
        role_fields: Sequence[str] = DEFAULT_ROLE_FIELDS,
        writes_allowed: bool = True,
        pace: Pacing | None = None,
    ) -> None:
        self._token = token
        self._owns_session = session is None
        self.writes_allowed = writes_allowed
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
            secrets=(token,),
            pace=pace,
        )

    # --- discovery -----------------------------------------------------------------------

    def check(self) -> int:
        """Prove the base URL and token with one cheap authenticated call (/ServiceProvider
        Config may be served without auth, so it proves nothing). The number of users."""
        data = self._http.json(self._call("GET", "/Users", params={"startIndex": 1, "count": 1}))
        total = data.get("totalResults") if isinstance(data, dict) else None
        if type(total) is not int:
            raise errors.bad_response(SERVICE, "no SCIM ListResponse at /Users")
        return total

    def service_provider_config(self) -> Capabilities:
        data = self._discovery("/ServiceProviderConfig")
        self._capabilities = DEFAULT_CAPABILITIES if data is None else read_capabilities(data)
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
        users, total = read_list_response(data, self.role_fields)
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
            candidates: Iterator[ScimUser] | list[ScimUser] = read_list_response(
                data, self.role_fields
            )[0]
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
        self._check_writes_allowed()
        body = self._body(resource, Context.RESOURCE_CREATION_REQUEST, drop=("id", "meta"))
        response = self._call("POST", "/Users", json_body=body, retry=False)
        location = response.headers.get("Location")
        if not response.content and location:
            # Followed only under the base URL (Http.url): the token goes to no other host.
            response = self._call("GET", urljoin(response.url, location))
        return self._user(response)

    def replace_user(self, user_id: str, resource: Mapping[str, Any] | Resource) -> ScimUser:
        """PUT: idempotent, so retried on transient failures."""
        self._check_writes_allowed()
        body = self._body(resource, Context.RESOURCE_REPLACEMENT_REQUEST, drop=("meta",))
        response = self._on_user(user_id, "PUT", json_body=body)
        return self._user(response) if response.content else self._require(user_id)

    def patch_user(
        self, user_id: str, operations: Sequence[PatchOperation | Mapping[str, Any]]
    ) -> ScimUser:
        """PATCH (only when announced). Retried unless an `add` is in it: adding to a
        multi-valued attribute twice is not the same as once."""
        self._check_writes_allowed()
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
        self._check_writes_allowed()
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

    def send(self, method: str, path: str, body: Mapping[str, Any]) -> tuple[int, ScimUser | None]:
        """Send one prepared write to /Users exactly as given (the sync shows these
        requests before it sends them): the HTTP status and the user Workato answers with,
        None after a 204 to a PUT or PATCH (not read back: that would double a sync's
        requests). Never retried here: the sync re-checks Workato before it tries again."""
        self._check_writes_allowed()
        if method not in ("POST", "PUT", "PATCH") or not path.startswith("/Users"):
            raise ValueError(f"not a user write: {method} {path}")
        response = self._call(method, path, json_body=dict(body), retry=False)
        status = response.status_code
        if response.content:
            return status, self._user(response)
        location = response.headers.get("Location")
        if method == "POST" and location:
            return status, self._user(self._call("GET", urljoin(response.url, location)))
        if method == "POST":
            raise errors.bad_response(SERVICE, "a created user without a body or a Location")
        return status, None

    # --- plumbing ------------------------------------------------------------------------

    def _check_writes_allowed(self) -> None:
        if not self.writes_allowed:
            raise errors.ConnectionProblem(errors.SCIM_DISABLED, SERVICE, WRITES_DISABLED)

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
        return read_user(self._http.json(response), self.role_fields)

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
        documents = (data.get("Resources") or []) if isinstance(data, dict) else data
        if not isinstance(documents, list) or not all(isinstance(d, dict) for d in documents):
            raise errors.bad_response(SERVICE, f"unreadable {path}")
        try:
            return [
                model.model_validate(d, scim_policy=TOLERANT) if model else d for d in documents
            ]
        except ValidationError as exc:
            where = first_error(exc, "a document")
            raise errors.bad_response(SERVICE, f"unreadable {path}: {where}") from None

    def _describe(self, response: requests.Response) -> errors.ConnectionProblem:
        """A SCIM Error body (RFC 7644 §3.12) becomes the problem's detail and scim_type."""
        detail = scim_type = None
        try:
            data = response.json()
        except ValueError:
            data = None
        schemas = data.get("schemas") if isinstance(data, dict) else None
        if isinstance(data, dict) and (
            (isinstance(schemas, list) and ERROR in schemas) or "detail" in data
        ):
            try:
                error = Error.model_validate(data, scim_policy=TOLERANT)
                detail, scim_type = error.detail, error.scim_type
            except ValidationError:
                detail, scim_type = data.get("detail"), data.get("scimType")
            # Only text is the service's words; anything else is left out.
            scim_type = scim_type if isinstance(scim_type, str) and scim_type else None
            detail = detail.strip()[:500] if isinstance(detail, str) else ""
            detail = detail or f"SCIM error {response.status_code}"
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
