"""Delivering the outbox (alert_messages): one watcher at a time (the `deliver` lease), so the
rate limit counts right and each message goes out once; each channel tried once a message,
a channel that failed retried at a later watch with backoff, every attempt audited.

The rate limit, so that a flapping condition does not flood anyone:
- MIN_GAP_SECONDS between two messages about one condition. What changed meanwhile is
  folded into the next message (the newest state is sent, the changes before it are named)
  and listed in its audit entry.
- MAX_PER_HOUR messages an hour for the whole installation. Beyond it, messages wait (at
  most one per condition, folded as above); the one that goes out says since when it waited.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from itertools import groupby

from flask import current_app
from sqlalchemy import func, select

from dashboard import audit
from dashboard.alerts import claims, messages
from dashboard.alerts.channels import TITLES, Channels, Undelivered
from dashboard.alerts.models import FAILED, FIRING, HELD, PENDING, SENT, AlertMessage
from dashboard.extensions import db

log = logging.getLogger(__name__)
CLAIM = "deliver"
ACTOR = "alerts"
ACTIONS = {FIRING: "alert.sent", "resolved": "alert.resolved"}

# Five minutes: a condition flapping every watch (10 s) says at most 12 things an hour, and a
# real recovery is still told within minutes of the alert.
MIN_GAP_SECONDS = 300
# Thirty: every condition (ten of them) opening and clearing within one bad hour still gets
# through; past that it is a storm, and more messages would not help anyone act.
MAX_PER_HOUR = 30
# Retries of a channel that failed: 30 s, doubled each time, at most an hour apart, for a
# day; after that the message is given up (audited) rather than sent a day late.
RETRY_FIRST_SECONDS = 30
RETRY_MOST_SECONDS = 3600
GIVE_UP_SECONDS = 24 * 3600
# The deliverer's lease, renewed before each message: longer than one message can take
# (two channels, each at most channels.TIMEOUT_SECONDS per step).
LEASE_SECONDS = 120


def deliver_due(channels: Channels, holder: str, now: datetime) -> None:
    """Send what is due, when this watcher gets the lease; never raises for a channel."""
    if not channels.names or not _anything_due(now):
        return
    if not claims.take(CLAIM, holder, now, LEASE_SECONDS):
        return  # another watcher is delivering
    try:
        _deliver(channels, holder, now)
    finally:
        db.session.rollback()
        claims.release(CLAIM, holder, now)


def _anything_due(now: datetime) -> bool:
    table = AlertMessage.__table__
    due = select(table.c.id).where(table.c.state == PENDING, table.c.next_attempt_at <= now)
    found = db.session.execute(due.limit(1)).first() is not None
    db.session.rollback()
    return found


def _deliver(channels: Channels, holder: str, now: datetime) -> None:
    pending = db.session.scalars(
        select(AlertMessage)
        .where(AlertMessage.state == PENDING)
        .order_by(AlertMessage.key, AlertMessage.id)
    ).all()
    down: dict[str, str] = {}  # channels that failed this round: not tried again until next
    sent_this_hour = _sent_since(now - timedelta(hours=1))
    for _key, group in groupby(pending, key=lambda m: m.key):
        *older, newest = list(group)
        if newest.next_attempt_at > now:
            continue
        if newest.attempts == 0:  # a first try waits for the rate limit; a retry does not
            wait = _rate_limited(newest, sent_this_hour, now)
            if wait is not None:
                newest.next_attempt_at = wait
                db.session.commit()
                continue
        if not claims.take(CLAIM, holder, now, LEASE_SECONDS):
            return  # the lease lapsed and another watcher delivers now
        _fold(newest, older)
        if _attempt(channels, newest, down, now):
            sent_this_hour += 1
        db.session.commit()


def _sent_since(since: datetime) -> int:
    return db.session.scalar(select(func.count()).where(AlertMessage.sent_at >= since))


def _rate_limited(message: AlertMessage, sent_this_hour: int, now: datetime) -> datetime | None:
    """When the message may go, if not now: after its condition's gap, or the hour's cap."""
    last = db.session.scalar(
        select(func.max(AlertMessage.sent_at)).where(AlertMessage.key == message.key)
    )
    if last is not None and now < last + timedelta(seconds=MIN_GAP_SECONDS):
        return last + timedelta(seconds=MIN_GAP_SECONDS)
    if sent_this_hour >= MAX_PER_HOUR:
        oldest = db.session.scalar(
            select(func.min(AlertMessage.sent_at)).where(
                AlertMessage.sent_at >= now - timedelta(hours=1)
            )
        )
        if message.capped_since is None:
            message.capped_since = now
            log.warning(
                "alerts: the limit of %d alerts an hour holds back the %s alert",
                MAX_PER_HOUR,
                message.key,
            )
        return max((oldest or now) + timedelta(hours=1), now + timedelta(seconds=1))
    return None


def _fold(newest: AlertMessage, older: list[AlertMessage]) -> None:
    """The older messages of the condition go out as a line of the newest one."""
    if not older:
        return
    held = list(newest.payload.get("held_back") or [])
    for message in older:
        held += message.payload.get("held_back") or []
        held.append({"status": message.status, "at": message.created_at.isoformat()})
        message.state = HELD
    held.sort(key=lambda h: h["at"])
    newest.payload = {**newest.payload, "held_back": held}
    newest.capped_since = min(
        (m.capped_since for m in [newest, *older] if m.capped_since), default=None
    )


def _attempt(channels: Channels, message: AlertMessage, down: dict, now: datetime) -> bool:
    """Try every configured channel that has not taken the message yet; audit the attempt.
    True when it is now sent everywhere."""
    settings = current_app.extensions["dashboard.settings"]
    outgoing = messages.outgoing(
        message.key,
        message.status,
        message.payload,
        settings.SAML_SP_BASE_URL,
        MAX_PER_HOUR,
        message.capped_since,
    )
    results: dict[str, str | None] = {}
    for name in channels.names:
        if message.delivered.get(name):
            continue
        if name in down:
            results[name] = down[name]
            continue
        try:
            channels.send(name, outgoing)
            results[name] = None
        except Undelivered as exc:
            results[name] = down[name] = exc.reason
    message.attempts += 1
    message.delivered = {**message.delivered, **{n: True for n, r in results.items() if not r}}
    failed = {name: reason for name, reason in results.items() if reason}
    gave_up = False
    if not failed:
        message.state, message.sent_at, message.last_error = SENT, now, None
    else:
        message.last_error = "; ".join(f"{TITLES[n]}: {r}" for n, r in failed.items())
        if now - message.created_at >= timedelta(seconds=GIVE_UP_SECONDS):
            message.state, gave_up = FAILED, True
        else:
            message.next_attempt_at = now + _backoff(message.attempts)
        log.warning("alerts: the %s alert was not delivered: %s", message.key, message.last_error)
    _audit(message, results, gave_up)
    return not failed


def _backoff(attempts: int) -> timedelta:
    return timedelta(seconds=min(RETRY_FIRST_SECONDS * 2 ** (attempts - 1), RETRY_MOST_SECONDS))


def _audit(message: AlertMessage, results: dict[str, str | None], gave_up: bool) -> None:
    details = {
        "condition": message.key,
        "title": message.payload["title"],
        "channels": {n: "sent" if r is None else f"failed: {r}" for n, r in results.items()},
        "attempt": message.attempts,
    }
    if message.payload.get("held_back"):
        details["held_back"] = message.payload["held_back"]
    if message.capped_since is not None:
        details["delayed_since"] = message.capped_since.isoformat()
    if message.state == PENDING:
        details["next_attempt_at"] = message.next_attempt_at.isoformat()
    if gave_up:
        details["gave_up"] = True
    audit.record(
        ACTIONS.get(message.status, "alert.sent"),
        actor=ACTOR,
        outcome="success" if all(r is None for r in results.values()) else "failed",
        details=details,
    )
