"""audit search indexes: by actor, action and source, each in id order

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30 08:40:00

"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

# The Audit page shows entries newest first by id and filters them by user, actor, action,
# source and time. With (column, id) an equality filter walks its index backwards from the
# keyset and stops after one page, however large the table (dashboard.audit.search). The
# user's (0004) and the time's (0001) indexes exist already.
INDEXES = {
    "ix_audit_actor_id": ["actor", "id"],
    "ix_audit_action_id": ["action", "id"],
    "ix_audit_source_id": ["source", "id"],
}


def upgrade():
    with op.batch_alter_table("audit", schema=None) as batch_op:
        for name, columns in INDEXES.items():
            batch_op.create_index(name, columns, unique=False)


def downgrade():
    with op.batch_alter_table("audit", schema=None) as batch_op:
        for name in reversed(INDEXES):
            batch_op.drop_index(name)
