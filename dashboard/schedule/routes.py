"""What the pages show of the schedule: `reconcile_schedule()` and the `every` filter for
templates (the Sync page's panel, the Overview)."""

from __future__ import annotations

from flask import Blueprint

from dashboard.schedule import service
from dashboard.schedule.models import (
    APPLIED,
    FAILED,
    GUARD,
    IN_SYNC,
    PLANNED,
    REFUSED,
    RUNNING,
    SKIPPED,
)

bp = Blueprint("schedule", __name__)
OUTCOME_LABELS = {
    RUNNING: "Planning",
    IN_SYNC: "In sync",
    APPLIED: "Applied",
    PLANNED: "Changes left for an admin",
    GUARD: "Held by the suspension guard",
    REFUSED: "Refused",
    SKIPPED: "Skipped",
    FAILED: "Failed",
}
# The state colours the pages already use (static/app.css: state-*).
OUTCOME_STATES = {
    RUNNING: "needs_confirmation",
    IN_SYNC: "verified",
    APPLIED: "verified",
    PLANNED: "needs_confirmation",
    GUARD: "failing",
    REFUSED: "failing",
    SKIPPED: "cannot_check",
    FAILED: "failing",
}


def every(seconds: int) -> str:
    """3600 -> "1 h", 1800 -> "30 min", 45 -> "45 s"."""
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"


bp.add_app_template_global(service.status, "reconcile_schedule")
bp.add_app_template_global(OUTCOME_LABELS, "reconcile_outcome_labels")
bp.add_app_template_global(OUTCOME_STATES, "reconcile_outcome_states")
bp.add_app_template_filter(every, "every")
