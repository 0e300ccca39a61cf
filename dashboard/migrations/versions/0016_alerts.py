"""alerts: the state of each alert condition (filled in by the alerts work)

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07 00:40:00
"""

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
