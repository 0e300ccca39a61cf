"""What the checklist needs to know from OneLogin and Workato, fetched concurrently.

One fetcher per service runs its calls in order and records each fact as it arrives, so a
slow service delays only its own items, and what arrived before a timeout still counts.
Clients are built in the caller's thread (they need the app to decrypt secrets); the
worker threads only talk HTTP.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

from dashboard.connections import errors
from dashboard.setup.template import WORKATO_ROLE


@dataclass(frozen=True)
class Missing:
    """The connection a fact needs is not configured (or SCIM is disabled)."""

    message: str


@dataclass(frozen=True)
class TimedOut:
    service: str
    seconds: float

    @property
    def message(self) -> str:
        return (
            f"{self.service} did not answer within {self.seconds:g} s; the check gave up "
            "so the page would not hang. Re-check, or test the connection."
        )


# Which service each fact comes from, and the fact that proves the service answers.
SERVICES = {
    "onelogin": ("OneLogin API", "onelogin_reachable"),
    "scim": ("Workato SCIM API", "scim_reachable"),
    "workato_api": ("Workato developer API", "workato_roles"),
}
FACT_GROUP = {
    "onelogin_reachable": "onelogin",
    "onelogin_app": "onelogin",
    "custom_fields": "onelogin",
    "role_values": "onelogin",
    "scim_reachable": "scim",
    "scim_role_schema": "scim",
    "workato_roles": "workato_api",
}
ABSENT = (errors.ConnectionProblem, Missing, TimedOut)


@dataclass
class Facts:
    """Fact name -> value, or why it is absent (ConnectionProblem, Missing, TimedOut)."""

    values: dict[str, Any] = field(default_factory=dict)
    timed_out: set[str] = field(default_factory=set)  # groups still running at the deadline
    timeout: float = 0.0
    # Set at the deadline: fetchers still running make no further calls.
    cancelled: threading.Event = field(default_factory=threading.Event)

    def get(self, name: str) -> Any:
        if name in self.values:
            return self.values[name]
        group = FACT_GROUP[name]
        service, gate = SERVICES[group]
        if group in self.timed_out:
            return TimedOut(service, self.timeout)
        # The fetcher stopped early: the call that proves the service answers failed.
        return self.values.get(gate, Missing(f"{service}: not checked."))


def absent(value: Any) -> bool:
    return isinstance(value, ABSENT)


def _record(facts: Facts, name: str, fetch: Callable[[], Any]) -> bool:
    """Fetch one fact; False when the service failed (the later calls would fail too)."""
    if facts.cancelled.is_set():
        return False
    try:
        facts.values[name] = fetch()
    except errors.ConnectionProblem as problem:
        facts.values[name] = problem
        return False
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        # An answer of the wrong shape: say so for this fact, keep the page working.
        service = SERVICES[FACT_GROUP[name]][0]
        facts.values[name] = errors.bad_response(service, f"{type(exc).__name__} reading it")
        return False
    return True


def onelogin_facts(client, app_id: int, role_fields: list[str]) -> Callable[[Facts], None]:
    def fetch(facts: Facts) -> None:
        if not _record(facts, "onelogin_reachable", lambda: client.check() or True):
            return
        _record(facts, "onelogin_app", _naming_the_app(app_id, lambda: client.app(app_id)))
        _record(facts, "custom_fields", client.custom_attribute_definitions)
        _record(
            facts,
            "role_values",
            _naming_the_app(
                app_id, lambda: _role_values(client, app_id, role_fields, facts.cancelled)
            ),
        )

    return fetch


def _naming_the_app(app_id: int, fetch: Callable[[], Any]) -> Callable[[], Any]:
    """OneLogin answers 404 for an app id it does not know; the base URL was just proven
    right (the credential read from it), so say which value to fix."""

    def fetch_or_explain() -> Any:
        try:
            return fetch()
        except errors.ConnectionProblem as problem:
            if problem.kind != errors.NOT_FOUND:
                raise
            raise errors.ConnectionProblem(
                errors.NOT_FOUND,
                problem.service,
                f"OneLogin has no app with id {app_id}: check the Workato app id saved on "
                "Connections (the number in the app's URL in OneLogin's admin console).",
                problem.status,
                detail=problem.detail,
            ) from None

    return fetch_or_explain


def _role_values(
    client, app_id: int, role_fields: list[str], cancelled: threading.Event
) -> dict[str, dict[str, str]]:
    """{user email or id: {role field: value}} for the users the app is assigned to."""
    ids = [user["id"] for user in client.app_users(app_id)]
    values = {}
    for start in range(0, len(ids), 100):
        if cancelled.is_set():  # past the deadline: nobody will read the rest
            break
        for user in client.users(user_ids=ids[start : start + 100]):
            custom = user.get("custom_attributes") or {}
            who = user.get("email") or user.get("username") or str(user["id"])
            values[str(who)] = {f: str(custom[f]) for f in role_fields if custom.get(f)}
    return values


def scim_facts(client) -> Callable[[Facts], None]:
    def fetch(facts: Facts) -> None:
        if not _record(facts, "scim_reachable", lambda: client.check() or True):
            return
        _record(facts, "scim_role_schema", lambda: client.has_schema(WORKATO_ROLE))

    return fetch


def workato_roles_facts(client) -> Callable[[Facts], None]:
    def fetch(facts: Facts) -> None:
        _record(facts, "workato_roles", client.roles)

    return fetch


def gather(
    fetchers: dict[str, Callable[[Facts], None]], timeout: float, preset: dict[str, Any]
) -> Facts:
    """Run the fetchers (by group) concurrently; after `timeout` seconds, what is still
    missing is TimedOut. `preset` holds facts known without a call (Missing ones)."""
    facts = Facts(dict(preset or {}), timeout=timeout)
    if not fetchers:
        return facts
    pool = ThreadPoolExecutor(max_workers=len(fetchers), thread_name_prefix="setup-check")
    futures = {pool.submit(fetch, facts): group for group, fetch in fetchers.items()}
    done, pending = wait(futures, timeout=timeout)
    # Never wait for a stuck service: its thread ends when its own HTTP timeout fires,
    # and makes no further call.
    facts.cancelled.set()
    pool.shutdown(wait=False, cancel_futures=True)
    # What arrived by the deadline; a late answer must not change facts being judged.
    arrived = Facts(dict(facts.values), timeout=timeout)
    for future in done:
        if future.exception() is not None:
            raise future.exception()
    arrived.timed_out = {futures[f] for f in pending}
    return arrived
