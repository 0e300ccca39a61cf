"""The Audit page's *Import* button: OneLogin's events and Workato's activity, imported now."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, url_for
from flask_login import current_user

from dashboard.history import imports

bp = Blueprint("history", __name__)


@bp.post("/audit/import")
def import_now():
    """OneLogin's events and Workato's activity, imported now (admins; also after each run)."""
    report = imports.import_all(current_user.actor)
    for source in report.sources:
        if source.problem:
            flash(f"{source.source}: the import failed: {source.problem}", "error")
        elif source.configured:
            flash(
                f"{source.source}: {source.added} added, {source.skipped} already here.", "success"
            )
    return redirect(url_for("audit.page"), 303)
