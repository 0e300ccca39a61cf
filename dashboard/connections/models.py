"""The three connections the dashboard holds. Secrets only ever as ciphertext."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from dashboard.extensions import db
from dashboard.timeutil import UTCDateTime

ONELOGIN = "onelogin"
SCIM = "scim"
WORKATO_API = "workato_api"
KINDS = (ONELOGIN, SCIM, WORKATO_API)
SECRET_NAMES = {ONELOGIN: "client secret", SCIM: "SCIM token", WORKATO_API: "API token"}


class Connection(db.Model):
    __tablename__ = "connections"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), unique=True)
    base_url: Mapped[str] = mapped_column(String(512))
    # OneLogin only: the API client id (not secret) and the Workato app's id in OneLogin.
    client_id: Mapped[str | None] = mapped_column(String(256))
    app_id: Mapped[int | None]
    secret_ciphertext: Mapped[str | None] = mapped_column(Text)
    secret_last4: Mapped[str | None] = mapped_column(String(4))
    secret_saved_by: Mapped[str | None] = mapped_column(String(320))
    secret_saved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    saved_by: Mapped[str] = mapped_column(String(320))
    saved_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # SCIM only: "Disable SCIM" stops every SCIM write from the dashboard.
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    disabled_by: Mapped[str | None] = mapped_column(String(320))
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_test_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_test_ok: Mapped[bool | None] = mapped_column(Boolean)
    last_test_message: Mapped[str | None] = mapped_column(Text)

    @property
    def has_secret(self) -> bool:
        return self.secret_ciphertext is not None


class ApiLimit(db.Model):
    """What the dashboard has learned about one API's rate limit, kept between runs and
    shared by every process. `base_url` says which service the figures are for: a connection
    moved to another service starts afresh."""

    __tablename__ = "api_limits"

    api: Mapped[str] = mapped_column(String(16), primary_key=True)  # SCIM or ONELOGIN
    base_url: Mapped[str] = mapped_column(String(512))
    # SCIM: the request rate (a second) the last run settled at, and when.
    rate: Mapped[float | None]
    # OneLogin: its last X-RateLimit-Limit / -Remaining, and when the hour's budget resets.
    limit: Mapped[int | None]
    remaining: Mapped[int | None]
    resets_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
