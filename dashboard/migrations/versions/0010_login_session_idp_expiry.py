"""login sessions end when the IdP said: SessionNotOnOrAfter kept per session

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-15 09:00:00

A sign-in's assertion may carry the IdP's SessionNotOnOrAfter: the moment the IdP wants the
person to authenticate again (and their role read again). Sessions ended only at
DASHBOARD_SESSION_MAX_HOURS; now they also end then, when it comes first. Sessions already
open have none and keep ending as before.
"""

import sqlalchemy as sa
from alembic import op

from dashboard.timeutil import UTCDateTime

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("login_sessions") as batch:
        batch.add_column(sa.Column("idp_expires_at", UTCDateTime(), nullable=True))


def downgrade():
    with op.batch_alter_table("login_sessions") as batch:
        batch.drop_column("idp_expires_at")
