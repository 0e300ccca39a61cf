"""What the pages and commands ask of the alerts: the open ones (the Overview), which
channels are set up (Connections, without their URLs), and a test alert sent now."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from flask import current_app
from sqlalchemy import func, select

from dashboard import audit
from dashboard.alerts import messages
from dashboard.alerts.channels import TITLES, Channels, Undelivered
from dashboard.alerts.models import PENDING, AlertMessage, AlertState
from dashboard.extensions import db
from dashboard.timeutil import utcnow


@dataclass(frozen=True)
class OpenAlert:
    key: str
    title: str
    text: str
    opened_at: datetime
    link: str  # a path in the dashboard


@dataclass(frozen=True)
class ChannelResult:
    channel: str  # webhook or email
    title: str
    ok: bool
    message: str


@dataclass(frozen=True)
class ChannelsView:
    """The Connections page's view of the channels: never a URL, host or password."""

    webhook: bool
    email_to: tuple[str, ...]
    email_from: str | None
    smtp_security: str | None
    waiting: int  # messages not yet delivered everywhere
    last_error: str | None  # why the newest of them failed, if it did

    @property
    def configured(self) -> bool:
        return self.webhook or self.smtp_security is not None


def channels() -> Channels:
    return Channels.from_settings(current_app.extensions["dashboard.settings"])


def open_alerts() -> list[OpenAlert]:
    """Every open alert, the newest first (no remote call)."""
    rows = db.session.scalars(
        select(AlertState).where(AlertState.is_open).order_by(AlertState.opened_at.desc())
    )
    return [OpenAlert(r.key, r.title, r.text, r.opened_at, r.link) for r in rows]


def channels_view() -> ChannelsView:
    configured = channels()
    table = AlertMessage.__table__
    waiting = db.session.scalar(select(func.count()).where(table.c.state == PENDING))
    last_error = db.session.scalar(
        select(table.c.last_error)
        .where(table.c.state == PENDING, table.c.last_error.is_not(None))
        .order_by(table.c.id.desc())
        .limit(1)
    )
    return ChannelsView(
        webhook=configured.webhook_url is not None,
        email_to=configured.email_to,
        email_from=configured.email_from,
        smtp_security=configured.smtp_security,
        waiting=waiting or 0,
        last_error=last_error,
    )


def send_test(actor: str) -> list[ChannelResult]:
    """Send a test alert through every configured channel now (no rate limit: an admin asked)
    and audit it; one result per channel, empty when none is configured."""
    configured = channels()
    message = messages.test(actor)
    results = []
    for name in configured.names:
        try:
            configured.send(name, message)
        except Undelivered as exc:
            results.append(ChannelResult(name, TITLES[name], False, exc.reason))
        else:
            results.append(ChannelResult(name, TITLES[name], True, _sent_to(name, configured)))
    if results:
        audit.record(
            "alert.test",
            actor=actor,
            outcome="success" if all(r.ok for r in results) else "failed",
            details={
                "channels": {
                    r.channel: "sent" if r.ok else f"failed: {r.message}" for r in results
                },
                "at": utcnow().isoformat(),
            },
        )
        db.session.commit()
    return results


def _sent_to(name: str, configured: Channels) -> str:
    if name == "webhook":
        return "The webhook took the test alert."
    return f"The SMTP server took the test alert for {', '.join(configured.email_to)}."
