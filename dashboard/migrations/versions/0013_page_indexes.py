"""indexes for the Audit and Users pages at a million entries and 100,000 people

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06 22:30:00

The Audit page's filters together, in id order (dashboard.audit.walks): actor with action
and source, and action with source, so that filters which rarely meet are found out by a
few index probes rather than by walking one filter's entries; and each month's entries by
id (dashboard.audit.spans), so that where a time range lies among the ids is a probe a
month.

The Users page (dashboard.users.service): a state with a role in key order, the people with
a loud warning, the newest row's time; the search's columns in key order on SQLite; and on
PostgreSQL, the search's trigrams (pg_trgm, enabled here when the database allows it: a
trusted extension, which the database's owner may create). Without it the search still
finds the same people, reading all of them.
"""

import logging

import sqlalchemy as sa
from alembic import op

from dashboard.audit.months import month_of

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

log = logging.getLogger("alembic.runtime.migration")

AUDIT = {
    "ix_audit_actor_action_source_id": ["actor", "action", "source", "id"],
    "ix_audit_action_source_id": ["action", "source", "id"],
}
SEARCHED = ("user_name", "email", "display_name")


def upgrade():
    for name, columns in AUDIT.items():
        op.create_index(name, "audit", columns, unique=False)
    op.create_index("ix_audit_month_id", "audit", [month_of(sa.column("occurred_at")), "id"])

    op.create_index("ix_people_state_role_key", "people", ["state", "role", "key"])
    op.create_index(
        "ix_people_danger_key",
        "people",
        ["key"],
        sqlite_where=sa.text("danger IS NOT NULL"),
        postgresql_where=sa.text("danger IS NOT NULL"),
    )
    op.create_index("ix_people_seen_at", "people", ["seen_at"])
    if op.get_bind().dialect.name == "sqlite":
        op.create_index("ix_people_key_search", "people", ["key", "state", "role", *SEARCHED])
    if op.get_bind().dialect.name == "postgresql" and _trigrams():
        op.create_index(
            "ix_people_search",
            "people",
            list(SEARCHED),
            postgresql_using="gin",
            postgresql_ops=dict.fromkeys(SEARCHED, "gin_trgm_ops"),
        )


def _trigrams() -> bool:
    """Whether pg_trgm is there, creating it when the database has it and allows us."""
    bind = op.get_bind()
    if not bind.scalar(sa.text("SELECT count(*) FROM pg_extension WHERE extname = 'pg_trgm'")):
        try:
            with bind.begin_nested():
                bind.execute(sa.text("CREATE EXTENSION IF NOT EXISTS pg_trgm"))
        except sa.exc.DBAPIError as refused:
            log.warning(
                "pg_trgm could not be enabled (%s): the Users page's search will read every "
                "person. A superuser can run CREATE EXTENSION pg_trgm, then "
                "flask db downgrade 0012 && flask db upgrade.",
                str(refused.orig).strip().splitlines()[0],
            )
            return False
    return True


def downgrade():
    op.drop_index("ix_people_search", table_name="people", if_exists=True)
    op.drop_index("ix_people_key_search", table_name="people", if_exists=True)
    op.drop_index("ix_people_seen_at", table_name="people")
    op.drop_index("ix_people_danger_key", table_name="people")
    op.drop_index("ix_people_state_role_key", table_name="people")
    op.drop_index("ix_audit_month_id", table_name="audit")
    for name in reversed(AUDIT):
        op.drop_index(name, table_name="audit")
