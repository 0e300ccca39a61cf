"""What the alerts remember, shared by every process and machine through the database:

- `AlertState`, one row per condition: whether it was last announced open, and what it said.
  A transition is claimed by a conditional write on `version`, so whichever watcher makes it
  first is the only one to queue a message for it.
- `AlertMessage`, the outbox: each transition's message, kept until every configured channel
  took it (retried with backoff) or it is folded into a newer one (the rate limit).
- `AlertClaim`, a named lease: who delivers now, and when the audit chain may next be
  verified (with the verdict kept for the watchers in between).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from dashboard.extensions import db
from dashboard.timeutil import UTCDateTime

FIRING, RESOLVED = "firing", "resolved"

# A message's delivery state. `pending` until every channel took it; `sent` once they did;
# `held` when a newer message for the same condition went out in its place (the rate limit
# says so in that message); `failed` when it could not be delivered for GIVE_UP_AFTER.
PENDING, SENT, HELD, FAILED = "pending", "sent", "held", "failed"


class AlertState(db.Model):
    __tablename__ = "alert_states"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)  # "run", "connection:scim"
    is_open: Mapped[bool] = mapped_column(Boolean)
    # Bumped by every transition: `UPDATE ... WHERE version = <the one read>` is the claim.
    version: Mapped[int] = mapped_column(default=1)
    opened_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    title: Mapped[str] = mapped_column(String(200))
    text: Mapped[str] = mapped_column(Text)
    link: Mapped[str] = mapped_column(String(512))  # a path in the dashboard
    facts: Mapped[dict] = mapped_column(JSON, default=dict)
    # The possible leavers' keys as last announced: a name not in it is news.
    names: Mapped[list] = mapped_column(JSON, default=list)


class AlertMessage(db.Model):
    __tablename__ = "alert_messages"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))  # firing or resolved
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # What it says: title, text, facts, link (a path), and what the rate limit held back.
    payload: Mapped[dict] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(16), default=PENDING)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # The channels that took it already ({"webhook": true}): a retry skips them.
    delivered: Mapped[dict] = mapped_column(JSON, default=dict)
    last_error: Mapped[str | None] = mapped_column(Text)  # names no secret
    # When the hourly cap first kept it back (said in the message when it goes out).
    capped_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        # What is due (every watch looks, so it must stay an index lookup).
        Index("ix_alert_messages_state_next_attempt_at", "state", "next_attempt_at"),
        # The hourly cap counts the last hour's sends; the gap finds a condition's last one.
        Index("ix_alert_messages_sent_at", "sent_at"),
        Index("ix_alert_messages_key_sent_at", "key", "sent_at"),
    )


class AlertClaim(db.Model):
    """A lease by name: `deliver` (one deliverer at a time, so the rate limit counts right)
    and `audit_chain` (verified at most once an hour, the verdict in `result`)."""

    __tablename__ = "alert_claims"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    holder: Mapped[str] = mapped_column(String(128))
    until: Mapped[datetime] = mapped_column(UTCDateTime)
    result: Mapped[dict | None] = mapped_column(JSON)
