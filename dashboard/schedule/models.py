"""One row per scheduled reconcile: the interval it belongs to, who took it, what it did."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from dashboard.extensions import db
from dashboard.timeutil import UTCDateTime

# What a scheduled reconcile ended in. `running` until it does; `in_sync`: the plan found
# nothing to write; `applied`: its run was queued (the run's own status says how it went);
# `planned`: drift found and left for an admin (DASHBOARD_RECONCILE_APPLY=off); `guard`: the
# suspension guard tripped, nothing applied; `refused`: the plan or its apply was refused
# (OneLogin's budget, SCIM disabled, a stale preview); `skipped`: another run was active;
# `failed`: a connection or the template failed.
RUNNING, IN_SYNC, APPLIED, PLANNED, GUARD, REFUSED, SKIPPED, FAILED = (
    "running",
    "in_sync",
    "applied",
    "planned",
    "guard",
    "refused",
    "skipped",
    "failed",
)
SUCCESSFUL = (IN_SYNC, APPLIED, PLANNED)  # the plan was made


class ScheduledReconcile(db.Model):
    __tablename__ = "scheduled_reconciles"

    id: Mapped[int] = mapped_column(primary_key=True)
    # The start of the interval this reconcile belongs to (a multiple of `every` since the
    # epoch). Unique: the insert is the claim, so one process in all plans per interval.
    due_at: Mapped[datetime] = mapped_column(UTCDateTime, unique=True)
    every: Mapped[int]  # DASHBOARD_RECONCILE_EVERY, in seconds, when it was claimed
    apply: Mapped[str] = mapped_column(String(8))  # DASHBOARD_RECONCILE_APPLY then
    claimed_by: Mapped[str] = mapped_column(String(128))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    outcome: Mapped[str] = mapped_column(String(16), default=RUNNING)
    run_id: Mapped[int | None]  # the plan's run (a preview, or the run it became)
    counts: Mapped[dict] = mapped_column(JSON, default=dict)
    message: Mapped[str | None] = mapped_column(Text)
