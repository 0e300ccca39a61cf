"""What someone with write access to the database (and none to the dashboard's keys) can do
to the audit trail: change an entry and recompute every later hash and the chain's head, so
that the hash chain alone still holds."""

from __future__ import annotations

from typing import Any

from flask import Flask
from sqlalchemy import select, update

from dashboard.audit import chain
from dashboard.audit.models import AuditChain, AuditEntry
from dashboard.extensions import db

HASHED = (
    "seq",
    "prev_hash",
    "occurred_at",
    "actor",
    "source",
    "action",
    "outcome",
    "target_user",
    "source_ip",
    "details",
)


def rewrite(app: Flask, seq: int, **changes: Any) -> None:
    """Change entry `seq`, then re-hash it and every entry after it, and set the head to the
    new last hash, all with plain SQL as a database admin would."""
    table = AuditEntry.__table__
    with app.app_context():
        rows = db.session.execute(
            select(table).where(table.c.seq >= seq).order_by(table.c.seq)
        ).all()
        prev = None
        for row in rows:
            fields = dict(row._mapping)
            if row.seq == seq:
                fields.update(changes)
            if prev is not None:
                fields["prev_hash"] = prev
            fields["hash"] = chain.entry_hash(**{k: fields[k] for k in HASHED})
            db.session.execute(
                update(table)
                .where(table.c.id == row.id)
                .values(**{k: v for k, v in fields.items() if k != "id"})
            )
            prev = fields["hash"]
        head = AuditChain.__table__
        db.session.execute(update(head).where(head.c.id == chain.HEAD).values(last_hash=prev))
        db.session.commit()
