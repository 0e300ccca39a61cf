"""Reading both sides for a plan: OneLogin's users, who holds the app and its parameters;
Workato's users and what its SCIM API supports. The two sides are read at the same time,
so a plan takes as long as the slower side's pages, not their sum."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from dashboard.connections.onelogin import OneLoginClient
from dashboard.connections.scim import ScimClient
from dashboard.connections.scim_models import ScimUser


@dataclass(frozen=True)
class OneLoginSide:
    users: list[dict[str, Any]]
    app_user_ids: set[int]
    parameters: dict[str, dict[str, Any]]


@dataclass(frozen=True)
class WorkatoSide:
    users: list[ScimUser]
    patch: bool


def read_onelogin(client: OneLoginClient, app_id: int) -> OneLoginSide:
    app = client.app(app_id)
    app_user_ids = {user["id"] for user in client.app_users(app_id)}
    # Everyone, not only the app's users: an orphan in Workato is looked up among them.
    users = [dict(user) for user in client.users()]
    return OneLoginSide(users, app_user_ids, dict(app.get("parameters") or {}))


def read_workato(client: ScimClient, page_size: int) -> WorkatoSide:
    patch = client.capabilities().patch
    size = page_size
    if client.capabilities().max_results:
        size = min(size, client.capabilities().max_results)
    return WorkatoSide(list(client.list_users(size)), patch)


def read_both(
    onelogin: OneLoginClient, scim: ScimClient, app_id: int, page_size: int
) -> tuple[OneLoginSide, WorkatoSide]:
    """Both sides; the first failure (a ConnectionProblem) is raised once both are done."""
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="sync-read") as pool:
        left = pool.submit(read_onelogin, onelogin, app_id)
        right = pool.submit(read_workato, scim, page_size)
        return left.result(), right.result()
