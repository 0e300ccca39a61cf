"""A OneLogin tenant and a Workato SCIM server, wired to an app, for sync tests.

    world = World.small(app)            # a few people, a fresh scim2-server WSGI app
    world = World.demo(app)             # the demo tenant and its seeded Workato workspace
    with world:                         # serves both on 127.0.0.1 and saves the connections
        world.tenant.users[...]         # change OneLogin while it is served
        world.workato_user("ada.lovelace@example.com")   # read Workato back

Workato is scim2-server: its own WSGI application served in a thread here (fresh and empty
per world, so tests do not share users), or, with `scim_root`, a scim2-server process the
test started (tests/support/scim_server.ScimServer), optionally behind a FaultProxy.
"""

from __future__ import annotations

from contextlib import ExitStack
from typing import Any

import requests
from flask import Flask

from dashboard.connections import service as connections
from dashboard.connections.models import ONELOGIN, SCIM
from dashboard.connections.scim_models import build_user
from dashboard.sandbox import workato_scim, workato_seed
from dashboard.sandbox.onelogin import OneLoginState
from dashboard.sandbox.onelogin_seed import (
    DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET,
    ROLE_FIELDS,
    WORKATO_APP_ID,
    seed,
)
from dashboard.setup import service as setup
from dashboard.setup import template
from tests.support.onelogin import running
from tests.support.scim_server import TOKEN, WORKATO_ROLE, serve_wsgi

ACTOR = "sync.test@example.com"


class World:
    def __init__(
        self,
        app: Flask,
        tenant: OneLoginState,
        workato_seed_users: list[dict] | None = None,
        *,
        scim_root: str | None = None,
        token: str = TOKEN,
    ) -> None:
        self.app, self.tenant, self.token = app, tenant, token
        self._seed_users = workato_seed_users or []
        self._scim_root = scim_root
        self._stack = ExitStack()
        self.onelogin_url = self.scim_url = ""

    @classmethod
    def demo(cls, app: Flask, **kwargs: Any) -> World:
        tenant = OneLoginState.seeded()
        return cls(app, tenant, workato_seed.workato_users(tenant), **kwargs)

    @classmethod
    def small(cls, app: Flask, **kwargs: Any) -> World:
        """An empty tenant but for the Workato app, its roles and custom fields."""
        tenant = empty_tenant()
        return cls(app, tenant, **kwargs)

    def __enter__(self) -> World:
        self.onelogin_url = self._stack.enter_context(running(self.tenant))
        if self._scim_root is None:
            scim_app = workato_scim.create_workato_scim_app(self.token)
            self._scim_root = self._stack.enter_context(serve_wsgi(scim_app))
        self.scim_url = self._scim_root + "/v2"
        for user in self._seed_users:
            self.post_user(user)
        with self.app.app_context():
            connections.save(
                ONELOGIN,
                actor=ACTOR,
                base_url=self.onelogin_url,
                secret=DEMO_CLIENT_SECRET,
                client_id=DEMO_CLIENT_ID,
                app_id=WORKATO_APP_ID,
            )
            connections.save(SCIM, actor=ACTOR, base_url=self.scim_url, secret=self.token)
            setup.save_template(template.default_template(list(ROLE_FIELDS)), ACTOR)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    # --- OneLogin ----------------------------------------------------------------------

    def person(self, first: str, last: str, *, app: bool = True, status: int = 1, **roles):
        """A OneLogin user first.last@example.com, given the Workato app unless app=False."""
        user = self.tenant.add_user(first, last, status=status, **roles)
        if app:
            self.grant(user.id)
        return user

    def grant(self, user_id: int) -> None:
        role = next(r for r in self.tenant.roles.values() if r.name == "Workato Users")
        role.user_ids.append(user_id)

    def revoke(self, user_id: int) -> None:
        for role in self.tenant.roles.values():
            if user_id in role.user_ids:
                role.user_ids.remove(user_id)

    # --- Workato -----------------------------------------------------------------------

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def post_user(self, user: dict) -> dict:
        answer = requests.post(
            f"{self.scim_url}/Users", json=user, headers=self.headers(), timeout=10
        )
        answer.raise_for_status()
        return answer.json()

    def add_workato_user(self, email: str, *, active: bool = True, **roles: str) -> dict:
        given, _, family = email.split("@")[0].partition(".")
        return self.post_user(
            build_user(
                email,
                given_name=given.capitalize(),
                family_name=family.capitalize() or None,
                email=email,
                active=active,
                roles=roles,
            )
        )

    def workato_users(self) -> dict[str, dict]:
        """Every Workato user by lower-cased userName."""
        found, start = {}, 1
        while True:
            page = requests.get(
                f"{self.scim_url}/Users",
                params={"startIndex": start, "count": 500},
                headers=self.headers(),
                timeout=10,
            ).json()
            for user in page.get("Resources", []):
                found[user["userName"].lower()] = user
            start += len(page.get("Resources", []))
            if not page.get("Resources") or start > page["totalResults"]:
                return found

    def workato_user(self, email: str) -> dict | None:
        return self.workato_users().get(email.lower())


def roles_of(user: dict) -> dict[str, str]:
    return dict(user.get(WORKATO_ROLE) or {})


def empty_tenant() -> OneLoginState:
    """The demo tenant's app, roles and fields, without its people."""
    tenant = seed(OneLoginState())
    tenant.users.clear()
    tenant.events.clear()
    tenant.provisioning.clear()
    for role in tenant.roles.values():
        role.user_ids.clear()
    return tenant
