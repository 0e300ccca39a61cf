"""The Overview, the home page: what is true now and what happened last, from the database
alone (no remote call), and the health endpoint."""

from __future__ import annotations

from collections import Counter

from flask import Blueprint
from sqlalchemy import select, text

from dashboard.alerts import service as alerts
from dashboard.audit.models import AuditEntry
from dashboard.auth.permissions import public
from dashboard.connections import service as connections
from dashboard.extensions import db
from dashboard.htmx import render
from dashboard.pages.safety import keys_beside_database
from dashboard.setup import service as setup
from dashboard.sync import runs
from dashboard.users import service as users

bp = Blueprint("pages", __name__)
RECENT_ENTRIES = 8


@bp.get("/")
def overview() -> str:
    checklist = setup.checklist()
    return render(
        "pages/overview.html",
        connections=connections.all_by_kind(),
        titles=connections.TITLES,
        states=Counter(item.state for item in checklist),
        failing=[item for item in checklist if item.state == "failing"],
        keys_beside_database=keys_beside_database(),
        counts=users.state_counts(),
        attention=users.needing_attention(),
        active_run=runs.active_run(),
        last_run=runs.latest(),
        alerts=alerts.open_alerts(),
        recent=_recent_entries(),
    )


def _recent_entries() -> list[AuditEntry]:
    """The newest entries by when they happened, as the Audit page orders them."""
    query = select(AuditEntry).order_by(AuditEntry.occurred_at.desc(), AuditEntry.id.desc())
    return list(db.session.scalars(query.limit(RECENT_ENTRIES)))


@bp.get("/healthz")
@public
def healthz() -> tuple[dict, int]:
    try:
        db.session.execute(text("SELECT 1"))
    except Exception as exc:  # any driver error means the same: not healthy
        return {"status": "unavailable", "database": type(exc).__name__}, 503
    return {"status": "ok", "database": "ok"}, 200
