"""The one write path into the audit table: `record` adds an entry, `record_all` several
in one go (a sync round's outcomes); both give each its place in the hash chain."""

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
        occurred_at=occurred_at,  # None: now, set with recorded_at (chain.append_all)
        actor=actor,
        source=source,
        action=action,
        outcome=outcome,
        target_user=target_user,
        details=details or {},
        external_id=external_id,
    )
    _add([entry])
    return entry


def record_all(entries: list[dict[str, Any]]) -> None:
    """Several entries, each given as `record`'s keyword arguments (the action as
    "action"), in their order, under the same rules: the chain's head is taken once for all
    of them and they are inserted together. The caller commits."""
    _add(
        [
            AuditEntry(**{"source": "dashboard", **e, "details": e.get("details") or {}})
            for e in entries
        ]
    )


def _add(entries: list[AuditEntry]) -> None:
    if not entries:
        return
    if has_request_context():  # who asked, when it was asked over the web
        for entry in entries:
            entry.source_ip = request.remote_addr
    chain.append_all(entries)
    db.session.add_all(entries)
    digests.sign_if_due()
