"""Who may use the dashboard, how they proved it, and the SAML state kept server-side."""

from __future__ import annotations

from datetime import datetime, timedelta

from flask_login import UserMixin
from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from dashboard.extensions import db
from dashboard.timeutil import UTCDateTime, utcnow

ADMIN = "admin"
VIEWER = "viewer"


class Account(UserMixin, db.Model):
    """The dashboard's own record of a person who has signed in. Never holds a password."""

    __tablename__ = "accounts"

    id: Mapped[int] = mapped_column(primary_key=True)
    display_name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(320))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_sign_in_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    identities: Mapped[list[SamlIdentity]] = relationship(back_populates="account")

    # Set by the session loader for the request in hand; flask-login keys the browser
    # session on the login session's token, not on the account id.
    login = None  # the LoginSession of this request (not a column)

    def get_id(self) -> str:
        assert self.login is not None and self.login.token is not None
        return self.login.token

    @property
    def role(self) -> str | None:
        return self.login.role if self.login else None

    @property
    def is_admin(self) -> bool:
        return self.role == ADMIN

    @property
    def actor(self) -> str:
        """How the audit trail names this person."""
        return self.email or (self.login.name_id if self.login else f"account:{self.id}")


class SamlIdentity(db.Model):
    """An identity asserted by an IdP, linked to one account (kept apart from it)."""

    __tablename__ = "saml_identities"
    __table_args__ = (UniqueConstraint("provider", "name_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    provider: Mapped[str] = mapped_column(String(512))  # the IdP's entity id
    name_id: Mapped[str] = mapped_column(String(512))
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    account: Mapped[Account] = relationship(back_populates="identities")


class LoginSession(db.Model):
    """One signed-in browser. The cookie carries a random token; only its hash is stored."""

    __tablename__ = "login_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    account: Mapped[Account] = relationship()
    # The role granted by the assertion of this sign-in; re-read at every sign-in.
    role: Mapped[str] = mapped_column(String(16))
    name_id: Mapped[str] = mapped_column(String(512))
    session_index: Mapped[str | None] = mapped_column(String(512))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    end_reason: Mapped[str | None] = mapped_column(String(32))
    # The assertion's SessionNotOnOrAfter: the IdP wants a fresh sign-in (and the role read
    # again) by then, even before DASHBOARD_SESSION_MAX_HOURS.
    idp_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    # The plain token, only in memory for the request that created or loaded it.
    token = None  # str, not a column

    def expiry_reason(self, now: datetime, idle: timedelta, lifetime: timedelta) -> str | None:
        if self.ended_at is not None:
            return self.end_reason or "ended"
        if now - self.created_at >= lifetime:
            return "lifetime"
        if self.idp_expires_at is not None and now >= self.idp_expires_at:
            return "idp_session_expired"
        if now - self.last_seen_at >= idle:
            return "idle"
        return None


class SamlRequest(db.Model):
    """A request this server sent to the IdP, so that the answer can be matched to it.

    Kept in the database, not the browser session: the IdP's POST to the ACS is cross-site,
    and browsers send no SameSite=Lax cookie with it. The browser that asked is recognised by
    a cookie of its own (dashboard.auth.binding).
    """

    __tablename__ = "saml_requests"

    id: Mapped[str] = mapped_column(String(256), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # authn or logout
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    consumed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class SeenAssertion(db.Model):
    """Assertion ids already accepted, kept until they expire, so none is accepted twice."""

    __tablename__ = "saml_seen_assertions"

    id: Mapped[str] = mapped_column(String(256), primary_key=True)
    not_on_or_after: Mapped[datetime] = mapped_column(UTCDateTime)
