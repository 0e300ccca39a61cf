"""One item of a run, carried out against Workato's SCIM API: send the planned request,
retry what is transient, and re-check Workato before any try whose predecessor may have
been applied. No Flask, no database: the runner records what this returns.

Failure classes (README, "How a run handles failures"):
- 429: wait Retry-After (all threads: see Pace.hold), send the same request again;
- 5xx, timeout, connection lost: back off with jitter, re-read the user, decide again;
- 401, SCIM disabled on Connections, or the run's gate closed (cancel, SCIM changed, run
  lost): nothing more is sent and the whole run stops; the item is left to a resume;
- any other 4xx: the item fails with Workato's SCIM error.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from dashboard.connections import errors
from dashboard.connections.scim import ScimClient
from dashboard.connections.scim_models import ScimUser
from dashboard.sync import compare
from dashboard.sync.pace import Pace, backoff
from dashboard.sync.planner import CREATE, REACTIVATE, SUSPEND, active_request, write_request

STOPS_THE_RUN = (errors.UNAUTHORIZED, errors.SCIM_DISABLED, errors.STOPPED)
SUCCEEDED, FAILED = "succeeded", "failed"


@dataclass(frozen=True)
class Work:
    """What the runner hands over: one planned write."""

    user_name: str
    action: str
    request: dict[str, Any]
    desired: dict[str, Any] | None
    recheck: bool = False  # an earlier try may have been applied: look first
    scim_id: str | None = None  # Workato's id when the plan found the user


@dataclass
class Outcome:
    status: str
    attempts: int = 0
    http_status: int | None = None
    error: str | None = None
    request: dict[str, Any] | None = None  # what was sent last
    response: dict[str, Any] | None = None
    note: str | None = None
    user: ScimUser | None = None  # Workato's user afterwards, when known
    stop: str | None = None  # set when the whole run must stop, with the reason
    # Stopped after a try that may have been applied: its outcome is unknown (re-checked
    # when the run resumes), not "not sent".
    maybe_applied: bool = False
    duration_ms: int = 0
    waits: list[float] = field(default_factory=list)


class Executor:
    def __init__(
        self,
        client: ScimClient,
        pace: Pace,
        *,
        attempts: int,
        backoff_base: float,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.client, self.pace = client, pace
        self.attempts, self.backoff_base, self.sleep = attempts, backoff_base, sleep

    def perform(self, work: Work) -> Outcome:
        started = time.monotonic()
        outcome = self._perform(work)
        outcome.duration_ms = round((time.monotonic() - started) * 1000)
        return outcome

    def _perform(self, work: Work) -> Outcome:
        outcome = Outcome(FAILED, request=work.request)
        recheck = work.recheck
        for attempt in range(1, self.attempts + 1):
            outcome.attempts = attempt
            try:
                if recheck:
                    request, current = self._decide_again(work)
                    if request is None:
                        outcome.status, outcome.user = SUCCEEDED, current
                        outcome.note = "Already done: Workato holds the wanted state (re-checked)."
                        return outcome
                    outcome.request = request
                status, user = self.client.send(**outcome.request)
            except errors.ConnectionProblem as problem:
                outcome.http_status, outcome.error = problem.status, problem.message
                outcome.response = _problem_body(problem)
                if problem.kind in STOPS_THE_RUN:
                    outcome.stop = problem.message
                    outcome.maybe_applied = recheck
                    return outcome
                if problem.kind == errors.NOT_FOUND and outcome.request.get("method") != "POST":
                    # The base URL works (this run read and wrote through it): the user went.
                    outcome.error = (
                        f"{work.user_name} is no longer in Workato (404): deleted there since "
                        "the plan? Preview a new plan."
                    )
                    return outcome
                if problem.kind == errors.RATE_LIMITED:
                    wait = problem.retry_after
                    wait = wait if wait is not None else backoff(attempt, self.backoff_base)
                    self.pace.hold(wait)  # the next send waits in the pace
                    outcome.waits.append(wait)
                    continue
                if problem.transient or problem.kind == errors.BAD_RESPONSE:
                    # The write may have been applied: look before sending it again.
                    recheck = True
                    wait = backoff(attempt, self.backoff_base)
                    outcome.waits.append(wait)
                    self.sleep(wait)
                    continue
                return outcome
            outcome.status, outcome.user, outcome.http_status = SUCCEEDED, user, status
            body = user.raw if user is not None else None
            outcome.error, outcome.response = None, {"status": status, "body": body}
            return outcome
        outcome.error = f"Gave up after {self.attempts} tries: {outcome.error}"
        return outcome

    def _decide_again(self, work: Work) -> tuple[dict[str, Any] | None, ScimUser | None]:
        """The request still needed, given what Workato holds now (None: nothing)."""
        # By id when known (one GET, even where Workato cannot filter); a create by name.
        current = self.client.get_user(work.scim_id) if work.scim_id else None
        if current is None:
            current = self.client.find_user(work.user_name)
        patch = self.client.capabilities().patch
        if work.action == SUSPEND or (work.action == REACTIVATE and work.desired is None):
            # Only `active` changes (a reactivation an admin chose carries no template).
            wanted = work.action == REACTIVATE
            if current is None and wanted:
                raise errors.ConnectionProblem(
                    errors.NOT_FOUND,
                    "Workato SCIM API",
                    f"{work.user_name} is no longer in Workato: there is nobody to reactivate.",
                    404,
                )
            if current is None or current.active == wanted:
                return None, current
            return active_request(current, wanted, patch), current
        desired = work.desired or {}
        if current is None:
            if work.action == CREATE:
                return work.request, None
            raise errors.ConnectionProblem(
                errors.NOT_FOUND,
                "Workato SCIM API",
                f"{work.user_name} is no longer in Workato: run a new plan to create them.",
                404,
            )
        changes = compare.differences(desired, current.raw)
        if not current.active:
            changes = {"active": [False, True], **changes}
        if not changes:
            return None, current
        return write_request(current, desired, changes, patch), current


def _problem_body(problem: errors.ConnectionProblem) -> dict[str, Any] | None:
    if problem.status is None:
        return None
    body = {"detail": problem.detail, "scimType": problem.scim_type}
    return {"status": problem.status, "body": {k: v for k, v in body.items() if v}}
