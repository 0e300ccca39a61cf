"""runs taken over: how many times another process resumed a run whose own stopped

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-07 01:20:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("sync_runs") as batch:
        batch.add_column(
            sa.Column("takeovers", sa.Integer(), nullable=False, server_default=sa.text("0"))
        )


def downgrade():
    with op.batch_alter_table("sync_runs") as batch:
        batch.drop_column("takeovers")
