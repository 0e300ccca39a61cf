"""The one write path into the audit table."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import has_request_context, request

from dashboard.audit import chain, digests
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
    occurred_at: datetime | None = None,
    external_id: str | None = None,
) -> AuditEntry:
    """Add an entry to the current transaction; the caller commits with its own change.

    Never pass a secret in `details`: entries are shown to every viewer and exported.
    `occurred_at` and `external_id` are for entries imported from OneLogin or Workato (when
    it happened there, and its id there); `recorded_at` is always now, whatever they say.
    The first entry an hour or more after the newest signed digest also signs one, in the
    same transaction (dashboard.audit.digests).
    """
    entry = AuditEntry(
        occurred_at=occurred_at,  # None: now, set with recorded_at (chain.append)
        actor=actor,
        source=source,
        action=action,
        outcome=outcome,
        target_user=target_user,
        source_ip=request.remote_addr if has_request_context() else None,
        details=details or {},
        external_id=external_id,
    )
    chain.append(entry)
    db.session.add(entry)
    digests.sign_if_due()
    return entry
