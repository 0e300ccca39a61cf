"""GET /metrics: Prometheus text, computed from the database at scrape time."""

from __future__ import annotations

from flask import Blueprint, Response
from prometheus_client import CollectorRegistry, generate_latest

from dashboard.auth.permissions import background_poll, public
from dashboard.metrics import access, readings
from dashboard.metrics.collector import DatabaseCollector

bp = Blueprint("metrics", __name__)

# The classic text format every Prometheus reads (prometheus_client's own "latest" is now
# 1.0.0, which older servers do not know); our names need none of its escaping.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


@bp.get("/metrics")
@public  # checks its own access (dashboard.metrics.access): a scraper gets a 401, not SSO
@background_poll  # a signed-in user's scrape is not activity that keeps a session alive
def metrics() -> Response:
    if not access.allowed():
        return access.refused()
    # A registry for this scrape alone: nothing is counted in the process between scrapes,
    # so every process and instance answers from the same database the same way.
    registry = CollectorRegistry()
    registry.register(DatabaseCollector(readings.read))
    return Response(generate_latest(registry), content_type=CONTENT_TYPE)
