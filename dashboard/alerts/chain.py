"""The audit chain's verdict for the `audit_chain` alert.

Verifying reads every entry since the last pruning checkpoint: seconds at a million entries.
So one watcher among all of them verifies, at most once an hour (it claims the hour in the
database), and keeps the verdict where every watcher reads it.
"""

from __future__ import annotations

import logging
from datetime import datetime

from dashboard.alerts import claims
from dashboard.audit import digests
from dashboard.extensions import db

log = logging.getLogger(__name__)
CLAIM = "audit_chain"
EVERY_SECONDS = 3600  # how stale the verdict may be: tampering is found within the hour


def verify_if_due(holder: str, now: datetime) -> None:
    """Verify the chain when nobody did for an hour; keep the verdict."""
    until = claims.held_until(CLAIM)
    if until is not None and until > now:
        return
    if not claims.take(CLAIM, holder, now, EVERY_SECONDS):
        return  # another watcher took this hour
    try:
        verdict = digests.verify_all()
    except Exception:
        # The claim stands for the hour: a verification that fails to run is not retried
        # in a tight loop. The last verdict is kept.
        db.session.rollback()
        log.exception("alerts: verifying the audit chain failed; the next try is in an hour")
        return
    db.session.rollback()  # verify only read; end its snapshot before writing
    claims.keep(
        CLAIM,
        holder,
        {
            "ok": verdict.ok,
            "problem": verdict.problem,
            "checked": verdict.checked,
            "verified_at": now.isoformat(),
        },
    )


def kept_verdict() -> dict | None:
    """The last verdict any watcher kept; None before the first."""
    return claims.kept(CLAIM)
