"""How runs and plans read on the pages: labels for statuses, kinds and actions, and the
template filters (durations, summaries of counts, JSON bodies). Registered by sync/routes."""

from __future__ import annotations

import json

from dashboard.sync.planner import NOOP, ORPHAN, WRITES

STATUS_LABELS = {
    "planned": "Preview, not applied",
    "queued": "Queued",
    "running": "Running",
    "succeeded": "Succeeded",
    "failed": "Failed",
    "stopped": "Stopped",
    "cancelled": "Cancelled",
    "interrupted": "Interrupted",
}


KIND_LABELS = {
    "sync": "Sync",
    "retry": "Retry of failed items",
    "suspend": "Suspend chosen orphans",
    "user": "One user, on demand",
}


ACTION_HINTS = {
    "create": "new in Workato",
    "update": "values changed",
    "suspend": "active: false",
    "reactivate": "active again",
    "noop": "already right",
    "orphan": "left alone",
}


# What a plan counted but does not send, as admins say it.
UNSENT_LABELS = {NOOP: "unchanged", ORPHAN: "orphans left alone"}


ACTION_LABELS = {**{action: action for action in WRITES}, NOOP: "unchanged", ORPHAN: "orphans"}


def pretty_json(value: object) -> str:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)


def duration(seconds: float | None) -> str:
    """How long, as a person says it: "2 h 5 min", "3 min 20 s", "12 s"."""
    if seconds is None:
        return "—"
    total = max(0, round(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes} min"
    if minutes:
        return f"{minutes} min {secs} s"
    return f"{secs} s"


def writes_summary(counts: dict[str, int]) -> str:
    """The writes a plan counted, zeros left out: "create 13 · update 11"."""
    return " · ".join(f"{a} {counts[a]}" for a in WRITES if counts.get(a)) or "none"


def unsent_summary(counts: dict[str, int]) -> str:
    """What a plan counted and does not send: "unchanged 259 · orphans left alone 14"."""
    return " · ".join(f"{label} {counts[a]}" for a, label in UNSENT_LABELS.items() if counts.get(a))


def time_left(seconds: float) -> str:
    return "a few seconds" if seconds < 10 else f"about {duration(seconds)}"


FILTERS = {
    "pretty_json": pretty_json,
    "duration": duration,
    "writes_summary": writes_summary,
    "unsent_summary": unsent_summary,
    "time_left": time_left,
}
