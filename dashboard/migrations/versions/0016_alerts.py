"""alerts: the state of each alert condition, the outbox of messages, named leases

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07 00:40:00

Every web process and `flask sync worker` watches the same conditions: a transition is
claimed by a conditional write on alert_states.version, so each is queued once; messages wait
in alert_messages until every channel took them; alert_claims holds who delivers and when
the audit chain may next be verified. sync_runs gets an index on finished_at: every watch
reads the latest finished run.
"""

import sqlalchemy as sa
from alembic import op

from dashboard.timeutil import UTCDateTime

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "alert_states",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("is_open", sa.Boolean(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("opened_at", UTCDateTime(), nullable=True),
        sa.Column("changed_at", UTCDateTime(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("link", sa.String(length=512), nullable=False),
        sa.Column("facts", sa.JSON(), nullable=False),
        sa.Column("names", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    op.create_table(
        "alert_messages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", UTCDateTime(), nullable=False),
        sa.Column("delivered", sa.JSON(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("capped_since", UTCDateTime(), nullable=True),
        sa.Column("sent_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_alert_messages_state_next_attempt_at",
        "alert_messages",
        ["state", "next_attempt_at"],
        unique=False,
    )
    op.create_index("ix_alert_messages_sent_at", "alert_messages", ["sent_at"], unique=False)
    op.create_index(
        "ix_alert_messages_key_sent_at", "alert_messages", ["key", "sent_at"], unique=False
    )
    op.create_table(
        "alert_claims",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("holder", sa.String(length=128), nullable=False),
        sa.Column("until", UTCDateTime(), nullable=False),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("name"),
    )
    # The latest finished run, read by every watch (dashboard.alerts.models says why).
    op.create_index("ix_sync_runs_finished_at", "sync_runs", ["finished_at", "id"], unique=False)


def downgrade():
    op.drop_index("ix_sync_runs_finished_at", table_name="sync_runs")
    op.drop_table("alert_claims")
    op.drop_index("ix_alert_messages_key_sent_at", table_name="alert_messages")
    op.drop_index("ix_alert_messages_sent_at", table_name="alert_messages")
    op.drop_index("ix_alert_messages_state_next_attempt_at", table_name="alert_messages")
    op.drop_table("alert_messages")
    op.drop_table("alert_states")
