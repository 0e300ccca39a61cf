"""A run and a plan as people and scripts read them: progress (done, rates, time left), the
JSON documents of DESIGN.md §6, a preview's items and orphans a page at a time, a request
shown with its token redacted. Reads only."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from flask import current_app
from sqlalchemy import select

from dashboard.extensions import db
from dashboard.person import Person
from dashboard.sync import learned, planner, runs
from dashboard.sync.models import (
    ITEM_FAILED,
    ITEM_SUCCEEDED,
    ITEM_SUPERSEDED,
    Item,
    Run,
)
from dashboard.sync.planner import ACTIONS, ORPHANED, WRITES, Plan
from dashboard.timeutil import utcnow

DONE = (ITEM_SUCCEEDED, ITEM_FAILED, ITEM_SUPERSEDED)  # item statuses that need nothing more


@dataclass(frozen=True)
class Progress:
    run: Run
    total: int
    done: int
    succeeded: int
    failed: int
    superseded: int  # left unsent: a one-user write for the person took their place
    pending: int
    by_action: dict[str, tuple[int, int]]  # action -> (done, total)
    rate: float | None  # items a second
    seconds_left: float | None

    @property
    def percent(self) -> int:
        return 100 if not self.total else math.floor(100 * self.done / self.total)


def progress(run: Run) -> Progress:
    counts = runs.item_counts(run.id)
    by_action: dict[str, tuple[int, int]] = {}
    for action in WRITES:
        total = sum(n for (a, _), n in counts.items() if a == action)
        done = sum(n for (a, s), n in counts.items() if a == action and s in DONE)
        if total:
            by_action[action] = (done, total)
    succeeded = sum(n for (_, s), n in counts.items() if s == ITEM_SUCCEEDED)
    failed = sum(n for (_, s), n in counts.items() if s == ITEM_FAILED)
    superseded = sum(n for (_, s), n in counts.items() if s == ITEM_SUPERSEDED)
    total = sum(counts.values())
    done = succeeded + failed + superseded
    rate = seconds_left = None
    if run.started_at and run.is_active:
        elapsed = (utcnow() - run.started_at).total_seconds()
        recent = runs.finished_items(run.id, run.started_at)
        if elapsed > 0 and recent:
            rate = recent / elapsed
            seconds_left = (total - done) / rate
    return Progress(
        run, total, done, succeeded, failed, superseded, total - done, by_action, rate, seconds_left
    )


def run_json(run: Run, failed_limit: int = 1000) -> dict[str, Any]:
    """DESIGN.md §6: {"id", "status", "counts", "failed": [...]}, and a little more."""
    state = progress(run)
    failed = db.session.scalars(
        select(Item)
        .where(Item.run_id == run.id, Item.status == ITEM_FAILED)
        .order_by(Item.id)
        .limit(failed_limit)
    )
    return {
        "id": run.id,
        "kind": run.kind,
        "status": run.status,
        "counts": {a: run.counts.get(a, 0) for a in ACTIONS},
        "total": state.total,
        "succeeded": state.succeeded,
        "pending": state.pending,
        "failed": [
            {
                "user_name": i.user_name,
                "action": i.action,
                "http_status": i.http_status,
                "error": i.error,
            }
            for i in failed
        ],
        "message": run.message,
        "note": run.note,  # what Apply re-read in OneLogin since the preview
        "rate": rate_json(run),
        "started_at": run.started_at.isoformat() if run.started_at else None,
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
    }


def rate_json(run: Run | None = None) -> dict[str, Any]:
    """The SCIM request rate: as set, as this run sent at last (its heartbeat's), and as
    learned for the next run to start from (pace.py, rate.py)."""
    setting = current_app.extensions["dashboard.settings"].DASHBOARD_SYNC_RATE
    kept = learned.learned()
    return {
        "setting": setting,
        "run": run.rate if run is not None else None,
        "learned": kept.rate if kept is not None else None,
        "learned_at": kept.updated_at.isoformat() if kept is not None else None,
    }


def plan_json(plan: Plan) -> dict[str, Any]:
    """DESIGN.md §6: all six counts; the items are every decision but the no-ops."""
    return {
        "counts": plan.counts,
        "items": [d.as_json() for d in plan.decisions if d.action != planner.NOOP],
    }


def redacted_request(item: Item) -> str:
    """The request as sent, for display: the token is never stored, so only the header
    placeholder is added."""
    if not item.request:
        return ""
    body = json.dumps(item.request.get("body"), indent=2, sort_keys=True)
    return (
        f"{item.request.get('method')} {item.request.get('path')}\n"
        "Authorization: Bearer [redacted]\nContent-Type: application/scim+json\n\n" + body
    )


def preview_items(run: Run, limit: int, offset: int = 0) -> list[Item]:
    query = select(Item).where(Item.run_id == run.id).order_by(Item.action, Item.key)
    return list(db.session.scalars(query.limit(limit).offset(offset)))


def orphans(limit: int = 200) -> list[Person]:
    query = select(Person).where(Person.state == ORPHANED).order_by(Person.orphan_kind, Person.key)
    return list(db.session.scalars(query.limit(limit)))
