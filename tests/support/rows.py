"""What the app wrote to its database, read back for assertions."""

from __future__ import annotations

from flask import Flask
from sqlalchemy import text

from dashboard.audit.models import AuditEntry
from dashboard.extensions import db


def audit_rows(app: Flask) -> list[dict]:
    """Every audit entry, oldest first, as the fields a test compares."""
    with app.app_context():
        entries = db.session.scalars(db.select(AuditEntry).order_by(AuditEntry.id))
        return [
            {
                "actor": e.actor,
                "action": e.action,
                "outcome": e.outcome,
                "details": e.details,
                "source_ip": e.source_ip,
            }
            for e in entries
        ]


def count_rows(app: Flask, table: str) -> int:
    with app.app_context():
        query = text(f"SELECT count(*) FROM {table}")  # noqa: S608  (our own table names)
        return db.session.execute(query).scalar_one()
