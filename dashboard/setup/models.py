from __future__ import annotations

from datetime import datetime

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from dashboard.extensions import db
from dashboard.timeutil import UTCDateTime, utcnow


class ScimTemplate(db.Model):
    """The SCIM JSON template copied from OneLogin; the newest row is the one in use."""

    __tablename__ = "scim_templates"

    id: Mapped[int] = mapped_column(primary_key=True)
    body: Mapped[str] = mapped_column(Text)
    saved_by: Mapped[str] = mapped_column(String(320))
    saved_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Confirmation(db.Model):
    """An admin's word for a step no API can show. Withdrawing it deletes the row (the
    audit trail keeps both)."""

    __tablename__ = "setup_confirmations"

    item_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    confirmed_by: Mapped[str] = mapped_column(String(320))
    confirmed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class CheckResult(db.Model):
    """The last outcome of each checklist item, so pages never call the remote APIs."""

    __tablename__ = "setup_check_results"

    item_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    state: Mapped[str] = mapped_column(String(32))
    message: Mapped[str] = mapped_column(Text)
    checked_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
