"""The suspension guard: a plan that suspends more Workato users than an admin would expect
needs the number typed in before it is applied (DASHBOARD_SYNC_SUSPEND_GUARD_COUNT / _SHARE).
"""

from __future__ import annotations

import math

from flask import current_app
from sqlalchemy import func, select

from dashboard.extensions import db
from dashboard.person import Person
from dashboard.sync.models import Run
from dashboard.sync.planner import SUSPEND
from dashboard.sync.readiness import Refused


class NeedsConfirmation(Refused):
    def __init__(self, suspensions: int, limit: str) -> None:
        super().__init__(
            f"This plan suspends {suspensions} users in Workato, more than {limit}. "
            f"Confirm by entering {suspensions}, or review the plan first."
        )
        self.suspensions = suspensions


def guard(run: Run) -> tuple[int, str] | None:
    """(planned suspensions, the limit passed) when the plan needs a second confirmation:
    it suspends more than DASHBOARD_SYNC_SUSPEND_GUARD_COUNT users, or more than
    DASHBOARD_SYNC_SUSPEND_GUARD_SHARE of the active Workato users."""
    settings = current_app.extensions["dashboard.settings"]
    suspensions = run.counts.get(SUSPEND, 0)
    count = settings.DASHBOARD_SYNC_SUSPEND_GUARD_COUNT
    if suspensions > count:
        return suspensions, f"the {count} users allowed without it"
    active = db.session.scalar(
        select(func.count()).select_from(Person).where(Person.workato_active.is_(True))
    )
    share = settings.DASHBOARD_SYNC_SUSPEND_GUARD_SHARE
    if suspensions > math.floor(share * active):
        return suspensions, f"{share:.0%} of the {active} active Workato users"
    return None
