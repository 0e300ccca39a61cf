"""The one write path into the audit table."""

from __future__ import annotations

from typing import Any

from flask import has_request_context, request

from dashboard.audit.models import AuditEntry
from dashboard.extensions import db


def record(
    action: str,
    *,
    actor: str,
    outcome: str,
    target_user: str | None = None,
    source: str = "dashboard",
    details: dict[str, Any] | None = None,
) -> AuditEntry:
    """Add an entry to the current transaction; the caller commits with its own change.

    Never pass a secret in `details`: entries are shown to every viewer and exported.
    """
    entry = AuditEntry(
        actor=actor,
        source=source,
        action=action,
        outcome=outcome,
        target_user=target_user,
        source_ip=request.remote_addr if has_request_context() else None,
        details=details or {},
    )
    db.session.add(entry)
    return entry


def recent(limit: int, before_id: int | None = None) -> list[AuditEntry]:
    """Newest first; `before_id` continues a page (keyset, so deep pages stay fast)."""
    query = db.select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
    if before_id is not None:
        query = query.where(AuditEntry.id < before_id)
    return list(db.session.scalars(query))
