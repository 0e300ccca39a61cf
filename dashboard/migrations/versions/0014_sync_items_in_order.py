"""a run's unfinished items read in id order from an index

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06 22:50:00

The runner reads a run's unfinished items 500 at a time in id order. With only (run_id,
status) to go by, SQLite gathered and sorted every unfinished item of the run for each batch:
a 100,000-item run sorted some 10 million rows in all. (run_id, id) reads each batch in order.
"""

from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade():
    op.create_index("ix_sync_items_run_id_id", "sync_items", ["run_id", "id"], unique=False)


def downgrade():
    op.drop_index("ix_sync_items_run_id_id", table_name="sync_items")
