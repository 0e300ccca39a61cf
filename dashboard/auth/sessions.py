"""Signed-in browser sessions: created at sign-in, checked on every request, ended at
sign-out or expiry. The cookie holds a random token; the database holds its hash, so a
session can be ended server-side and a copied cookie dies with it."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

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


def start(account: Account, role: str, name_id: str, session_index: str | None) -> LoginSession:
    token = secrets.token_urlsafe(32)
    login = LoginSession(
        token_hash=_hash(token),
        account=account,
        role=role,
        name_id=name_id,
        session_index=session_index,
    )
    db.session.add(login)
    login.token = token
    account.login = login
    return login


def resume(token: str) -> tuple[Account | None, str | None]:
    """The account behind a cookie's token, or None and why it is no longer valid."""
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
    if now - login.last_seen_at >= TOUCH_INTERVAL:
        login.last_seen_at = now
        db.session.commit()
    login.token = token
    login.account.login = login
    return login.account, None


def end(login: LoginSession, reason: str) -> None:
    login.ended_at = utcnow()
    login.end_reason = reason
