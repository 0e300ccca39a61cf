"""The one htmx render helper: an htmx request gets the partial, a browser the full page.

Full pages include their partial, so each piece of markup exists once.
"""

from __future__ import annotations

from flask import render_template, request


def is_htmx() -> bool:
    """A request htmx made for a fragment. A boosted one wants a whole page, and so does
    htmx restoring a page from history after a cache miss."""
    headers = request.headers
    return bool(
        headers.get("HX-Request")
        and not headers.get("HX-Boosted")
        and not headers.get("HX-History-Restore-Request")
    )


def render(template: str, partial: str | None = None, **context: object) -> str:
    if partial and is_htmx():
        return render_template(partial, **context)
    return render_template(template, **context)
