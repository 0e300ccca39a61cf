"""The audit trail's hash chain: each entry carries the hash of the one before, so a row
changed, removed or inserted behind the application's back breaks a link `verify` finds.

Hashes are plain SHA-256 of a canonical JSON of the entry's fields, so the security team can
check an export without any of our secrets. Writes are serialised by a one-row head
(`audit_chain`): appending an entry first updates that row, which holds a row lock on
PostgreSQL and the write lock on SQLite until the transaction ends, so two writers never
take the same place in the chain. Pruning leaves a checkpoint (the pruned prefix's last hash
and sequence number), signed with a key derived from SECRET_KEY, where verifying starts.

The definition of `entry_hash` must never change: entries already written depend on it.
That is why `recorded_at` (when the dashboard wrote an entry, what retention prunes by) is
not in it; dashboard.audit.retention says how a prune stays safe all the same.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from flask import current_app
from sqlalchemy import select, update

from dashboard.audit.models import AuditChain, AuditCheckpoint, AuditEntry
from dashboard.extensions import db
from dashboard.timeutil import utcnow

GENESIS = "0" * 64  # the "previous hash" of the first entry
HEAD = 1  # the id of audit_chain's one row
VERIFY_CHUNK = 5000


def entry_hash(
    seq: int,
    prev_hash: str,
    occurred_at: datetime,
    actor: str,
    source: str,
    action: str,
    outcome: str,
    target_user: str | None,
    source_ip: str | None,
    details: dict[str, Any] | None,
) -> str:
    fields = [
        seq,
        prev_hash,
        occurred_at.astimezone(UTC).isoformat(timespec="microseconds"),
        actor,
        source,
        action,
        outcome,
        target_user,
        source_ip,
        details or {},
    ]
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def hash_of(entry: Any) -> str:
    """The hash of an entry (an AuditEntry, or a row of the audit table)."""
    return entry_hash(
        entry.seq,
        entry.prev_hash,
        entry.occurred_at,
        entry.actor,
        entry.source,
        entry.action,
        entry.outcome,
        entry.target_user,
        entry.source_ip,
        entry.details,
    )


def append_all(entries: list[AuditEntry]) -> None:
    """Give each entry, in order, its place in the chain (seq, prev_hash, hash) and the time
    it is recorded (also when it occurred, unless it came with its source's time). Holds the
    chain's head until the caller's transaction ends, so the chain never forks; the time is
    read once the head is held, so recorded_at follows the chain's order. The head is taken
    and moved once, however many entries."""
    if not entries:
        return
    head = AuditChain.__table__
    last, prev = db.session.execute(
        update(head)
        .where(head.c.id == HEAD)
        .values(seq=head.c.seq + len(entries))
        .returning(head.c.seq, head.c.last_hash)
    ).one()
    now = utcnow()
    for seq, entry in enumerate(entries, start=last - len(entries) + 1):
        entry.recorded_at = now
        if entry.occurred_at is None:
            entry.occurred_at = now
        entry.seq, entry.prev_hash = seq, prev
        entry.hash = prev = hash_of(entry)
    db.session.execute(update(head).where(head.c.id == HEAD).values(last_hash=prev))


def hold() -> tuple[int, str]:
    """Take the chain's head until the caller's transaction ends, appending nothing: for a
    writer whose entries depend on what is already there (an import skipping what another
    import just added, a digest signing the head), which must look only once it holds the
    head. Returns the head: the last seq given and its hash."""
    head = AuditChain.__table__
    seq, last_hash = db.session.execute(
        update(head)
        .where(head.c.id == HEAD)
        .values(seq=head.c.seq)
        .returning(head.c.seq, head.c.last_hash)
    ).one()
    return seq, last_hash


@dataclass
class Verdict:
    ok: bool
    checked: int
    problem: str | None = None  # the first broken link, in words
    seq: int | None = None  # where it is
    entry_id: int | None = None
    digests: int = 0  # signed digests checked (dashboard.audit.digests)
    signed_up_to: int | None = None  # the newest digest's seq: entries after it are unsigned

    def as_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "checked": self.checked,
            "problem": self.problem,
            "seq": self.seq,
            "id": self.entry_id,
            "digests": self.digests,
            "signed_up_to": self.signed_up_to,
        }


def verify() -> Verdict:
    """Walk the chain from the newest checkpoint (or the start) and report the first link
    that does not hold: a changed entry, a missing one, one inserted, or a head that does
    not match the last entry (the newest ones removed)."""
    checkpoint = latest_checkpoint()
    seq, prev = 0, GENESIS
    if checkpoint is not None:
        if not hmac.compare_digest(checkpoint.signature, sign(checkpoint)):
            return Verdict(
                False,
                0,
                f"The pruning checkpoint of {checkpoint.created_at:%Y-%m-%d %H:%M} UTC is not "
                "signed with this installation's SECRET_KEY: it was written or changed by "
                "something else.",
            )
        seq, prev = checkpoint.up_to_seq, checkpoint.last_hash
    checked = 0
    for entry in _in_order(seq):
        seq += 1
        where = {"seq": entry.seq, "entry_id": entry.id}
        if entry.seq != seq:
            what = (
                f"entries {seq} to {entry.seq - 1} are missing (deleted?)"
                if entry.seq > seq
                else f"entry {entry.seq} appears twice or out of order (inserted?)"
            )
            return Verdict(
                False, checked, f"The chain breaks before entry {entry.id}: {what}.", **where
            )
        if entry.prev_hash != prev:
            return Verdict(
                False,
                checked,
                f"Entry {entry.id} (#{entry.seq}) does not follow the one before it: an entry "
                "was removed or inserted here.",
                **where,
            )
        if entry.hash != hash_of(entry):
            return Verdict(
                False,
                checked,
                f"Entry {entry.id} (#{entry.seq}) was changed after it was written.",
                **where,
            )
        prev = entry.hash
        checked += 1
    head = db.session.get(AuditChain, HEAD)
    if head is None or head.seq != seq or head.last_hash != prev:
        last = head.seq if head is not None else "?"
        return Verdict(
            False,
            checked,
            f"The chain ends at entry #{seq}, but {last} were written: the newest entries "
            "were removed.",
            seq=seq,
        )
    return Verdict(True, checked)


def _in_order(after_seq: int) -> Iterator[Any]:
    """Every entry after `after_seq`, by seq, as plain rows a chunk at a time: never all in
    memory, and nothing kept in the session."""
    table = AuditEntry.__table__
    while True:
        chunk = db.session.execute(
            select(table).where(table.c.seq > after_seq).order_by(table.c.seq).limit(VERIFY_CHUNK)
        ).all()
        if not chunk:
            return
        yield from chunk
        after_seq = chunk[-1].seq


def latest_checkpoint() -> AuditCheckpoint | None:
    return db.session.scalar(select(AuditCheckpoint).order_by(AuditCheckpoint.up_to_seq.desc()))


def sign(checkpoint: AuditCheckpoint) -> str:
    """HMAC-SHA256 of the checkpoint's fields with a key derived from SECRET_KEY: only this
    installation can write a checkpoint verify accepts."""
    secret = current_app.secret_key
    secret = secret.encode() if isinstance(secret, str) else secret
    key = hmac.new(secret, b"audit-checkpoint", hashlib.sha256)
    fields = [
        checkpoint.up_to_seq,
        checkpoint.last_hash,
        checkpoint.pruned,
        checkpoint.before.astimezone(UTC).isoformat(timespec="microseconds"),
    ]
    message = json.dumps(fields, separators=(",", ":")).encode()
    return hmac.new(key.digest(), message, hashlib.sha256).hexdigest()
