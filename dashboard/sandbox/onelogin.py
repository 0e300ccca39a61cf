"""A stateful stand-in for the part of OneLogin's API this dashboard uses (DESIGN.md §2): the
tenant.

`OneLoginState` is the tenant: plain dataclasses that tests and the demo change directly (a
role's `user_ids`, an app's `parameters`, a user's `status`) or through the helpers that keep
ids and invariants. It is served over HTTP by `dashboard.sandbox.onelogin_api.create_app`
(OneLogin's paths, shapes and cursor paging), behind the gateway of
`dashboard.sandbox.onelogin_gateway` (credential scopes, error bodies, rate limits, faults).
"""

from __future__ import annotations

import math
import re
import secrets
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    pass

AUTH_ONLY, READ_USERS, MANAGE_USERS = "Authentication Only", "Read users", "Manage users"
READ_ALL, MANAGE_ALL = "Read All", "Manage All"
# Which credential scopes may make each call, per OneLogin's API docs.
READ_USERS_SCOPES = frozenset({READ_USERS, MANAGE_USERS, READ_ALL, MANAGE_ALL})
WRITE_USERS_SCOPES = frozenset({MANAGE_USERS, MANAGE_ALL})
READ_APPS_SCOPES = frozenset({READ_ALL, MANAGE_ALL})
MANAGE_ALL_SCOPES = frozenset({MANAGE_ALL})

USER_STATUSES = frozenset({0, 1, 2, 3, 4, 5, 7, 8})  # there is no 6
SUSPENDED_STATUS = 2
# The events logged for a change made through the API or the console, by OneLogin's event
# type ids (GET /api/1/events/types). OneLogin's id for a role taken from a user is not
# published with a name we could confirm: 55 is this simulator's (see onelogin_seed).
USER_ASSIGNED_ROLE, USER_UPDATED, USER_DELETED, USER_SUSPENDED, USER_REACTIVATED = 4, 14, 17, 21, 32
USER_REMOVED_FROM_ROLE = 55
TOKEN_LIFETIME = 36000
CREATED = "2024-01-08T09:00:00.000Z"


def stamp(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


@dataclass
class User:
    id: int
    username: str
    email: str
    firstname: str
    lastname: str
    status: int = 1
    custom_attributes: dict[str, str | None] = field(default_factory=dict)
    created_at: str = CREATED
    updated_at: str = CREATED


@dataclass
class Parameter:
    """An app parameter; App.parameters keys it by its short name."""

    label: str
    user_attribute_mappings: str  # "email", "custom_attribute_<shortname>", "_macro_", ...
    include_in_saml_assertion: bool = True
    provisioned_entitlements: bool = False
    user_attribute_macros: str | None = None
    id: int = 0


@dataclass
class App:
    id: int
    name: str
    connector_id: int
    auth_method: int = 2  # SAML
    provisioning_enabled: bool = True
    parameters: dict[str, Parameter] = field(default_factory=dict)
    created_at: str = CREATED


@dataclass
class Role:
    id: int
    name: str
    app_ids: list[int] = field(default_factory=list)
    user_ids: list[int] = field(default_factory=list)  # users get apps through roles


@dataclass
class CustomAttribute:
    id: int
    shortname: str
    name: str


@dataclass
class Credential:
    client_id: str
    client_secret: str
    scope: str = MANAGE_ALL


@dataclass
class Token:
    value: str
    credential: Credential
    created_at: float
    expires_at: float


@dataclass
class Scheduled:
    """A canned answer (a fault or a 429) for the next `times` calls under `path`."""

    status: int
    times: int
    retry_after: int | None = None
    path: str = "/"


@dataclass
class OneLoginState:
    account_id: int = 81234
    users: dict[int, User] = field(default_factory=dict)
    apps: dict[int, App] = field(default_factory=dict)
    roles: dict[int, Role] = field(default_factory=dict)
    attributes: list[CustomAttribute] = field(default_factory=list)  # in display order
    events: list[dict[str, Any]] = field(default_factory=list)
    event_types: list[dict[str, Any]] = field(default_factory=list)
    credentials: dict[str, Credential] = field(default_factory=dict)
    # (user id, app id) -> (provisioning_state, provisioning_status); default provisioned
    provisioning: dict[tuple[int, int], tuple[str, str]] = field(default_factory=dict)
    rate_limit: int = 5000  # API calls per window (OneLogin's v1 limit), tokens not counted
    rate_window: int = 3600  # seconds
    # Whether a 429 past the limit says Retry-After (else only X-RateLimit-Reset tells when).
    rate_retry_after: bool = True
    lower_case_headers: bool = False  # paging and rate headers, as OneLogin sometimes sends
    clock: Callable[[], float] = time.time
    calls: Counter[str] = field(default_factory=Counter)  # per endpoint: "issue_token", ...
    log: deque[str] = field(default_factory=lambda: deque(maxlen=1000))  # "PUT /api/..."
    tokens: dict[str, Token] = field(default_factory=dict)
    scheduled: list[Scheduled] = field(default_factory=list)
    window: tuple[float, int] = (0.0, 0)  # (start, calls so far)
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False, compare=False)

    @classmethod
    def seeded(cls) -> OneLoginState:
        """The demo tenant and its seeded problems (see onelogin_seed)."""
        from dashboard.sandbox.onelogin_seed import seed

        return seed(cls())

    def add_credential(self, client_id: str, secret: str, scope: str = MANAGE_ALL) -> Credential:
        self.credentials[client_id] = Credential(client_id, secret, scope)
        return self.credentials[client_id]

    def expire_tokens(self) -> None:
        for token in self.tokens.values():
            token.expires_at = self.clock() - 1

    def token_for(self, credential: Credential) -> Token:
        """OneLogin hands out the same token until it expires."""
        now = self.clock()
        self.tokens = {v: t for v, t in self.tokens.items() if t.expires_at > now}
        for token in self.tokens.values():
            if token.credential is credential:
                return token
        token = Token(secrets.token_hex(32), credential, now, now + TOKEN_LIFETIME)
        self.tokens[token.value] = token
        return token

    def add_user(self, firstname: str, lastname: str, *, status: int = 1, **roles: str) -> User:
        """A user named first.last@example.com, with custom attribute values `roles`."""
        local = re.sub(r"[^a-z.]", "", f"{firstname}.{lastname}".lower())
        user_id = max(self.users, default=52140000) + 1
        self.users[user_id] = User(user_id, local, f"{local}@example.com", firstname, lastname)
        self.users[user_id].status = status
        self.set_custom_attributes(user_id, roles)
        return self.users[user_id]

    def remove_user(self, user_id: int) -> None:
        """Delete the user as OneLogin does: gone from every role (and so from every app), and
        OneLogin's provisioning record of it with it. Events about it stay: they are history."""
        del self.users[user_id]
        for role in self.roles.values():
            role.user_ids = [i for i in role.user_ids if i != user_id]
        self.provisioning = {k: v for k, v in self.provisioning.items() if k[0] != user_id}

    def set_custom_attributes(self, user_id: int, values: dict[str, str | None]) -> None:
        unknown = set(values) - set(self.attribute_names())
        if unknown:
            raise KeyError(f"no custom attribute {sorted(unknown)}")
        user = self.users[user_id]
        # An empty value clears the field, as the v1 API documents.
        user.custom_attributes.update({k: v or None for k, v in values.items()})
        user.updated_at = stamp(self.clock())

    # --- changes as an admin makes them (console or API), each logging OneLogin's event ----
    # `actor` holds the event's actor fields: actor_user_name for the console, client_id for
    # the API. Changing the dataclasses directly changes the tenant without an event.

    def update_attributes(self, user_id: int, values: dict[str, str | None], **actor: Any):
        """Set custom attribute values; USER_UPDATED names the fields that changed."""
        user = self.users[user_id]
        before = dict(user.custom_attributes)
        self.set_custom_attributes(user_id, values)
        changed = sorted(k for k in values if before.get(k) != user.custom_attributes.get(k))
        if changed:
            self.log_user_event(USER_UPDATED, user, custom_message=", ".join(changed), **actor)

    def set_status(self, user_id: int, status: int, **actor: Any) -> None:
        user = self.users[user_id]
        if status == user.status:
            return
        if status == SUSPENDED_STATUS:
            kind = USER_SUSPENDED
        elif user.status == SUSPENDED_STATUS:
            kind = USER_REACTIVATED
        else:
            kind = USER_UPDATED
        user.status = status
        user.updated_at = stamp(self.clock())
        self.log_user_event(kind, user, **actor)

    def delete_user(self, user_id: int, **actor: Any) -> None:
        user = self.users[user_id]
        self.remove_user(user_id)
        self.log_user_event(USER_DELETED, user, **actor)

    def assign_role(self, role_id: int, user_ids: list[int], **actor: Any) -> None:
        role = self.roles[role_id]
        for user_id in dict.fromkeys(user_ids):
            if user_id not in role.user_ids:
                role.user_ids.append(user_id)
                self.log_user_event(
                    USER_ASSIGNED_ROLE,
                    self.users[user_id],
                    role_id=role.id,
                    role_name=role.name,
                    **actor,
                )

    def unassign_role(self, role_id: int, user_ids: list[int], **actor: Any) -> None:
        role = self.roles[role_id]
        for user_id in dict.fromkeys(user_ids):
            if user_id in role.user_ids:
                role.user_ids.remove(user_id)
                self.log_user_event(
                    USER_REMOVED_FROM_ROLE,
                    self.users[user_id],
                    role_id=role.id,
                    role_name=role.name,
                    **actor,
                )

    def log_user_event(self, event_type_id: int, user: User, **fields: Any) -> dict[str, Any]:
        name = f"{user.firstname} {user.lastname}"
        return self.add_event(event_type_id, user_id=user.id, user_name=name, **fields)

    def attribute_names(self) -> list[str]:
        return [a.shortname for a in self.attributes]

    def define_attribute(self, shortname: str, name: str | None = None) -> CustomAttribute:
        next_id = max((a.id for a in self.attributes), default=87000) + 1
        self.attributes.append(CustomAttribute(next_id, shortname, name or shortname))
        return self.attributes[-1]

    def remove_attribute(self, shortname: str) -> None:
        self.attributes = [a for a in self.attributes if a.shortname != shortname]
        for user in self.users.values():
            user.custom_attributes.pop(shortname, None)

    def add_role(self, name: str, app_ids: list[int], user_ids: list[int]) -> Role:
        role_id = max(self.roles, default=700000) + 1
        self.roles[role_id] = Role(role_id, name, list(app_ids), list(user_ids))
        return self.roles[role_id]

    def app_user_ids(self, app_id: int) -> list[int]:
        roles = [r for r in self.roles.values() if app_id in r.app_ids]
        return sorted({u for r in roles for u in r.user_ids if u in self.users})

    def user_app_ids(self, user_id: int) -> list[int]:
        return sorted({a for r in self.roles.values() if user_id in r.user_ids for a in r.app_ids})

    def add_event(self, event_type_id: int, *, created_at: str | None = None, **fields: Any):
        event_id = max((e["id"] for e in self.events), default=990000000) + 1
        event = {"id": event_id, "created_at": created_at or stamp(self.clock())}
        event |= {"account_id": self.account_id, "event_type_id": event_type_id, **fields}
        self.events.append(event)
        return event

    def fail_next(self, status: int = 503, times: int = 1, *, path: str = "/") -> None:
        self.scheduled.append(Scheduled(status, times, None, path))

    def throttle_next(self, times: int = 1, *, retry_after: int = 1, path: str = "/") -> None:
        self.scheduled.append(Scheduled(429, times, retry_after, path))

    def take_scheduled(self, path: str) -> Scheduled | None:
        for answer in self.scheduled:
            if answer.times > 0 and path.startswith(answer.path):
                answer.times -= 1
                return answer
        return None

    def count_call(self) -> tuple[int, int]:
        """(calls left, seconds to the window's reset) once this call is counted."""
        now = self.clock()
        start, used = self.window
        if now >= start + self.rate_window:
            start, used = now, 0
        self.window = (start, used + 1)
        return self.rate_limit - used - 1, max(1, math.ceil(start + self.rate_window - now))

    def budget(self) -> tuple[int, int, int]:
        """(limit, calls remaining, seconds to the reset) as GET /auth/rate_limit says them,
        without counting a call; a window not started yet is a full budget and hour."""
        now = self.clock()
        start, used = self.window
        if now >= start + self.rate_window:
            return self.rate_limit, self.rate_limit, self.rate_window
        reset = max(1, math.ceil(start + self.rate_window - now))
        return self.rate_limit, max(0, self.rate_limit - used), reset

    def set_budget(self, remaining: int, *, limit: int | None = None, reset_in: int = 1800):
        """Make the account's budget stand at `remaining` calls of `limit` (as if others had
        spent the rest), resetting in `reset_in` seconds."""
        self.rate_limit = self.rate_limit if limit is None else limit
        start = self.clock() - (self.rate_window - reset_in)
        self.window = (start, self.rate_limit - remaining)
