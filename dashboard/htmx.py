"""The one htmx render helper: an htmx request gets the partial, a browser the full page.

Full pages include their partial, so each piece of markup exists once.
"""

from __future__ import annotations

from flask import render_template, request


def is_htmx() -> bool:
    """A request htmx made for a fragment (a boosted one wants a whole page)."""
    return bool(request.headers.get("HX-Request")) and not request.headers.get("HX-Boosted")


def render(template: str, partial: str | None = None, **context: object) -> str:
    if partial and is_htmx():
        return render_template(partial, **context)
    return render_template(template, **context)
