"""What the metrics say, read from the database at scrape time: never from a counter kept in
this process, so every process and instance answers the same, and never from OneLogin or
Workato (a scrape makes no remote call).

Each read is one cheap query on an index, so a scrape stays fast with 100,000 people and a
million audit entries (README, "Metrics"). Nothing here writes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select

from dashboard.audit.chain import HEAD
from dashboard.audit.models import AuditChain, AuditCheckpoint
from dashboard.connections import service as connections
from dashboard.connections.models import SCIM
from dashboard.extensions import db
from dashboard.schedule import service as schedule
from dashboard.schedule.models import SUCCESSFUL, ScheduledReconcile
from dashboard.sync.models import FINAL, RETRY, SUCCEEDED, SYNC, Run
from dashboard.users import service as users

# The runs the "last run" metrics follow: an applied plan (an admin's or the schedule's) and
# a retry of its failures, the runs that bring everyone into line. A one-user provision and
# an admin's suspension of chosen orphans touch a few people and say nothing of the rest.
WHOLE_RUNS = (SYNC, RETRY)


@dataclass(frozen=True)
class LastRun:
    finished_at: datetime
    status: str

    @property
    def succeeded(self) -> bool:
        return self.status == SUCCEEDED


@dataclass(frozen=True)
class Health:
    """One connection as last checked. `ok` is None when it was never checked since its
    secret was saved, or is not configured."""

    configured: bool  # saved with its secret
    ok: bool | None
    checked_at: datetime | None


@dataclass(frozen=True)
class Readings:
    people: dict[str, int]  # every state, zeros included
    needing_attention: int
    people_read_at: datetime | None
    last_run: LastRun | None
    last_reconcile_success_at: datetime | None
    reconcile_every: int  # DASHBOARD_RECONCILE_EVERY, seconds; 0 off
    reconcile_next_at: datetime | None  # None when off
    connections: dict[str, Health]  # every kind
    scim_writes_enabled: bool
    run_active: bool
    audit_entries: int


def read() -> Readings:
    """Everything a scrape reports, as the database holds it now."""
    scheduled = schedule.status()  # what the Sync page says of the schedule
    return Readings(
        people=users.state_counts(),
        needing_attention=users.needing_attention(),
        people_read_at=users.read_at(),
        last_run=last_run(),
        last_reconcile_success_at=last_reconcile_success_at(),
        reconcile_every=scheduled.every,
        reconcile_next_at=scheduled.next_at,
        connections=health(),
        scim_writes_enabled=scim_writes_enabled(),
        run_active=run_active(),
        audit_entries=audit_entries(),
    )


def last_run() -> LastRun | None:
    """The newest finished sync or retry run (WHOLE_RUNS), whatever its outcome: succeeded,
    failed, stopped, cancelled or interrupted. A run resumed after it finished is active
    again, so its old finished_at does not count."""
    row = db.session.execute(
        select(Run.finished_at, Run.status)
        .where(Run.kind.in_(WHOLE_RUNS), Run.status.in_(FINAL), Run.finished_at.is_not(None))
        .order_by(Run.finished_at.desc(), Run.id.desc())
        .limit(1)
    ).first()
    return LastRun(row.finished_at, row.status) if row is not None else None


def last_reconcile_success_at() -> datetime | None:
    """When a reconcile last completed: a scheduled one that made its plan (outcome in
    SUCCESSFUL: in sync, applied or planned) or a sync run that succeeded, whichever is
    later."""
    # Newest first on the unique due_at (one row an interval, 2,880 a day at 30s): stops at
    # the first that made its plan, usually the newest, where max(finished_at) reads them all.
    scheduled = db.session.scalar(
        select(ScheduledReconcile.finished_at)
        .where(
            ScheduledReconcile.outcome.in_(SUCCESSFUL),
            ScheduledReconcile.finished_at.is_not(None),
        )
        .order_by(ScheduledReconcile.due_at.desc())
        .limit(1)
    )
    synced = db.session.scalar(
        select(func.max(Run.finished_at)).where(Run.kind == SYNC, Run.status == SUCCEEDED)
    )
    return max((t for t in (scheduled, synced) if t is not None), default=None)


def health() -> dict[str, Health]:
    """Each connection as its last test, setup check, plan or run found it
    (connections.note_health). Only a configured connection's answer counts: clearing or
    replacing a secret forgets it anyway."""
    found = {}
    for kind, connection in connections.all_by_kind().items():
        if connection is None or not connection.has_secret:
            found[kind] = Health(configured=False, ok=None, checked_at=None)
        else:
            found[kind] = Health(True, connection.last_test_ok, connection.last_test_at)
    return found


def scim_writes_enabled() -> bool:
    """Whether a run could write to Workato: a SCIM connection saved with its token and not
    disabled by an admin (Disable SCIM)."""
    scim = connections.with_secret(SCIM)
    return scim is not None and scim.enabled


def run_active() -> bool:
    """A run holds the one slot (queued or running): probed on its unique column."""
    return db.session.scalar(select(Run.id).where(Run.active == 1)) is not None


def audit_entries() -> int:
    """Entries in the audit trail, from the chain rather than by counting rows: the head's
    seq is the number of entries ever written (they are numbered 1, 2, ... with no gap) and
    a prune removes a prefix, up to its checkpoint's up_to_seq. Two one-row reads, where
    count(*) reads the whole table (see README, "Metrics", for the times at a million). A
    row removed behind the application's back is not seen here: `flask audit verify` finds
    that."""
    written = db.session.scalar(select(AuditChain.seq).where(AuditChain.id == HEAD)) or 0
    pruned = db.session.scalar(select(func.max(AuditCheckpoint.up_to_seq))) or 0
    return max(written - pruned, 0)
