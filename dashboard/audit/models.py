from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Index, String, Text, UniqueConstraint, func
from sqlalchemy.orm import Mapped, mapped_column

from dashboard.extensions import db
from dashboard.timeutil import UTCDateTime, utcnow


class AuditEntry(db.Model):
    """One thing that happened. Written only through dashboard.audit.record()."""

    __tablename__ = "audit"

    id: Mapped[int] = mapped_column(primary_key=True)
    # When it happened: for our own entries the moment they were recorded; for an imported
    # one, when it happened at its source (months ago, perhaps). In the hash.
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # When the dashboard recorded it: set by the write path (dashboard.audit.chain.append_all)
    # once it holds the chain's head, so it follows the chain's order. What retention prunes
    # by. Not in the hash (see dashboard.audit.retention); the database's own clock fills it
    # for rows inserted by other means (the benchmark's bulk load).
    recorded_at: Mapped[datetime] = mapped_column(
        UTCDateTime, server_default=func.current_timestamp()
    )
    # Who did it: an account's email or NameID, or "anonymous" before sign-in.
    actor: Mapped[str] = mapped_column(String(320))
    # dashboard, onelogin, workato or sync.
    source: Mapped[str] = mapped_column(String(16), default="dashboard")
    # Dotted verb, e.g. auth.sign_in, auth.refused, auth.sign_out.
    action: Mapped[str] = mapped_column(String(64))
    # success, refused or failed.
    outcome: Mapped[str] = mapped_column(String(16))
    target_user: Mapped[str | None] = mapped_column(String(320))
    source_ip: Mapped[str | None] = mapped_column(String(64))
    details: Mapped[dict] = mapped_column(JSON, default=dict)
    # An imported entry's id at its source (OneLogin's event id, Workato's activity id): a
    # re-import skips what is already here.
    external_id: Mapped[str | None] = mapped_column(String(128))
    # The hash chain (dashboard.audit.chain): place, the previous entry's hash, this one's.
    seq: Mapped[int] = mapped_column(unique=True)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))

    # The Audit page lists entries in the order they happened, (occurred_at, id), newest
    # first: every index it walks ends in those two, so a filter's entries are read in that
    # order and a time range and the keyset are one range of them (dashboard.audit.walks).
    __table_args__ = (
        Index("ix_audit_occurred_at_id", "occurred_at", "id"),
        Index("ix_audit_recorded_at", "recorded_at"),
        Index("ix_audit_target_user_occurred_at_id", "target_user", "occurred_at", "id"),
        # A user with an actor (dashboard.audit.walks): the busiest user's entries by one
        # admin, without reading all of hers (migration 0019).
        Index(
            "ix_audit_target_user_actor_occurred_at_id",
            "target_user",
            "actor",
            "occurred_at",
            "id",
        ),
        Index("ix_audit_actor_occurred_at_id", "actor", "occurred_at", "id"),
        Index("ix_audit_action_occurred_at_id", "action", "occurred_at", "id"),
        Index("ix_audit_source_occurred_at_id", "source", "occurred_at", "id"),
        # Filters together: actor with action and source (a branch per value of the one
        # not asked), action with source.
        Index(
            "ix_audit_actor_action_source_occurred_at_id",
            "actor",
            "action",
            "source",
            "occurred_at",
            "id",
        ),
        Index("ix_audit_action_source_occurred_at_id", "action", "source", "occurred_at", "id"),
        UniqueConstraint("source", "external_id", name="uq_audit_source_external_id"),
    )


class AuditChain(db.Model):
    """The chain's head, one row: the last place given and its hash. Appending updates it
    first, which serialises writers (see dashboard.audit.chain)."""

    __tablename__ = "audit_chain"

    id: Mapped[int] = mapped_column(primary_key=True)
    seq: Mapped[int]
    last_hash: Mapped[str] = mapped_column(String(64))


class AuditCheckpoint(db.Model):
    """What a prune removed: the entries up to `up_to_seq`, the last of them hashing to
    `last_hash`; signed, so verifying can start here."""

    __tablename__ = "audit_checkpoints"

    id: Mapped[int] = mapped_column(primary_key=True)
    up_to_seq: Mapped[int] = mapped_column(unique=True)
    last_hash: Mapped[str] = mapped_column(String(64))
    pruned: Mapped[int]  # entries removed by this prune
    before: Mapped[datetime] = mapped_column(UTCDateTime)  # the cutoff
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by: Mapped[str] = mapped_column(String(320))
    signature: Mapped[str] = mapped_column(String(64))
    # Ed25519, by the audit signing key (dashboard.audit.digests.sign_checkpoint): required
    # of every checkpoint made since digests exist; the HMAC alone is SECRET_KEY's.
    key_signature: Mapped[str | None] = mapped_column(Text)


class AuditDigest(db.Model):
    """The chain's head signed with the installation's Ed25519 key (dashboard.audit.digests):
    where the chain stood (`seq`, `head_hash`) at `signed_at`, chained to the digest before
    by `prev_digest_hash`. Written only by dashboard.audit.digests.sign."""

    __tablename__ = "audit_digests"

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[int]  # its place in the digests' chain, from 1
    seq: Mapped[int]  # the head's seq (0: nothing written yet)
    head_hash: Mapped[str] = mapped_column(String(64))
    signed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    prev_digest_hash: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(String(16))  # hourly, run, prune or command
    key_id: Mapped[str] = mapped_column(String(64))  # SHA-256 of the raw public key
    digest_hash: Mapped[str] = mapped_column(String(64))  # SHA-256 of the signed message
    signature: Mapped[str] = mapped_column(String(128))  # Ed25519, hex

    __table_args__ = (UniqueConstraint("number", name="uq_audit_digests_number"),)


class AuditImport(db.Model):
    """How far the import from one source (onelogin, workato) has read: the newest time seen,
    where the next import starts."""

    __tablename__ = "audit_imports"

    source: Mapped[str] = mapped_column(String(16), primary_key=True)
    last_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    imported_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    imported: Mapped[int] = mapped_column(default=0)  # entries added by the last import
    problem: Mapped[str | None] = mapped_column(String(500))  # why the last import failed
