"""The Workato roles a role field may hold, and the check of one value against them.

Workato's role names are case-sensitive (`Admin`, not `admin`), and a name Workato does not
know leaves the user without the access the admin meant. So every value the dashboard writes
to a role field is checked here first: against Workato's own list when the developer API is
connected, else against DASHBOARD_KNOWN_ROLES.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from flask import current_app

from dashboard.connections import errors
from dashboard.connections import service as connections
from dashboard.connections.clients import ONE_TRY, client_for
from dashboard.connections.models import WORKATO_API
from dashboard.connections.vault import SecretUnreadable
from dashboard.text import did_you_mean

CONFIGURED = "the configured roles (DASHBOARD_KNOWN_ROLES)"
FROM_WORKATO = "Workato's list of roles"
CACHE_SECONDS = 300.0  # Workato allows 60 calls a minute; an admin editing a page of users
CLEAR = "-"  # in a CSV cell: clear the field (an empty cell leaves it as it is)


class RoleRefused(ValueError):
    """A value a role field may not hold; the message says why and what would do.
    `problems` has every refused field's message, when several were checked at once."""

    def __init__(self, field: str, message: str, problems: dict[str, str] | None = None):
        super().__init__(message)
        self.field = field
        self.problems = problems or {field: message}


@dataclass(frozen=True)
class Catalog:
    names: tuple[str, ...]
    source: str  # where the names came from, for messages
    problem: str | None = None  # why Workato's list was not used although connected

    def check(self, field: str, value: str | None) -> str | None:
        """The value to store (None clears the field), or RoleRefused."""
        value = (value or "").strip()
        if not value:
            return None
        if value in self.names:
            return value
        hint = did_you_mean(value, self.names)
        if hint and hint.casefold() == value.casefold():
            raise RoleRefused(
                field,
                f"“{value}” is not a Workato role: role names are case-sensitive. "
                f"Did you mean {hint}?",
            )
        raise RoleRefused(
            field,
            f"“{value}” is not in {self.source}"
            + (f" (did you mean {hint}?)" if hint else "")
            + f". Valid roles: {', '.join(self.names)}.",
        )


def clearing_means(field: str) -> str:
    """What emptying a role field does to the user, in the admin's words."""
    where = {
        "workato_role": "in the workspace (its development environment, where there are several)",
        "workato_role_test": "in the test environment",
        "workato_role_prod": "in the production environment",
    }.get(field, f"in the environment {field} stands for")
    return (
        f"Clearing {field} removes the user's role {where} in Workato: they keep their "
        "Workato account, but have no role there until one is set."
    )


def catalog(*, remote: bool = True) -> Catalog:
    """Workato's roles when the developer API is connected (kept a few minutes), else the
    configured ones. A failing developer API falls back to the configured list and says so,
    so an outage in Workato's API does not stop role edits. `remote=False` (for showing a
    page, which never waits on a remote API) takes the kept list, or the configured one."""
    configured = tuple(current_app.extensions["dashboard.settings"].DASHBOARD_KNOWN_ROLES)
    connection = connections.with_secret(WORKATO_API)
    if connection is None:
        return Catalog(configured, CONFIGURED)
    cache = current_app.extensions.setdefault("dashboard.role_catalog", {})
    stamp = (connection.id, connection.saved_at, connection.secret_saved_at)
    kept = cache.get("entry")
    if kept and kept[0] == stamp and (not remote or time.monotonic() - kept[1] < CACHE_SECONDS):
        return kept[2]
    if not remote:
        return Catalog(configured, CONFIGURED)
    try:
        with client_for(connection, retry=ONE_TRY) as client:
            found = Catalog(tuple(client.roles()), FROM_WORKATO)
    except (errors.ConnectionProblem, SecretUnreadable) as problem:
        # Not kept: the next edit tries Workato again.
        return Catalog(
            configured,
            CONFIGURED,
            problem=f"Workato's list of roles could not be read ({problem}); "
            f"checked against {CONFIGURED} instead.",
        )
    cache["entry"] = (stamp, time.monotonic(), found)
    return found
