"""sync safety: one writer per person (claims), superseded items, what Apply re-read

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06 18:50:00

"""

import sqlalchemy as sa
from alembic import op

from dashboard.timeutil import UTCDateTime

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade():
    # A person's write in flight holds the row keyed by the person: a second writer (a run,
    # or a one-user write) cannot insert it until the first has recorded its outcome.
    op.create_table(
        "person_claims",
        sa.Column("key", sa.String(length=320), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("claimed_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    op.create_index("ix_person_claims_run_id", "person_claims", ["run_id"], unique=False)
    with op.batch_alter_table("sync_items", schema=None) as batch_op:
        batch_op.add_column(sa.Column("superseded_by", sa.Integer(), nullable=True))
    with op.batch_alter_table("sync_runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("note", sa.Text(), nullable=True))


def downgrade():
    with op.batch_alter_table("sync_runs", schema=None) as batch_op:
        batch_op.drop_column("note")
    with op.batch_alter_table("sync_items", schema=None) as batch_op:
        batch_op.drop_column("superseded_by")
    op.drop_index("ix_person_claims_run_id", table_name="person_claims")
    op.drop_table("person_claims")
