"""Who may read /metrics: a scraper sending DASHBOARD_METRICS_TOKEN as a bearer token, or
anyone signed in (viewer or admin).

The endpoint is public to the central check (dashboard.auth.permissions), which would send a
scraper to the IdP's sign-in page; this is its own check, and a refusal is a 401 saying how
to authenticate, never a redirect. The token is compared in constant time and never named
back. A refused scrape is not audited: a misconfigured scraper would write an entry every few
seconds.
"""

from __future__ import annotations

import hmac

from flask import Response, current_app, request
from flask_login import current_user


def allowed() -> bool:
    """The bearer token first: a scraper has no session, and a request carrying the token
    need not look one up."""
    return bearer_matches() or current_user.is_authenticated


def bearer_matches() -> bool:
    token = current_app.extensions["dashboard.settings"].DASHBOARD_METRICS_TOKEN
    if token is None:
        return False  # no token configured: only signed-in users
    scheme, _, given = request.headers.get("Authorization", "").strip().partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        return False
    expected = token.get_secret_value().strip()
    return hmac.compare_digest(given.strip().encode(), expected.encode())


def refused() -> Response:
    response = Response(
        "Send Authorization: Bearer with the metrics token (DASHBOARD_METRICS_TOKEN), "
        "or sign in.\n",
        status=401,
        content_type="text/plain; charset=utf-8",
    )
    response.headers["WWW-Authenticate"] = 'Bearer realm="dashboard metrics"'
    return response
