"""pruning checkpoints signed with the audit signing key too

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06 20:30:00

A checkpoint's HMAC comes from SECRET_KEY, which by default sits beside the database: with
both, a checkpoint could be forged past the newest digest. A checkpoint made since digests
exist also carries an Ed25519 signature by the audit signing key (kept outside the database).
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("audit_checkpoints", schema=None) as batch_op:
        batch_op.add_column(sa.Column("key_signature", sa.Text(), nullable=True))


def downgrade():
    with op.batch_alter_table("audit_checkpoints", schema=None) as batch_op:
        batch_op.drop_column("key_signature")
