"""scheduled reconciles: one row per interval, claimed by the process that plans it

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07 00:40:00
"""

import sqlalchemy as sa
from alembic import op

from dashboard.timeutil import UTCDateTime

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "scheduled_reconciles",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("due_at", UTCDateTime(), nullable=False),
        sa.Column("every", sa.Integer(), nullable=False),
        sa.Column("apply", sa.String(length=8), nullable=False),
        sa.Column("claimed_by", sa.String(length=128), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("finished_at", UTCDateTime(), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("counts", sa.JSON(), nullable=False),
        sa.Column("message", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("due_at"),
    )


def downgrade():
    op.drop_table("scheduled_reconciles")
