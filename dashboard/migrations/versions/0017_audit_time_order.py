"""the Audit page in time order: its indexes end in (occurred_at, id)

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07 00:40:00

The Audit page lists entries by when they happened, (occurred_at, id) newest first, so that
OneLogin's history imported after a run sits where it happened rather than above the run
(dashboard.audit.walks). Each index it walks, a filter's column(s) then id, becomes the same
column(s) then (occurred_at, id): a filter's entries are read in the page's order, and a
time range and the keyset are one range of each. The time index (occurred_at, id) stays;
(month, id), which turned a time range into ids, is no longer needed. The user's timeline
(target_user, newest first by time) reads the new user index too.
"""

import sqlalchemy as sa
from alembic import op

from dashboard.audit.months import month_of

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

# Old index -> (new index, its columns).
REPLACED = {
    "ix_audit_target_user_id": ("ix_audit_target_user_occurred_at_id", ["target_user"]),
    "ix_audit_actor_id": ("ix_audit_actor_occurred_at_id", ["actor"]),
    "ix_audit_action_id": ("ix_audit_action_occurred_at_id", ["action"]),
    "ix_audit_source_id": ("ix_audit_source_occurred_at_id", ["source"]),
    "ix_audit_actor_action_source_id": (
        "ix_audit_actor_action_source_occurred_at_id",
        ["actor", "action", "source"],
    ),
    "ix_audit_action_source_id": ("ix_audit_action_source_occurred_at_id", ["action", "source"]),
}


def upgrade():
    for old, (new, columns) in REPLACED.items():
        op.create_index(new, "audit", [*columns, "occurred_at", "id"], unique=False)
        op.drop_index(old, table_name="audit")
    op.drop_index("ix_audit_month_id", table_name="audit")


def downgrade():
    op.create_index("ix_audit_month_id", "audit", [month_of(sa.column("occurred_at")), "id"])
    for old, (new, columns) in reversed(REPLACED.items()):
        op.create_index(old, "audit", [*columns, "id"], unique=False)
        op.drop_index(new, table_name="audit")
