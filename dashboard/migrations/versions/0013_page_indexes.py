"""indexes for the Audit and Users pages at a million entries and 100,000 people

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06 22:30:00

The Audit page's filters together, in id order (dashboard.audit.walks): actor with action
and source, and action with source, so that filters which rarely meet are found out by a
few index probes rather than by walking one filter's entries; and each month's entries by
id (dashboard.audit.spans), so that where a time range lies among the ids is a probe a
month.
"""

import sqlalchemy as sa
from alembic import op

from dashboard.audit.months import month_of

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

AUDIT = {
    "ix_audit_actor_action_source_id": ["actor", "action", "source", "id"],
    "ix_audit_action_source_id": ["action", "source", "id"],
}


def upgrade():
    for name, columns in AUDIT.items():
        op.create_index(name, "audit", columns, unique=False)
    op.create_index("ix_audit_month_id", "audit", [month_of(sa.column("occurred_at")), "id"])


def downgrade():
    op.drop_index("ix_audit_month_id", table_name="audit")
    for name in reversed(AUDIT):
        op.drop_index(name, table_name="audit")
