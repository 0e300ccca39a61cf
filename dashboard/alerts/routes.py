"""Send a test alert (the button on Connections). Thin: the work is service.send_test."""

from __future__ import annotations

from flask import Blueprint, render_template, url_for
from flask_login import current_user

from dashboard.alerts import service
from dashboard.htmx import answer

bp = Blueprint("alerts", __name__, url_prefix="/alerts")


@bp.app_context_processor
def channels_for_pages() -> dict:
    # A function, so that only the page showing the channels (Connections) reads them.
    return {"alert_channels": service.channels_view}


@bp.post("/test")
def test():
    results = service.send_test(current_user.actor)
    if not results:
        message, category = "No alert channel is configured.", "error"
    elif all(r.ok for r in results):
        message, category = "Test alert sent. " + " ".join(r.message for r in results), "success"
    else:
        failed = "; ".join(f"{r.title}: {r.message}" for r in results if not r.ok)
        message, category = f"The test alert was not delivered everywhere. {failed}", "error"
    return answer(
        lambda: render_template("alerts/_channels.html", test_results=results),
        url_for("connections.page") + "#alerts",
        message,
        category,
    )
