"""The Overview, the home page: what is true now and what happened last, from the database
alone (no remote call), and the health (liveness) and readiness endpoints."""

from __future__ import annotations

from collections import Counter
from functools import cache

from alembic.script import ScriptDirectory
from alembic.util import CommandError
from flask import Blueprint, current_app
from sqlalchemy import inspect, select, text

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


@bp.get("/readyz")
@public
def readyz() -> tuple[dict, int]:
    """Whether this process should get traffic: the database answers and its schema is the
    one this code was written for. A load balancer takes an instance out while it is not
    (an upgrade not run yet, a newer one run by another deploy); /healthz stays 200 then."""
    scripts = _migrations(current_app.extensions["migrate"].directory)
    expected = scripts.get_current_head()
    try:
        # Its own connection, and the catalog first: a database without tables answers "no
        # schema" instead of failing a query in the request's session.
        with db.engine.connect() as connection:
            current: tuple[str, ...] = ()
            if inspect(connection).has_table("alembic_version"):
                query = text("SELECT version_num FROM alembic_version ORDER BY version_num")
                current = tuple(connection.execute(query).scalars())
    except Exception as exc:  # any driver error means the same: the database is not there
        reason = f"the database does not answer ({type(exc).__name__})"
        return _not_ready(reason, None, expected)
    schema = ",".join(current) or None
    if current == (expected,):
        return {"status": "ready", "database": "ok", "schema": expected}, 200
    if schema is None:
        reason = "the database has no schema: run flask db upgrade"
    elif all(_known(scripts, revision) for revision in current):
        reason = f"the schema is at {schema}, not {expected}: run flask db upgrade"
    else:
        reason = f"the schema is at {schema}, newer than this code knows: deploy the newer code"
    return _not_ready(reason, schema, expected)


def _not_ready(reason: str, schema: str | None, expected: str) -> tuple[dict, int]:
    body = {"status": "not ready", "reason": reason, "schema": schema, "expected": expected}
    return body, 503


@cache
def _migrations(directory: str) -> ScriptDirectory:
    """The migration scripts, read once per process: they change only with a deploy."""
    return ScriptDirectory(directory)


def _known(scripts: ScriptDirectory, revision: str) -> bool:
    try:
        return scripts.get_revision(revision) is not None
    except CommandError:  # not among this version's migrations
        return False
