"""audit recorded_at: when the dashboard recorded each entry, what retention prunes by

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07 10:00:00

Until now a prune went by `occurred_at`, which for imported OneLogin and Workato events is
their source's (old) time; from here on the write path sets `recorded_at` and a prune goes by
it (dashboard.audit.retention). It is not in the entry's hash, so existing hashes stand.

Entries already here never had their recording time kept, so it is inferred, without ever
making an entry look older than it is (a prune must not take an entry recorded inside the
retention window):

- the dashboard's own entries (no `external_id`) were given `occurred_at` as they were
  written: that is when they were recorded;
- an imported entry was recorded after the entries before it in the chain and before those
  after it. It gets the time of the next own entry in the chain (the import's own
  `audit.import` entry follows its events at once), so it is never taken before that entry;
  imported entries after the last own entry get the time of this migration.

Done as one pass: the smallest own `occurred_at` from each entry to the chain's end (a
window over seq, newest first). That makes the column monotone in chain order, as the write
path now keeps it; the one cost is that an own entry whose time was a moment ahead of a
later one's (two writers racing) takes the later time, and retention keeps own entries by
their hashed occurred_at as well. Rather than the running maximum of occurred_at along seq,
which would date an imported batch by the entry before it (perhaps hours before the import)
and let a source's clock in the future hold back every later entry. Rows inserted by other
means later (the benchmark's bulk load) get the database's clock by default.
"""

import sqlalchemy as sa
from alembic import op

from dashboard.timeutil import UTCDateTime, utcnow

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

BACKFILL = sa.text(
    """
    UPDATE audit SET recorded_at = COALESCE(later.own, :now)
    FROM (
        SELECT id, MIN(CASE WHEN external_id IS NULL THEN occurred_at END) OVER (
            ORDER BY seq DESC ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
        ) AS own
        FROM audit
    ) AS later
    WHERE audit.id = later.id
    """
)


def upgrade():
    with op.batch_alter_table("audit", schema=None) as batch_op:
        batch_op.add_column(sa.Column("recorded_at", UTCDateTime(), nullable=True))
    op.get_bind().execute(BACKFILL.bindparams(sa.bindparam("now", utcnow(), type_=UTCDateTime())))
    with op.batch_alter_table("audit", schema=None) as batch_op:
        batch_op.alter_column(
            "recorded_at",
            existing_type=UTCDateTime(),
            nullable=False,
            server_default=sa.func.current_timestamp(),
        )
        batch_op.create_index("ix_audit_recorded_at", ["recorded_at"], unique=False)


def downgrade():
    with op.batch_alter_table("audit", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_recorded_at")
        batch_op.drop_column("recorded_at")
