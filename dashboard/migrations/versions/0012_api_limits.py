"""what the dashboard learns about rate limits: Workato's SCIM rate, OneLogin's hourly budget

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06 21:40:00

`api_limits` keeps, per API, the SCIM request rate the last run settled at (the next run
starts there) and OneLogin's last announced budget. `sync_runs.rate` is the rate a run sends
at, written with its heartbeat, for the run page.
"""

import sqlalchemy as sa
from alembic import op

from dashboard.timeutil import UTCDateTime

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "api_limits",
        sa.Column("api", sa.String(length=16), nullable=False),
        sa.Column("base_url", sa.String(length=512), nullable=False),
        sa.Column("rate", sa.Double(), nullable=True),
        sa.Column("limit", sa.Integer(), nullable=True),
        sa.Column("remaining", sa.Integer(), nullable=True),
        sa.Column("resets_at", UTCDateTime(), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("api"),
    )
    with op.batch_alter_table("sync_runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("rate", sa.Double(), nullable=True))


def downgrade():
    with op.batch_alter_table("sync_runs", schema=None) as batch_op:
        batch_op.drop_column("rate")
    op.drop_table("api_limits")
