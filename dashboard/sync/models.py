"""Runs and their items: every write a sync sends, committed as it progresses, so a run
survives the request that started it and the process that ran it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from dashboard.extensions import db
from dashboard.timeutil import UTCDateTime, utcnow

# A run's status. `planned` is a preview nobody applied yet; `queued` and `running` are
# active (at most one run at a time: see `active`); the rest are final, except that an
# `interrupted` run can be resumed.
PLANNED, QUEUED, RUNNING = "planned", "queued", "running"
SUCCEEDED, FAILED, STOPPED, CANCELLED, INTERRUPTED = (
    "succeeded",
    "failed",
    "stopped",
    "cancelled",
    "interrupted",
)
ACTIVE = (QUEUED, RUNNING)
FINAL = (SUCCEEDED, FAILED, STOPPED, CANCELLED, INTERRUPTED)

# What a run does: a full sync, retrying another run's failures, suspending the orphans an
# admin chose, or provisioning one user on demand.
SYNC, RETRY, SUSPEND_CHOSEN, ONE_USER = "sync", "retry", "suspend", "user"

# An item's status; `running` after a crash means "outcome unknown": re-checked first.
# `superseded`: a later one-user write for the same person took its place (never sent).
ITEM_PENDING, ITEM_RUNNING, ITEM_SUCCEEDED, ITEM_FAILED, ITEM_SUPERSEDED = (
    "pending",
    "running",
    "succeeded",
    "failed",
    "superseded",
)


class Run(db.Model):
    __tablename__ = "sync_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), default=SYNC)
    status: Mapped[str] = mapped_column(String(16), default=PLANNED)
    # 1 while queued or running, NULL otherwise: the unique constraint lets one run at a
    # time be active, across processes and machines, enforced by the database itself.
    active: Mapped[int | None] = mapped_column(unique=True)
    created_by: Mapped[str] = mapped_column(String(320))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_by: Mapped[str | None] = mapped_column(String(320))
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The process working on it, and when it last said so; a stale heartbeat means the
    # process died and the run is interrupted.
    owner: Mapped[str | None] = mapped_column(String(128))
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    counts: Mapped[dict] = mapped_column(JSON, default=dict)  # the plan's six actions
    total: Mapped[int] = mapped_column(default=0)  # items (writes) in the run
    message: Mapped[str | None] = mapped_column(Text)  # why it stopped, or the error
    retry_of: Mapped[int | None] = mapped_column(ForeignKey("sync_runs.id"))
    # What Apply found changed in OneLogin since the preview, and re-decided (run page).
    note: Mapped[str | None] = mapped_column(Text)
    # The SCIM requests a second it sends at (adaptive: see pace.py), with its heartbeat.
    rate: Mapped[float | None]
    # How many times another process took it over after its own stopped beating: at
    # takeover.MAX_TAKEOVERS it stops instead (a run that kills its worker must not loop).
    takeovers: Mapped[int] = mapped_column(default=0)

    __table_args__ = (
        # The latest finished run, by when it finished (a retry resumed after a newer run
        # ends after it): asked by every alerts watch, every few seconds (migration 0016).
        Index("ix_sync_runs_finished_at", "finished_at", "id"),
    )

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE


class Item(db.Model):
    __tablename__ = "sync_items"

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("sync_runs.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(320))  # the person's match key
    user_name: Mapped[str] = mapped_column(String(320))
    onelogin_id: Mapped[int | None]
    scim_id: Mapped[str | None] = mapped_column(String(256))
    action: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default=ITEM_PENDING)
    attempts: Mapped[int] = mapped_column(default=0)
    http_status: Mapped[int | None]
    error: Mapped[str | None] = mapped_column(Text)
    duration_ms: Mapped[int | None]
    changes: Mapped[dict] = mapped_column(JSON, default=dict)
    desired: Mapped[dict | None] = mapped_column(JSON)  # the rendered resource
    request: Mapped[dict | None] = mapped_column(JSON)  # method, path, body; no secret
    response: Mapped[dict | None] = mapped_column(JSON)  # status and body, redacted
    note: Mapped[str | None] = mapped_column(Text)  # e.g. "already done: found on re-check"
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    superseded_by: Mapped[int | None]  # the one-user run that took this item's place

    @staticmethod
    def row(run_id: int, decision) -> dict:
        """The item a planner.Decision becomes: the one place a write is put in a run (bulk
        inserts take these rows as they are)."""
        return {
            "run_id": run_id,
            "key": decision.key,
            "user_name": decision.user_name,
            "onelogin_id": decision.onelogin_id,
            "scim_id": decision.scim_id,
            "action": decision.action,
            "status": ITEM_PENDING,
            "attempts": 0,
            "changes": decision.changes,
            "desired": decision.desired,
            "request": decision.request,
        }

    __table_args__ = (
        Index("ix_sync_items_run_id_status", "run_id", "status"),
        # A run's unfinished items, a batch at a time in id order (sending.unfinished).
        Index("ix_sync_items_run_id_id", "run_id", "id"),
        # The progress counts (polled every second) and the preview's order, per run.
        Index("ix_sync_items_run_id_action_status", "run_id", "action", "status"),
        Index("ix_sync_items_run_id_action_key", "run_id", "action", "key"),
        Index("ix_sync_items_key", "key"),
    )


class PersonClaim(db.Model):
    """A write for this person is in flight: one writer per person, whoever sends it. Taken
    with the item's `running` mark, released with its outcome or with its run's end."""

    __tablename__ = "person_claims"

    key: Mapped[str] = mapped_column(String(320), primary_key=True)
    run_id: Mapped[int] = mapped_column(index=True)
    item_id: Mapped[int]
    claimed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
