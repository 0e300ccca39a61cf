"""Signed digests of the audit trail, as AWS CloudTrail's log file integrity validation does:
the hash chain alone cannot stop someone who can write to the database, who changes an entry
and recomputes every later hash and the head. A digest signs where the chain stood (the
head's seq and hash), when, and the previous digest's hash, with the installation's Ed25519
key (dashboard.audit.signing), which is not in the database. Such a rewrite no longer matches
a signed digest, a digest changed or forged fails its signature, and a digest removed breaks
the digests' own chain.

When: on the first audit write an hour or more after the newest digest (in the same
transaction, holding the chain's head: an hour without entries needs none), at the end of
each sync run, before a prune, and on `flask audit digest`. Entries written since the newest
digest are not signed yet (at most an hour of them, or a run's).

Where: the `audit_digests` table and, with DASHBOARD_AUDIT_DIGEST_DIR set, one JSON line per
digest appended to `audit-digests.jsonl` there once its transaction commits: a place the
database's admin does not control, which `verify` compares with the table, so digests
removed from the table (the newest ones included) are found too.

The signed message is the canonical JSON object of SIGNED (sorted keys, no spaces), so the
security team checks a digest with the public key alone (README, "Checking an export").
Never change it: digests already signed depend on it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

from flask import Flask, current_app
from sqlalchemy import event, inspect, select
from sqlalchemy.orm import Session

from dashboard.audit import chain, signing
from dashboard.audit.chain import GENESIS, Verdict
from dashboard.audit.export import timestamp
from dashboard.audit.models import AuditCheckpoint, AuditDigest, AuditEntry
from dashboard.extensions import db
from dashboard.settings import ConfigError
from dashboard.timeutil import utcnow

log = logging.getLogger(__name__)

EVERY = timedelta(hours=1)
FILE_NAME = "audit-digests.jsonl"
SIGNED = ("number", "seq", "head_hash", "signed_at", "prev_digest_hash", "reason", "key_id")
FIELDS = (*SIGNED, "digest_hash", "signature")
HOURLY, RUN, PRUNE, COMMAND = "hourly", "run", "prune", "command"
KEY = "dashboard.audit_signing_key"
DIR = "dashboard.audit_digest_dir"
PENDING = "dashboard.audit_digests_pending"  # in session.info: lines to append on commit
CHUNK = 1000


def setup(app: Flask, configured_key: Path | None, digest_dir: Path | None) -> None:
    """Load the signing key (made in the instance folder when none is configured) and check
    the digest folder, at start: a wrong one stops the start, not the first audit write."""
    app.extensions[KEY] = signing.load(configured_key, Path(app.instance_path))
    if digest_dir is not None and not digest_dir.is_dir():
        raise ConfigError(
            f"DASHBOARD_AUDIT_DIGEST_DIR names {digest_dir}, which is not a folder. Create it "
            "(a place the database's admin cannot change, e.g. a write-once mount) or unset it."
        )
    app.extensions[DIR] = digest_dir
    if not event.contains(Session, "after_commit", _append_committed):
        event.listen(Session, "after_commit", _append_committed)
        event.listen(Session, "after_rollback", _forget_pending)


def key() -> signing.SigningKey:
    return current_app.extensions[KEY]


def message(record: dict[str, Any]) -> bytes:
    """What is signed: the SIGNED fields of a digest record as canonical JSON."""
    fields = {name: record[name] for name in SIGNED}
    return json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()


def as_json(digest: AuditDigest) -> dict[str, Any]:
    """A digest as exported and as appended to the digest file."""
    return {
        "number": digest.number,
        "seq": digest.seq,
        "head_hash": digest.head_hash,
        "signed_at": timestamp(digest.signed_at),
        "prev_digest_hash": digest.prev_digest_hash,
        "reason": digest.reason,
        "key_id": digest.key_id,
        "digest_hash": digest.digest_hash,
        "signature": digest.signature,
    }


def sign(reason: str) -> AuditDigest:
    """Sign where the chain stands now, in the caller's transaction (it commits with the
    caller's change; the digest file gets its line once that commits). Holds the chain's
    head, so digests take their places one at a time and sign a head no writer is moving."""
    seq, head_hash = chain.hold()
    signer = key()
    with db.session.no_autoflush:
        latest = newest()
    record = {
        "number": latest.number + 1 if latest else 1,
        "seq": seq,
        "head_hash": head_hash,
        "signed_at": utcnow(),
        "prev_digest_hash": latest.digest_hash if latest else GENESIS,
        "reason": reason,
        "key_id": signer.key_id,
    }
    signed = message({**record, "signed_at": timestamp(record["signed_at"])})
    digest = AuditDigest(
        **record,
        digest_hash=hashlib.sha256(signed).hexdigest(),
        signature=signer.sign(signed),
    )
    db.session.add(digest)
    folder = current_app.extensions.get(DIR)
    if folder is not None:
        line = json.dumps(as_json(digest), sort_keys=True) + "\n"
        db.session.info.setdefault(PENDING, []).append((folder / FILE_NAME, digest, line))
    return digest


def sign_if_due() -> None:
    """Sign (HOURLY) when the newest digest is an hour old, or there is none: called by the
    write path after it appended, holding the head, so the digest covers that entry too."""
    with db.session.no_autoflush:
        last = db.session.scalar(
            select(AuditDigest.signed_at).order_by(AuditDigest.number.desc()).limit(1)
        )
    if last is None or utcnow() - last >= EVERY:
        sign(HOURLY)


def newest() -> AuditDigest | None:
    return db.session.scalar(select(AuditDigest).order_by(AuditDigest.number.desc()).limit(1))


def jsonl_lines() -> Iterator[str]:
    """Every digest, oldest first, one JSON object a line (the `--digests` export)."""
    for digest in _in_order():
        yield json.dumps(as_json(digest), sort_keys=True) + "\n"


def _in_order() -> Iterator[AuditDigest]:
    after = 0
    while True:
        chunk = list(
            db.session.scalars(
                select(AuditDigest)
                .where(AuditDigest.number > after)
                .order_by(AuditDigest.number)
                .limit(CHUNK)
            )
        )
        if not chunk:
            return
        yield from chunk
        for digest in chunk:
            db.session.expunge(digest)
        after = chunk[-1].number


# --- verifying ------------------------------------------------------------------------------


def verify_all() -> Verdict:
    """The chain (dashboard.audit.chain.verify), then every digest: its signature, its place
    in the digests' chain, and the chain's hash where it signed it; then the digest file."""
    verdict = chain.verify()
    if not verdict.ok:
        return verdict
    return _check_digests(verdict.checked)


def checkpoint_message(checkpoint: AuditCheckpoint) -> bytes:
    fields = [
        checkpoint.up_to_seq,
        checkpoint.last_hash,
        checkpoint.pruned,
        timestamp(checkpoint.before),
    ]
    return json.dumps(fields, separators=(",", ":")).encode()


def sign_checkpoint(checkpoint: AuditCheckpoint) -> None:
    """A prune's checkpoint, signed with the audit signing key as well as its HMAC: whoever
    holds the database and SECRET_KEY still cannot write one that verify accepts."""
    checkpoint.key_signature = key().sign(checkpoint_message(checkpoint))


def _check_checkpoint(checkpoint: AuditCheckpoint | None, signer) -> str | None:
    """A checkpoint made since the first digest must carry the signing key's signature (one
    from before digests existed has its HMAC only, and covers only entries no digest did)."""
    if checkpoint is None:
        return None
    if checkpoint.key_signature:
        if signer.verifies(checkpoint_message(checkpoint), checkpoint.key_signature):
            return None
    else:
        first = db.session.scalar(select(AuditDigest.seq).order_by(AuditDigest.number).limit(1))
        if first is None or checkpoint.up_to_seq < first:
            return None
    return (
        f"The pruning checkpoint up to entry #{checkpoint.up_to_seq} is not signed with this "
        f"installation's audit signing key ({signing.SETTING}): it was written or changed by "
        "something other than a prune, and the entries it stands for may have been removed."
    )


def _check_digests(checked: int) -> Verdict:
    signer = key()
    checkpoint = chain.latest_checkpoint()
    floor = checkpoint.up_to_seq if checkpoint else 0
    floor_hash = checkpoint.last_hash if checkpoint else GENESIS
    number, prev, seen = 1, GENESIS, {}
    last_seq = None

    def failed(problem: str, seq: int | None = None) -> Verdict:
        return Verdict(False, checked, problem, seq=seq, digests=number - 1)

    problem = _check_checkpoint(checkpoint, signer)
    if problem:
        return failed(problem, checkpoint.up_to_seq)

    for digest in _in_order():
        record = as_json(digest)
        name = f"Digest #{digest.number} (signed {digest.signed_at:%Y-%m-%d %H:%M} UTC)"
        if digest.number != number:
            return failed(
                f"Digest #{number} is missing (digests {number} to {digest.number - 1} were "
                "removed from the database)."
            )
        if digest.prev_digest_hash != prev:
            return failed(f"{name} does not follow digest #{number - 1}: one was replaced.")
        signed = message(record)
        if digest.key_id != signer.key_id:
            return failed(
                f"{name} was signed with another key (key id {digest.key_id[:16]}…), not this "
                f"installation's audit signing key ({signer.key_id[:16]}…, "
                f"{signing.SETTING})."
            )
        if hashlib.sha256(signed).hexdigest() != digest.digest_hash or not signer.verifies(
            signed, digest.signature
        ):
            return failed(
                f"{name} does not match its signature: it was changed or written by "
                "something other than the dashboard."
            )
        seen[digest.number] = record
        problem = _against_chain(digest, name, floor, floor_hash)
        if problem:
            return failed(problem, digest.seq)
        prev, last_seq, number = digest.digest_hash, digest.seq, number + 1
    count = number - 1
    problem = _against_file(seen)
    if problem:
        return Verdict(False, checked, problem, digests=count)
    return Verdict(True, checked, digests=count, signed_up_to=last_seq)


def _against_chain(digest: AuditDigest, name: str, floor: int, floor_hash: str) -> str | None:
    """Whether the chain still has, where the digest signed it, the hash it signed."""
    if digest.seq < floor:
        return None  # pruned since: its signature and place were checked, nothing more to
    if digest.seq == floor:
        now = floor_hash
    else:
        now = db.session.scalar(select(AuditEntry.hash).where(AuditEntry.seq == digest.seq))
    if now is None:
        return (
            f"{name} signed entry #{digest.seq}, which is no longer in the chain: the newest "
            "entries were removed and the chain's head set back."
        )
    if now != digest.head_hash:
        return (
            f"The chain no longer matches {name[0].lower()}{name[1:]}: entry #{digest.seq} "
            f"hashed to {digest.head_hash[:16]}… when it was signed and hashes to {now[:16]}… "
            f"now. Entries up to #{digest.seq} were changed and the hashes after them "
            "recomputed behind the dashboard's back."
        )
    return None


def _against_file(seen: dict[int, dict[str, Any]]) -> str | None:
    """Every digest in DASHBOARD_AUDIT_DIGEST_DIR's file is in the table, unchanged."""
    folder = current_app.extensions.get(DIR)
    path = folder / FILE_NAME if folder is not None else None
    if path is None or not path.exists():
        return None
    with path.open() as lines:
        for n, line in enumerate(lines, start=1):
            try:
                kept = json.loads(line)
                number = kept["number"]
            except (ValueError, KeyError, TypeError):
                return f"Line {n} of {path} is not a digest."
            if number not in seen:
                return f"Digest #{number}, kept in {path}, is not in the database: it was removed."
            if {k: kept.get(k) for k in FIELDS} != seen[number]:
                return f"Digest #{number} in the database differs from its copy in {path}."
    return None


# --- the digest file ---------------------------------------------------------------------


def _append_committed(session: Session) -> None:
    """After a commit: append the digests it wrote to the digest file, as they were signed."""
    pending = session.info.pop(PENDING, None)
    for path, digest, line in pending or ():
        if not inspect(digest).persistent:
            continue  # undone with a savepoint
        try:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, line.encode())
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError:
            log.exception("Digest #%s could not be appended to %s", digest.number, path)


def _forget_pending(session: Session) -> None:
    session.info.pop(PENDING, None)
