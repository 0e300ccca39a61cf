"""the Audit page in time order (filled in by the audit work)

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07 00:40:00
"""

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
