"""The watch: every few seconds, in every web process and every `flask sync worker`, read
each condition (dashboard.alerts.conditions), claim what changed, and deliver what is due
(dashboard.alerts.delivery).

A condition is level-triggered: one alert when it opens, nothing while it stays open (but
for new possible leavers), one "resolved" when it clears. Every watcher sees the same
change; the first to write it claims it (a conditional UPDATE on the state's version, or an
INSERT that does nothing on conflict) and only that one queues the message, in the same
transaction. So each transition is sent once, however many processes watch.

When nothing changed, a watch is a dozen indexed reads and no write. It never raises: a
condition that cannot be read, or a channel that is down, is logged (or audited) and tried
again at the next watch.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime

from flask import current_app
from sqlalchemy import insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from dashboard.alerts import chain, delivery, messages
from dashboard.alerts.channels import Channels
from dashboard.alerts.conditions import READERS, Finding
from dashboard.alerts.models import FIRING, PENDING, RESOLVED, AlertMessage, AlertState
from dashboard.extensions import db
from dashboard.timeutil import utcnow

log = logging.getLogger(__name__)
states = AlertState.__table__


def watch(now: datetime | None = None) -> None:
    """Evaluate every condition and send what changed. Call it inside an app context, with
    no change of the caller's own pending in the session: it commits its own."""
    now = now or utcnow()
    holder = uuid.uuid4().hex  # this watch, for the leases it takes
    channels = Channels.from_settings(current_app.extensions["dashboard.settings"])
    _safely("verifying the audit chain", chain.verify_if_due, holder, now)
    _safely("reading the conditions", notice, now, bool(channels.names))
    _safely("delivering", delivery.deliver_due, channels, holder, now)


def _safely(what: str, step, *args) -> None:
    try:
        step(*args)
    except Exception:
        # Nothing here carries a secret: channel failures never get this far (they are
        # Undelivered, audited with a reason of our own words).
        db.session.rollback()
        log.exception("alerts: %s failed; the next watch tries again", what)


def notice(now: datetime, queue: bool) -> None:
    """Claim every transition the conditions show; queue a message for each when a channel
    is configured (without one, the Overview still shows what is open)."""
    # The states first, then the conditions: what is read of the conditions is never older
    # than the state it is compared with, so a stale watcher's claim finds a newer version.
    known = {row.key: row for row in db.session.execute(select(states)).all()}
    for reader in READERS:
        try:
            found = reader()
        except Exception:
            db.session.rollback()
            log.exception("alerts: reading the condition %s failed", reader.__name__)
            continue
        for finding in found if isinstance(found, list) else [found] if found else []:
            _settle(known.get(finding.key), finding, now, queue)
    db.session.rollback()  # end the reads' transaction: nothing was left to write


def _settle(state, finding: Finding, now: datetime, queue: bool) -> None:
    if state is None:
        if finding.open and _claim_first(finding, now):
            _queue(finding.key, FIRING, messages.firing(finding), now, queue)
        return
    if state.is_open != finding.open:
        if _claim(state, finding, now):
            payload = (
                messages.firing(finding)
                if finding.open
                else messages.resolved(state.title, finding)
            )
            _queue(finding.key, FIRING if finding.open else RESOLVED, payload, now, queue)
        return
    if not finding.open:
        return
    new = [name for name in finding.names if name not in set(state.names or ())]
    if new:
        if _claim(state, finding, now):
            _queue(finding.key, FIRING, messages.more_leavers(finding, new), now, queue)
    elif _shown(state) != _shown(finding):
        _refresh(state, finding)


def _shown(row) -> tuple:
    return (row.title, row.text, row.link, row.facts)


def _values(finding: Finding, now: datetime) -> dict:
    return {
        "is_open": finding.open,
        "changed_at": now,
        "title": finding.title,
        "text": finding.text,
        "link": finding.link,
        "facts": finding.facts,
        "names": list(finding.names),
    }


def _claim_first(finding: Finding, now: datetime) -> bool:
    """The condition's first row: whoever inserts it claims the opening."""
    dialect = postgresql if db.session.get_bind().dialect.name == "postgresql" else sqlite
    row = {"key": finding.key, "version": 1, "opened_at": now, **_values(finding, now)}
    claimed = db.session.execute(
        dialect.insert(states).values(row).on_conflict_do_nothing().returning(states.c.key)
    ).first()
    return _settled(claimed is not None)


def _claim(state, finding: Finding, now: datetime) -> bool:
    """Move the condition on from the version this watcher read; false when another watcher
    moved it first (it sends the message). An open alert keeps its opening time."""
    values = _values(finding, now)
    if finding.open and not state.is_open:
        values["opened_at"] = now
    elif not finding.open:
        values["opened_at"] = None
    if not finding.open:
        # A cleared alert keeps what it said when open (the resolved message names it).
        values.update(title=state.title, text=state.text, link=state.link, facts=state.facts)
    claimed = db.session.execute(
        update(states)
        .where(states.c.key == state.key, states.c.version == state.version)
        .values(version=states.c.version + 1, **values)
        .returning(states.c.key)
    ).first()
    return _settled(claimed is not None)


def _refresh(state, finding: Finding) -> None:
    """Still open, nothing new to say: keep what the Overview shows current (a later run
    that failed too), without a message."""
    db.session.execute(
        update(states)
        .where(states.c.key == state.key, states.c.version == state.version)
        .values(title=finding.title, text=finding.text, link=finding.link, facts=finding.facts)
    )
    db.session.commit()


def _settled(claimed: bool) -> bool:
    """A claim lost ends its transaction here; a claim won stays open for its message."""
    if not claimed:
        db.session.rollback()
    return claimed


def _queue(key: str, status: str, payload: dict, now: datetime, queue: bool) -> None:
    """The claimed transition's message, committed with the claim."""
    if queue:
        db.session.execute(
            insert(AlertMessage.__table__).values(
                key=key,
                status=status,
                created_at=now,
                payload=payload,
                state=PENDING,
                attempts=0,
                next_attempt_at=now,
                delivered={},
            )
        )
    db.session.commit()
