from __future__ import annotations

from collections import Counter

from flask import Blueprint
from sqlalchemy import text

from dashboard.auth.permissions import public
from dashboard.connections import service as connections
from dashboard.extensions import db
from dashboard.htmx import render
from dashboard.pages.safety import keys_beside_database
from dashboard.setup import service as setup

bp = Blueprint("pages", __name__)


@bp.get("/")
def overview() -> str:
    """A summary of what is stored: no remote call."""
    checklist = setup.checklist()
    states = Counter(item.state for item in checklist)
    return render(
        "pages/overview.html",
        connections=connections.all_by_kind(),
        titles=connections.TITLES,
        states=states,
        failing=[item for item in checklist if item.state == "failing"],
        keys_beside_database=keys_beside_database(),
    )


@bp.get("/healthz")
@public
def healthz() -> tuple[dict, int]:
    try:
        db.session.execute(text("SELECT 1"))
    except Exception as exc:  # any driver error means the same: not healthy
        return {"status": "unavailable", "database": type(exc).__name__}, 503
    return {"status": "ok", "database": "ok"}, 200
