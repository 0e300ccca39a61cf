from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from dashboard.extensions import db
from dashboard.timeutil import UTCDateTime, utcnow


class AuditEntry(db.Model):
    """One thing that happened. Written only through dashboard.audit.record()."""

    __tablename__ = "audit"

    id: Mapped[int] = mapped_column(primary_key=True)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Who did it: an account's email or NameID, or "anonymous" before sign-in.
    actor: Mapped[str] = mapped_column(String(320))
    # dashboard, onelogin, workato or sync.
    source: Mapped[str] = mapped_column(String(16), default="dashboard")
    # Dotted verb, e.g. auth.sign_in, auth.refused, auth.sign_out.
    action: Mapped[str] = mapped_column(String(64))
    # success, refused or failed.
    outcome: Mapped[str] = mapped_column(String(16))
    target_user: Mapped[str | None] = mapped_column(String(320))
    source_ip: Mapped[str | None] = mapped_column(String(64))
    details: Mapped[dict] = mapped_column(JSON, default=dict)

    __table_args__ = (
        Index("ix_audit_occurred_at_id", "occurred_at", "id"),
        Index("ix_audit_target_user_id", "target_user", "id"),
    )
