"""audit hash chain, its head, pruning checkpoints, and imports from OneLogin and Workato

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30 08:45:00

"""

import sqlalchemy as sa
from alembic import op

from dashboard.audit.chain import GENESIS, HEAD, entry_hash
from dashboard.timeutil import UTCDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("audit", schema=None) as batch_op:
        batch_op.add_column(sa.Column("external_id", sa.String(length=128), nullable=True))
        batch_op.create_unique_constraint("uq_audit_source_external_id", ["source", "external_id"])
        batch_op.add_column(sa.Column("seq", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("prev_hash", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("hash", sa.String(length=64), nullable=True))

    # The entries written before the chain existed join it in the order they were written.
    audit = sa.table(
        "audit",
        sa.column("id", sa.Integer()),
        sa.column("occurred_at", UTCDateTime()),
        sa.column("actor", sa.String()),
        sa.column("source", sa.String()),
        sa.column("action", sa.String()),
        sa.column("outcome", sa.String()),
        sa.column("target_user", sa.String()),
        sa.column("source_ip", sa.String()),
        sa.column("details", sa.JSON()),
        sa.column("seq", sa.Integer()),
        sa.column("prev_hash", sa.String()),
        sa.column("hash", sa.String()),
    )
    connection = op.get_bind()
    rows = connection.execute(sa.select(audit).order_by(audit.c.id)).all()
    seq, prev = 0, GENESIS
    for row in rows:
        seq += 1
        digest = entry_hash(
            seq,
            prev,
            row.occurred_at,
            row.actor,
            row.source,
            row.action,
            row.outcome,
            row.target_user,
            row.source_ip,
            row.details,
        )
        connection.execute(
            sa.update(audit)
            .where(audit.c.id == row.id)
            .values(seq=seq, prev_hash=prev, hash=digest)
        )
        prev = digest

    with op.batch_alter_table("audit", schema=None) as batch_op:
        batch_op.alter_column("seq", existing_type=sa.Integer(), nullable=False)
        batch_op.alter_column("prev_hash", existing_type=sa.String(length=64), nullable=False)
        batch_op.alter_column("hash", existing_type=sa.String(length=64), nullable=False)
        batch_op.create_unique_constraint("uq_audit_seq", ["seq"])

    head = op.create_table(
        "audit_chain",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("last_hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.bulk_insert(head, [{"id": HEAD, "seq": seq, "last_hash": prev}])
    op.create_table(
        "audit_checkpoints",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("up_to_seq", sa.Integer(), nullable=False),
        sa.Column("last_hash", sa.String(length=64), nullable=False),
        sa.Column("pruned", sa.Integer(), nullable=False),
        sa.Column("before", UTCDateTime(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("created_by", sa.String(length=320), nullable=False),
        sa.Column("signature", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("up_to_seq"),
    )

    op.create_table(
        "audit_imports",
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("last_at", UTCDateTime(), nullable=True),
        sa.Column("imported_at", UTCDateTime(), nullable=True),
        sa.Column("imported", sa.Integer(), nullable=False),
        sa.Column("problem", sa.String(length=500), nullable=True),
        sa.PrimaryKeyConstraint("source"),
    )


def downgrade():
    op.drop_table("audit_imports")
    op.drop_table("audit_checkpoints")
    op.drop_table("audit_chain")
    with op.batch_alter_table("audit", schema=None) as batch_op:
        batch_op.drop_constraint("uq_audit_seq", type_="unique")
        batch_op.drop_column("hash")
        batch_op.drop_column("prev_hash")
        batch_op.drop_column("seq")
        batch_op.drop_constraint("uq_audit_source_external_id", type_="unique")
        batch_op.drop_column("external_id")
