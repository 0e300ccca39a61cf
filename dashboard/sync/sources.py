"""Reading both sides for a plan: OneLogin's users, who holds the app and its parameters;
Workato's users and what its SCIM API supports. The two sides are read at the same time,
so a plan takes as long as the slower side's pages, not their sum. Each user is kept only
as far as the template and the match need (sync.compact), so what a plan holds stays small
however many users both sides have."""

from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from dashboard.connections.onelogin import OneLoginClient
from dashboard.connections.scim import ScimClient
from dashboard.sync.compact import Ids, OneLoginUsers, WorkatoUsers


@dataclass(frozen=True)
class OneLoginSide:
    users: OneLoginUsers
    app_user_ids: Ids
    parameters: dict[str, dict[str, Any]]


@dataclass(frozen=True)
class WorkatoSide:
    users: WorkatoUsers
    patch: bool


def read_onelogin(
    client: OneLoginClient,
    app_id: int,
    template: Mapping[str, Any],
    role_fields: tuple[str, ...] = (),
) -> OneLoginSide:
    app = client.app(app_id)
    parameters = dict(app.get("parameters") or {})
    app_user_ids = Ids(user["id"] for user in client.app_users(app_id))
    # Everyone, not only the app's users: an orphan in Workato is looked up among them.
    users = OneLoginUsers(template, parameters, role_fields)
    for user in client.users():
        users.add(user)
    return OneLoginSide(users, app_user_ids, parameters)


def read_workato(client: ScimClient, page_size: int, template: Mapping[str, Any]) -> WorkatoSide:
    patch = client.capabilities().patch
    size = page_size
    if client.capabilities().max_results:
        size = min(size, client.capabilities().max_results)
    users = WorkatoUsers(template, patch=patch)
    for user in client.list_users(size):
        users.add(user)
    return WorkatoSide(users, patch)


def read_both(
    onelogin: OneLoginClient,
    scim: ScimClient,
    app_id: int,
    page_size: int,
    template: Mapping[str, Any],
    role_fields: tuple[str, ...] = (),
) -> tuple[OneLoginSide, WorkatoSide]:
    """Both sides; the first failure (a ConnectionProblem) is raised once both are done."""
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="sync-read") as pool:
        left = pool.submit(read_onelogin, onelogin, app_id, template, role_fields)
        right = pool.submit(read_workato, scim, page_size, template)
        return left.result(), right.result()
