"""One writer per person: a write for a person is sent only while its item holds the
person's claim, a row keyed by the person in `person_claims`. The primary key settles races
between processes and machines; a claim whose run is no longer running (its process died, or
it ended) is void and taken over.

Taken in the same transaction as the item's `running` mark (runner.mark_running), released
with its outcome (runner.record) or with its run's end.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta

from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite

from dashboard.extensions import db
from dashboard.sync.models import RUNNING, PersonClaim, Run
from dashboard.timeutil import utcnow

claims = PersonClaim.__table__


def take(run_id: int, wanted: Iterable[tuple[str, int]], lease_seconds: float) -> set[str]:
    """Claim each (person key, item id) for the run; the keys obtained (others hold the
    rest). A claim whose run is not running, or has not beaten for a lease (its process
    died), is void and taken over. The caller commits."""
    wanted = list(wanted)
    if not wanted:
        return set()
    keys = [key for key, _ in wanted]
    alive = utcnow() - timedelta(seconds=lease_seconds)
    running = select(Run.id).where(Run.status == RUNNING, Run.heartbeat_at >= alive)
    void = claims.c.key.in_(keys) & claims.c.run_id.not_in(running)
    db.session.execute(delete(claims).where(void))
    now = utcnow()
    rows = [
        {"key": key, "run_id": run_id, "item_id": item, "claimed_at": now} for key, item in wanted
    ]
    dialect = postgresql if db.session.get_bind().dialect.name == "postgresql" else sqlite
    inserted = db.session.execute(
        dialect.insert(claims).values(rows).on_conflict_do_nothing().returning(claims.c.key)
    )
    return {row[0] for row in inserted}


def release(item_ids: Iterable[int]) -> None:
    ids = list(item_ids)
    if ids:
        db.session.execute(delete(claims).where(claims.c.item_id.in_(ids)))


def release_runs(run_ids: Iterable[int]) -> None:
    ids = list(run_ids)
    if ids:
        db.session.execute(delete(claims).where(claims.c.run_id.in_(ids)))


def holder(key: str) -> int | None:
    """The run whose write for this person is in flight, if any."""
    return db.session.scalar(select(claims.c.run_id).where(claims.c.key == key))
