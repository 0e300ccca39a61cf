"""The one htmx render helper (an htmx request gets the partial, a browser the full page) and
the one way an error or a refusal is shown.

Full pages include their partial, so each piece of markup exists once.
"""

from __future__ import annotations

from flask import Response, make_response, render_template, request


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


def error_page(title: str, message: str, status: int) -> Response:
    """The one way errors are shown. An htmx request gets a message in the page's message
    area (htmx is told to swap error answers: see base.html), not a page inside a card."""
    if is_htmx():
        response = make_response(render_template("_error_message.html", message=message), status)
        response.headers["HX-Retarget"] = "#messages"
        response.headers["HX-Reswap"] = "innerHTML"
        return response
    return make_response(render_template("error.html", title=title, message=message), status)
