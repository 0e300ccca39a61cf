"""Retention: the one way audit entries are deleted. A prune removes the oldest part of the
chain and leaves a signed checkpoint of it (dashboard.audit.chain), so what remains still
verifies; the prune is itself an entry. It signs a digest of the chain first
(dashboard.audit.digests): the digests stay, and go on verifying against the checkpoint.

Age is when the dashboard recorded an entry (`recorded_at`), never when it occurred:
imported OneLogin and Workato events carry their source's old times but join the chain at its
end, so pruning by their time would take everything recorded before them too. A prune removes
the chain's prefix that ends just before the first entry recorded inside the retention window,
so no such entry is ever removed, even were recorded_at out of chain order (a clock set back).

recorded_at is not in the entry's hash (the published definition stays as it was). So that
changing it in the database cannot make a prune take recent entries, the dashboard's own
entries, whose hashed occurred_at is the moment they were recorded, are kept by that time too.
Which entries are the dashboard's own is read from their hashed `source`, never from a column
outside the hash (an `external_id` written in would otherwise pass them off as imported).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, delete, func, or_, select

from dashboard import audit
from dashboard.audit import chain, digests
from dashboard.audit.models import AuditCheckpoint, AuditEntry
from dashboard.extensions import db
from dashboard.timeutil import utcnow

OWN_SOURCES = ("dashboard", "sync")  # entries the dashboard itself recorded (hashed field)


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
    """What `prune(before)` would remove: the chain's prefix before the first entry that
    must stay (recorded at or after `before`)."""
    audit = AuditEntry.__table__
    stays = or_(
        audit.c.recorded_at >= before,
        and_(audit.c.source.in_(OWN_SOURCES), audit.c.occurred_at >= before),
    )
    first_kept = db.session.scalar(select(func.min(audit.c.seq)).where(stays))
    prefix = select(func.max(audit.c.seq), func.count())
    if first_kept is not None:
        prefix = prefix.where(audit.c.seq < first_kept)
    last, count = db.session.execute(prefix).one()
    return Pruned(before, count, last) if last is not None else Pruned(before, 0, None)


def prune(before: datetime, actor: str) -> Pruned:
    """Remove the entries recorded before `before`, leaving a signed checkpoint. Refused when
    the chain or its digests do not verify: pruning would hide where it was broken. Signs a
    digest of the whole chain first, so what is removed was signed."""
    verdict = digests.verify_all()
    if not verdict.ok:
        raise PruneRefused(
            f"The audit chain does not verify, so nothing was pruned: {verdict.problem}"
        )
    plan = preview(before)
    if plan.up_to_seq is None:
        return plan
    digests.sign(digests.PRUNE)
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
    digests.sign_checkpoint(checkpoint)
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
