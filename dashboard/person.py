"""The `people` table: the last-seen state of every person on both sides, written by each plan
and run (only through dashboard.sync.people) and read by the pages and the checklist.

Pages read this table, never the remote APIs (DESIGN.md §6, "Identity"). A person is keyed by
userName as the template renders it, case-folded (`key`), and carries the OneLogin user id
once known and the SCIM id once Workato holds the user. It sits below every feature so that
each can read it without importing the sync.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from dashboard.extensions import db
from dashboard.timeutil import UTCDateTime


class Person(db.Model):
    __tablename__ = "people"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(320), unique=True)
    user_name: Mapped[str] = mapped_column(String(320))
    display_name: Mapped[str] = mapped_column(String(256), default="")
    email: Mapped[str | None] = mapped_column(String(320))
    onelogin_id: Mapped[int | None] = mapped_column(unique=True)
    onelogin_status: Mapped[int | None]
    has_app: Mapped[bool] = mapped_column(Boolean, default=False)
    # Seen with the app in some sync: losing it later suspends the Workato account.
    had_app: Mapped[bool] = mapped_column(Boolean, default=False)
    scim_id: Mapped[str | None] = mapped_column(String(256))
    workato_active: Mapped[bool | None] = mapped_column(Boolean)
    role: Mapped[str | None] = mapped_column(String(128))  # workato_role, for the filter
    roles: Mapped[dict] = mapped_column(JSON, default=dict)
    # From the last plan: in_sync, drift, not_provisioned, suspended, failed or orphaned;
    # `pending` while an applied run has yet to send this person's write.
    state: Mapped[str] = mapped_column(String(32))
    action: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text, default="")
    changes: Mapped[dict] = mapped_column(JSON, default=dict)
    danger: Mapped[str | None] = mapped_column(Text)
    orphan_kind: Mapped[str | None] = mapped_column(String(16))
    last_error: Mapped[str | None] = mapped_column(Text)
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        Index("ix_people_state_key", "state", "key"),
        Index("ix_people_role_key", "role", "key"),
        # The Users page at 100,000 people (dashboard.users.service, migration 0013): a state
        # and a role together, in key order; the people with a loud warning, counted; when
        # the newest row was read.
        Index("ix_people_state_role_key", "state", "role", "key"),
        Index(
            "ix_people_danger_key",
            "key",
            sqlite_where=text("danger IS NOT NULL"),
            postgresql_where=text("danger IS NOT NULL"),
        ),
        Index("ix_people_seen_at", "seen_at"),
    )


# The search (any part of the name, email or display name, ignoring case: ILIKE) on
# PostgreSQL: their trigrams, so a search of three characters or more reads the people who
# may match, not all of them. Needs the pg_trgm extension, which migration 0013 enables
# where the database allows; without it a search reads every person.
Index(
    "ix_people_search",
    Person.user_name,
    Person.email,
    Person.display_name,
    postgresql_using="gin",
    postgresql_ops={name: "gin_trgm_ops" for name in ("user_name", "email", "display_name")},
    info={"only_on": "postgresql"},  # what tests/test_health_and_schema.py compares
).ddl_if(dialect="postgresql")

# The search on SQLite reads every person: off this index, which holds in key order all that
# it and the state and role filters look at, it stops after a page when many match, and
# reads no row but the page's.
Index(
    "ix_people_key_search",
    Person.key,
    Person.state,
    Person.role,
    Person.user_name,
    Person.email,
    Person.display_name,
    info={"only_on": "sqlite"},
).ddl_if(dialect="sqlite")
