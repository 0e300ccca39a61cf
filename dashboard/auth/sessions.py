"""Signed-in browser sessions: created at sign-in, checked on every request, ended at
sign-out or expiry. The cookie holds a random token; the database holds its hash, so a
session can be ended server-side and a copied cookie dies with it.

A session ends when idle for DASHBOARD_SESSION_IDLE_MINUTES (requests a page makes by itself
on a timer are not activity), DASHBOARD_SESSION_MAX_HOURS after sign-in, or at the IdP's
SessionNotOnOrAfter, whichever comes first; the role it carries was read from the sign-in's
assertion, so it is never older than that.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from flask import current_app

from dashboard.auth.models import Account, LoginSession
from dashboard.extensions import db
from dashboard.timeutil import utcnow

# Writing last_seen_at on every request would make every page view a write.
TOUCH_INTERVAL = timedelta(seconds=60)


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _limits() -> tuple[timedelta, timedelta]:
    settings = current_app.extensions["dashboard.settings"]
    return (
        timedelta(minutes=settings.DASHBOARD_SESSION_IDLE_MINUTES),
        timedelta(hours=settings.DASHBOARD_SESSION_MAX_HOURS),
    )


def start(
    account: Account,
    role: str,
    name_id: str,
    session_index: str | None,
    idp_expires_at: datetime | None = None,
) -> LoginSession:
    token = secrets.token_urlsafe(32)
    login = LoginSession(
        token_hash=_hash(token),
        account=account,
        role=role,
        name_id=name_id,
        session_index=session_index,
        idp_expires_at=idp_expires_at,
    )
    db.session.add(login)
    login.token = token
    account.login = login
    return login


def resume(token: str, activity: bool = True) -> tuple[Account | None, str | None]:
    """The account behind a cookie's token, or None and why it is no longer valid.

    `activity`: whether this request is someone using the dashboard (it keeps the session
    from going idle), not a page polling in the background.
    """
    login = db.session.scalar(db.select(LoginSession).filter_by(token_hash=_hash(token)))
    if login is None:
        return None, "unknown"
    now = utcnow()
    reason = login.expiry_reason(now, *_limits())
    if reason is not None:
        if login.ended_at is None:
            end(login, reason)
            db.session.commit()
        return None, reason
    if activity and now - login.last_seen_at >= TOUCH_INTERVAL:
        login.last_seen_at = now
        db.session.commit()
    login.token = token
    login.account.login = login
    return login.account, None


def end(login: LoginSession, reason: str) -> None:
    login.ended_at = utcnow()
    login.end_reason = reason


def end_matching(name_id: str, session_indexes: list[str], reason: str) -> list[LoginSession]:
    """End the open sessions an IdP's LogoutRequest names: those of `name_id`, and of those
    only the ones with a listed SessionIndex when it lists any (SAML core 3.7.3.2)."""
    query = db.select(LoginSession).where(
        LoginSession.name_id == name_id, LoginSession.ended_at.is_(None)
    )
    if session_indexes:
        query = query.where(LoginSession.session_index.in_(session_indexes))
    ended = list(db.session.scalars(query))
    for login in ended:
        end(login, reason)
    return ended
