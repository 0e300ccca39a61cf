"""Refused sign-ins and logouts go into the audit trail, but a flood of them cannot fill it.

For each client address, action and reason (and, for a refusal the IdP signed, the person it
names) at most one entry is written per minute: the first refusal of the minute writes one,
whose `count` is the refusals it stands for, itself and those of the same key not written
since the previous entry. The counts are kept in the rate limiter's storage, so processes and
instances sharing a Redis share them too. Entries are never updated afterwards (the trail is
hash-chained and append-only); refusals after a key's last entry are counted in its next
one, if one comes within a day.

A refusal found before the IdP's signature was checked records its reason code alone: the
rest of its message may be text the sender chose.
"""

from __future__ import annotations

import hashlib
import logging
import time

from flask import current_app

from dashboard import audit
from dashboard.auth import ratelimit
from dashboard.auth.saml import SamlRefused

log = logging.getLogger(__name__)

WINDOW_SECONDS = 60
# How long refusals not yet written wait for their key's next entry.
UNWRITTEN_KEPT_SECONDS = 24 * 3600


def record(action: str, refusal: SamlRefused) -> bool:
    """Audit `refusal` under `action` in the current transaction, unless an entry for the
    same key was already written this minute (then it is only counted). True if written."""
    actor = refusal.actor if refusal.signed and refusal.actor else "anonymous"
    address = ratelimit.client_address()
    key = (
        "refusals/"
        + hashlib.sha256("\0".join((action, address, refusal.reason, actor)).encode()).hexdigest()[
            :40
        ]
    )
    counted = _count(key)
    if counted is None:
        return False
    details: dict = {"reason": refusal.reason, "count": counted}
    if refusal.signed:
        details["message"] = refusal.message
    audit.record(action, actor=actor, outcome="refused", details=details)
    return True


def _count(key: str) -> int | None:
    """None when this minute's entry for `key` is written already (this refusal is then
    counted toward the next one); else how many refusals the entry to write stands for."""
    storage = ratelimit.storage(current_app)
    minute = int(time.time() // WINDOW_SECONDS)
    unwritten = f"{key}/unwritten"
    try:
        if storage.incr(f"{key}/{minute}", WINDOW_SECONDS * 2) > 1:
            storage.incr(unwritten, UNWRITTEN_KEPT_SECONDS)
            return None
        waiting = max(0, storage.get(unwritten))
        if waiting:
            # Taken off, not cleared: refusals counted meanwhile by others stay counted.
            storage.incr(unwritten, UNWRITTEN_KEPT_SECONDS, amount=-waiting)
    except Exception:  # the storage is unreachable: every refusal is written, as before
        log.warning("cannot count refusals in the rate limit storage", exc_info=True)
        return 1
    return 1 + waiting
