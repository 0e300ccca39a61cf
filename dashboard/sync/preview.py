"""The preview a plan records: its decisions written as the plan makes them, a slice at a
time (each person's row, and the writes as the run's items), and read back when asked.

A plan of 100,000 people never holds its decisions: each slice is written and let go, the
no-ops once counted. What make_plan returns, a RecordedPlan, carries the counts and reads
the other decisions (the writes and the orphans) back from the database when asked, as the
command line's preview and `flask sync plan --json` do; the Sync page reads the run's items
itself.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from datetime import datetime
from itertools import islice

from sqlalchemy import and_, insert, select

from dashboard.extensions import db
from dashboard.person import Person
from dashboard.sync import people
from dashboard.sync.models import Item, Run
from dashboard.sync.planner import ACTIONS, NOOP, WRITES, Decision

SLICE = 1000  # decisions written together


def record(run: Run, decisions: Iterable[Decision], seen_at: datetime) -> dict[str, int]:
    """Write every decision as it comes, a slice at a time: the people table, and the
    writes as `run`'s items. Sets and returns the run's counts, and its total. The caller
    commits (once: the preview appears whole or not at all)."""
    recorder = people.PlanRecorder(seen_at)
    counts: Counter[str] = Counter()
    total = 0
    decisions = iter(decisions)
    while chunk := list(islice(decisions, SLICE)):
        recorder.add(chunk)
        writes = [Item.row(run.id, d) for d in chunk if d.action in WRITES]
        if writes:
            db.session.execute(insert(Item.__table__), writes)
        counts.update(d.action for d in chunk)
        total += len(writes)
    recorder.finish()
    run.counts = {a: counts.get(a, 0) for a in ACTIONS}
    run.total = total
    return run.counts


class RecordedPlan:
    """A recorded plan: its counts, and its decisions other than the no-ops (which are
    counted, not kept) read back when asked, sorted by key. They are read as the database
    holds them then: ask before the run starts."""

    def __init__(self, run_id: int, counts: dict[str, int]) -> None:
        self.run_id, self.counts = run_id, counts
        self._engine = db.engine  # read with it later, also outside the app context

    def count(self, action: str) -> int:
        return self.counts[action]

    @property
    def decisions(self) -> list[Decision]:
        return sorted(self._read(), key=lambda d: d.key)

    @property
    def writes(self) -> list[Decision]:
        return [d for d in self.decisions if d.action in WRITES]

    def _read(self) -> Iterator[Decision]:
        person, item = Person.__table__, Item.__table__
        query = (
            select(person, item.c.desired, item.c.request)
            .select_from(
                person.outerjoin(
                    item, and_(item.c.key == person.c.key, item.c.run_id == self.run_id)
                )
            )
            .where(person.c.action != NOOP)
        )
        with self._engine.connect() as connection:
            for row in connection.execute(query):
                yield Decision(
                    key=row.key,
                    user_name=row.user_name,
                    action=row.action,
                    state=row.state,
                    reason=row.reason,
                    onelogin_id=row.onelogin_id,
                    onelogin_status=row.onelogin_status,
                    has_app=row.has_app,
                    scim_id=row.scim_id,
                    workato_active=row.workato_active,
                    email=row.email,
                    display_name=row.display_name,
                    roles=row.roles or {},
                    changes=row.changes or {},
                    desired=row.desired,
                    request=row.request,
                    danger=row.danger,
                    orphan_kind=row.orphan_kind,
                    error=row.last_error,
                )
