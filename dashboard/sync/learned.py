"""The SCIM request rate the last run settled at, kept between runs (and shared by every
process) so the next run starts there instead of finding Workato's limit again. It belongs
to the SCIM base URL it was learned from: a connection moved elsewhere starts afresh."""

from __future__ import annotations

from dashboard.connections.models import SCIM, ApiLimit
from dashboard.extensions import db
from dashboard.timeutil import utcnow


def rate(base_url: str) -> float | None:
    row = db.session.get(ApiLimit, SCIM)
    return row.rate if row is not None and row.base_url == base_url else None


def learned() -> ApiLimit | None:
    """The row as kept (its rate, its base URL, when), for the pages and `sync status`."""
    row = db.session.get(ApiLimit, SCIM)
    return row if row is not None and row.rate is not None else None


def remember(base_url: str, value: float) -> None:
    """Keep `value` as the learned rate. The caller commits."""
    row = db.session.get(ApiLimit, SCIM)
    if row is None:
        row = ApiLimit(api=SCIM, base_url=base_url)
        db.session.add(row)
    row.base_url, row.rate, row.updated_at = base_url, round(value, 2), utcnow()
