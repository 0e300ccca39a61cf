"""Retention: the one way audit entries are deleted. A prune removes the oldest part of the
chain and leaves a signed checkpoint of it (dashboard.audit.chain), so what remains still
verifies; the prune is itself an entry."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select

from dashboard import audit
from dashboard.audit import chain
from dashboard.audit.models import AuditCheckpoint, AuditEntry
from dashboard.extensions import db
from dashboard.timeutil import utcnow


class PruneRefused(Exception):
    """Nothing was pruned; the message says why."""


@dataclass
class Pruned:
    before: datetime
    count: int  # entries removed (or, in a preview, that would be)
    up_to_seq: int | None  # the last entry removed

    def as_json(self) -> dict:
        return {"before": self.before.isoformat(), "pruned": self.count, "up_to": self.up_to_seq}


def cutoff(days: int) -> datetime:
    return utcnow() - timedelta(days=days)


def preview(before: datetime) -> Pruned:
    """What `prune(before)` would remove: the chain's prefix up to the newest entry written
    before `before` (entries are chained in the order they were written)."""
    last = db.session.scalar(
        select(func.max(AuditEntry.seq)).where(AuditEntry.occurred_at < before)
    )
    if last is None:
        return Pruned(before, 0, None)
    count = db.session.scalar(select(func.count()).where(AuditEntry.seq <= last)) or 0
    return Pruned(before, count, last)


def prune(before: datetime, actor: str) -> Pruned:
    """Remove the entries written before `before`, leaving a signed checkpoint. Refused when
    the chain does not verify: pruning would hide where it was broken."""
    verdict = chain.verify()
    if not verdict.ok:
        raise PruneRefused(
            f"The audit chain does not verify, so nothing was pruned: {verdict.problem}"
        )
    plan = preview(before)
    if plan.up_to_seq is None:
        return plan
    last = db.session.scalar(select(AuditEntry).where(AuditEntry.seq == plan.up_to_seq))
    checkpoint = AuditCheckpoint(
        up_to_seq=last.seq,
        last_hash=last.hash,
        pruned=plan.count,
        before=before,
        created_by=actor,
        signature="",
    )
    checkpoint.signature = chain.sign(checkpoint)
    db.session.add(checkpoint)
    db.session.execute(delete(AuditEntry.__table__).where(AuditEntry.seq <= last.seq))
    audit.record(
        "audit.prune",
        actor=actor,
        outcome="success",
        details={"before": before.isoformat(), "pruned": plan.count, "up_to": last.seq},
    )
    db.session.commit()
    return plan
