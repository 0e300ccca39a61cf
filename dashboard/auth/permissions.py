"""The one place that decides who may do what.

Every endpoint needs a signed-in admin or viewer unless marked @public. Viewers may only
read: any request that can change state (anything but GET, HEAD, OPTIONS) needs an admin,
except endpoints marked @viewer_may_post (signing out). Endpoints marked @background_poll
need a session but do not count as activity for its idle timeout.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlsplit

from flask import Response, current_app, redirect, request, url_for
from flask_login import current_user

from dashboard import audit
from dashboard.extensions import db
from dashboard.htmx import error_page, is_htmx

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def public(view: Callable) -> Callable:
    view.is_public = True  # type: ignore[attr-defined]
    return view


def viewer_may_post(view: Callable) -> Callable:
    view.viewer_may_post = True  # type: ignore[attr-defined]
    return view


def background_poll(view: Callable) -> Callable:
    """A view a page calls by itself on a timer (a run's progress card): it needs a session
    like any other, but its requests are not activity that keeps an idle session alive."""
    view.background_poll = True  # type: ignore[attr-defined]
    return view


def is_background_poll() -> bool:
    view = current_app.view_functions.get(request.endpoint or "")
    return bool(getattr(view, "background_poll", False))


def enforce() -> Response | None:
    """before_request hook: the answer for a request that may not go on, else None."""
    if request.endpoint is None or request.endpoint == "static":
        return None  # 404s and assets
    view = current_app.view_functions[request.endpoint]
    if getattr(view, "is_public", False):
        return None
    if not current_user.is_authenticated:
        return _to_sign_in()
    changes_state = request.method not in SAFE_METHODS
    if changes_state and not current_user.is_admin and not getattr(view, "viewer_may_post", False):
        audit.record(
            "auth.forbidden",
            actor=current_user.actor,
            outcome="refused",
            details={"method": request.method, "path": request.path},
        )
        db.session.commit()
        return forbidden(
            "Read-only access",
            "You are signed in as a viewer. Viewers can see everything but change nothing; "
            "ask an admin to make this change.",
        )
    return None


def _to_sign_in() -> Response:
    if is_htmx():
        # htmx cannot follow a redirect to the IdP inside a fragment: send the whole page.
        next_path = local_path(urlsplit(request.headers.get("HX-Current-URL", "")).path) or "/"
        response = Response(status=401)
        response.headers["HX-Redirect"] = url_for("auth.login", next=next_path)
        return response
    return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))


def forbidden(title: str, message: str) -> Response:
    return error_page(title, message, 403)


def local_path(target: str | None) -> str | None:
    """`target` if it is a path on this site, else None (no scheme, host or `//` tricks)."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return None
    if any(ch in target for ch in "\\\r\n\t") or any(ord(ch) < 32 for ch in target):
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return None
    return target
