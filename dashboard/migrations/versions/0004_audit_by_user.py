"""audit entries by user, for a user's timeline

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30 07:45:00

"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade():
    # Each sync item writes an entry, so the table grows by the directory's size per run; a
    # user's page reads their newest entries through this index, not the whole table.
    with op.batch_alter_table("audit", schema=None) as batch_op:
        batch_op.create_index("ix_audit_target_user_id", ["target_user", "id"], unique=False)


def downgrade():
    with op.batch_alter_table("audit", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_target_user_id")
