"""audit digests: the chain's head signed with an Ed25519 key kept outside the database

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-14 09:00:00

Someone who can write to the database can change an entry and recompute every later hash
and the head; the chain alone cannot tell. A digest (dashboard.audit.digests) signs where
the chain stood (its head's seq and hash), when, and the previous digest's hash, with a key
the database does not hold, so such a rewrite no longer matches a signed digest and a
removed digest breaks the digests' own chain. `number` is a digest's place in that chain
(unique: two signers never take the same place). Nothing is signed here: the first digest
is signed by the running dashboard (on the next audit write, run end, prune or
`flask audit digest`), with its key.
"""

import sqlalchemy as sa
from alembic import op

from dashboard.timeutil import UTCDateTime

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "audit_digests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("head_hash", sa.String(length=64), nullable=False),
        sa.Column("signed_at", UTCDateTime(), nullable=False),
        sa.Column("prev_digest_hash", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.String(length=16), nullable=False),
        sa.Column("key_id", sa.String(length=64), nullable=False),
        sa.Column("digest_hash", sa.String(length=64), nullable=False),
        sa.Column("signature", sa.String(length=128), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("number", name="uq_audit_digests_number"),
    )


def downgrade():
    op.drop_table("audit_digests")
