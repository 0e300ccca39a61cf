"""How often one client address may knock on the sign-in endpoints.

`/saml/login` stores a pending request, and `/saml/acs` and `/saml/sls` may write audit
entries: without a limit anyone could fill the database and the audit trail. Flask-Limiter
counts requests to the three per client address (one shared budget,
`DASHBOARD_SIGNIN_RATE_LIMIT`) before any view runs, so a refused request writes nothing to
the database; its answer is a 429 page that says when to try again, with `Retry-After`.

The counts live in `DASHBOARD_RATELIMIT_STORAGE_URL`: this process's memory by default, or
Redis, where every process and instance sharing the URL shares the counts. Each app gets its
own Limiter (Flask-Limiter keeps its storage on the instance, not on the app). While Redis
cannot be reached, each process counts in memory, so the limit still holds per process.
"""

from __future__ import annotations

import logging
import math
import time
from datetime import UTC, datetime

from flask import Flask, render_template, request
from flask_limiter import ApplicationLimit, Limiter, RateLimitExceeded
from limits.storage import Storage

from dashboard.settings import Settings

log = logging.getLogger(__name__)

SIGNIN_ENDPOINTS = frozenset({"auth.login", "auth.acs", "auth.sls"})
# Keys in the storage start with this, so one Redis can serve other applications too.
KEY_PREFIX = "dashboard"


def client_address() -> str:
    """The address limits are counted for and the audit trail names: the connection's peer,
    or with DASHBOARD_PROXY_COUNT=N the client the outermost trusted proxy saw (werkzeug's
    ProxyFix rewrites remote_addr from X-Forwarded-For)."""
    return request.remote_addr or "unknown"


def _not_sign_in() -> bool:
    return request.endpoint not in SIGNIN_ENDPOINTS


def setup(app: Flask, settings: Settings) -> None:
    """Count sign-in requests; registered before the session and permission hooks, so a
    refused request has touched nothing when it is answered."""
    limiter = Limiter(
        key_func=client_address,
        storage_uri=settings.DASHBOARD_RATELIMIT_STORAGE_URL,
        strategy="fixed-window",
        key_prefix=KEY_PREFIX,
        application_limits=[
            ApplicationLimit(settings.DASHBOARD_SIGNIN_RATE_LIMIT, scope="signin", finalized=False)
        ],
        application_limits_exempt_when=_not_sign_in,
        in_memory_fallback_enabled=True,
    )
    limiter.init_app(app)
    app.extensions["dashboard.limiter"] = limiter

    @app.errorhandler(RateLimitExceeded)
    def too_many(error: RateLimitExceeded):
        wait = _seconds_to_wait(limiter)
        log.warning("sign-in rate limit reached by %s (%s)", client_address(), error.limit.limit)
        until = datetime.fromtimestamp(time.time() + wait, UTC)
        page = render_template(
            "auth/too_many.html", limit=error.limit.limit, wait=wait, until=until
        )
        return page, 429, {"Retry-After": str(wait)}


def _seconds_to_wait(limiter: Limiter) -> int:
    """Whole seconds until the window that refused this request ends (at least 1)."""
    current = limiter.current_limit
    if current is None:
        return 60
    return max(1, math.ceil(current.window[0] - time.time()))


def storage(app: Flask) -> Storage:
    """Where the limits are counted; other sign-in counts (refusals) are kept beside them."""
    return app.extensions["dashboard.limiter"].storage
