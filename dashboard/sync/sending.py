"""Handing a run's items out and taking their outcomes back, fenced: an item is marked
`running` only while its person's claim is taken (one writer per person) and while the run is
still this process's, and an outcome is recorded only while it still is. A process that lost
its run (paused past the lease, then taken over) therefore changes nothing: its statements
match no row and it stops (LostRun).

A one-user write that takes a person's claim supersedes the unfinished items of other runs for
that person in the same transaction: decided afresh, it must not be undone by an older plan.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, select, update

from dashboard import audit
from dashboard.extensions import db
from dashboard.sync import claims, people, runs
from dashboard.sync.executor import SUCCEEDED, Outcome, Work
from dashboard.sync.models import (
    ITEM_FAILED,
    ITEM_PENDING,
    ITEM_RUNNING,
    ITEM_SUCCEEDED,
    ONE_USER,
    Item,
    Run,
)
from dashboard.timeutil import utcnow

items = Item.__table__
ACTOR = "sync"


class LostRun(Exception):
    """Another process took this run over (our lease passed while we were away): stop, and
    write nothing more."""


@dataclass(frozen=True)
class Pending:
    """An item as read for sending: plain values, so no database session is involved."""

    id: int
    key: str
    user_name: str
    action: str
    attempts: int
    unknown: bool  # still `running` from an earlier process: its outcome is unknown
    request: dict[str, Any] | None
    desired: dict[str, Any] | None
    scim_id: str | None

    def work(self, recheck_all: bool) -> Work:
        recheck = recheck_all or self.unknown
        return Work(
            self.user_name, self.action, self.request or {}, self.desired, recheck, self.scim_id
        )


def unfinished(run_id: int, after: int, limit: int) -> list[Pending]:
    rows = db.session.execute(
        select(
            items.c.id,
            items.c.key,
            items.c.user_name,
            items.c.action,
            items.c.attempts,
            items.c.status,
            items.c.request,
            items.c.desired,
            items.c.scim_id,
        )
        .where(
            items.c.run_id == run_id,
            items.c.status.in_((ITEM_PENDING, ITEM_RUNNING)),
            items.c.id > after,
        )
        .order_by(items.c.id)
        .limit(limit)
    )
    return [
        Pending(
            r.id,
            r.key,
            r.user_name,
            r.action,
            r.attempts,
            r.status == ITEM_RUNNING,
            r.request,
            r.desired,
            r.scim_id,
        )
        for r in rows
    ]


def mark_running(
    run: Run, owner: str, batch: list[Pending], lease_seconds: float
) -> tuple[list[Pending], list[Pending]]:
    """(items marked `running`, to send now; items whose person another writer holds, to try
    again later). Items superseded meanwhile are dropped. The caller commits."""
    if not runs.still_owned(run.id, owner):
        raise LostRun(run.id)
    taken = claims.take(run.id, [(item.key, item.id) for item in batch], lease_seconds)
    wanted = [item for item in batch if item.key in taken]
    marked: set[int] = set()
    if wanted:
        rows = db.session.execute(
            update(items)
            .where(
                items.c.id.in_([item.id for item in wanted]),
                items.c.status.in_(runs.UNFINISHED),
                runs.owned(run.id, owner),
            )
            .values(status=ITEM_RUNNING)
            .returning(items.c.id)
        )
        marked = {row[0] for row in rows}
        if not marked and not runs.still_owned(run.id, owner):
            raise LostRun(run.id)
        claims.release(item.id for item in wanted if item.id not in marked)
    if run.kind == ONE_USER:
        who = run.started_by or ACTOR
        note = f"Superseded by run {run.id}: {who} acted on this person directly."
        for item in wanted:
            if item.id in marked:
                runs.supersede(item.key, run.id, note)
    sending = [item for item in batch if item.id in marked]
    waiting = [item for item in batch if item.key not in taken]
    return sending, waiting


def record_all(run: Run, owner: str, outcomes: list[tuple[Pending, Outcome]]) -> None:
    """The outcomes of a round: each item's, the people's states and the audit entries,
    while the run is still ours (else LostRun: checked once, holding the run's row until the
    commit), and the people's claims given back. A few statements for the whole round, not a
    few per write: at hundreds of writes a second this is most of the dashboard's own CPU.
    The caller commits."""
    if not outcomes:
        return
    if not runs.still_owned(run.id, owner):
        raise LostRun(run.id)
    rows, entries = [], []
    for item, outcome in outcomes:
        row, entry = _outcome(run, item, outcome)
        rows.append(row)
        entries.append(entry)
    changed = db.session.execute(
        update(items)
        .where(items.c.id == bindparam("item_id"), runs.owned(run.id, owner))
        .values({column: bindparam(column) for column in OUTCOME_COLUMNS}),
        rows,
    )
    if changed.rowcount != len(rows) and db.session.get_bind().dialect.supports_sane_multi_rowcount:
        raise LostRun(run.id)
    people.record_outcomes(
        [
            (item.key, item.action, row["status"] == ITEM_SUCCEEDED, outcome.user, outcome.error)
            for (item, outcome), row in zip(outcomes, rows, strict=True)
            if row["status"] in (ITEM_SUCCEEDED, ITEM_FAILED)
        ]
    )
    audit.record_all(entries)
    claims.release(item.id for item, _ in outcomes)


def unsend(run: Run, owner: str, handed_out: list[Pending]) -> None:
    """Items marked `running` but never sent (the run stopped first): pending again, their
    claims given back, nothing audited (nothing happened). The caller commits."""
    if not handed_out:
        return
    ids = [item.id for item in handed_out]
    db.session.execute(
        update(items)
        .where(items.c.id.in_(ids), items.c.status == ITEM_RUNNING, runs.owned(run.id, owner))
        .values(status=ITEM_PENDING)
    )
    claims.release(ids)


OUTCOME_COLUMNS = (
    "status",
    "attempts",
    "http_status",
    "error",
    "duration_ms",
    "request",
    "response",
    "note",
    "finished_at",
    "scim_id",
)


def _outcome(run: Run, item: Pending, outcome: Outcome) -> tuple[dict, dict]:
    """The item's row and its audit entry, for one outcome."""
    ok = outcome.status == SUCCEEDED
    attempts = item.attempts + outcome.attempts
    # A write refused for the whole run (401, SCIM disabled, a stop) was not applied: it
    # stays pending, so resuming sends it; one stopped after a try that may have been
    # applied stays `running` (unknown), so resuming re-checks it first.
    if ok:
        status = ITEM_SUCCEEDED
    elif outcome.stop:
        status = ITEM_RUNNING if outcome.maybe_applied else ITEM_PENDING
    else:
        status = ITEM_FAILED
    row = {
        "item_id": item.id,
        "status": status,
        "attempts": attempts,
        "http_status": outcome.http_status,
        "error": outcome.error,
        "duration_ms": outcome.duration_ms,
        "request": outcome.request,
        "response": outcome.response,
        "note": outcome.note,
        "finished_at": utcnow(),
        "scim_id": outcome.user.id if outcome.user is not None else item.scim_id,
    }
    entry = {
        "action": f"sync.{item.action}",
        "actor": ACTOR,
        "outcome": "success" if ok else "failed",
        "target_user": item.user_name,
        "source": "sync",
        "details": {
            "run": run.id,
            "item": item.id,
            "http_status": outcome.http_status,
            "attempts": attempts,
            **({"error": outcome.error} if outcome.error else {}),
            **({"note": outcome.note} if outcome.note else {}),
        },
    }
    return row, entry
