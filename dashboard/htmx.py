"""How a view answers, one way each: `render` (an htmx request gets the partial, a browser
the full page), `answer` (after a change: the changed fragment for htmx, else `back`),
`back` (a plain form, after a change: flash and go back), `refused` (a request understood
but not done) and `error_page` (the one way errors are shown).

Full pages include their partial, so each piece of markup exists once.
"""

from __future__ import annotations

from collections.abc import Callable

from flask import Response, flash, make_response, redirect, render_template, request


def is_htmx() -> bool:
    """A request htmx made for a fragment. A boosted one wants a whole page, and so does
    htmx restoring a page from history after a cache miss."""
    headers = request.headers
    return bool(
        headers.get("HX-Request")
        and not headers.get("HX-Boosted")
        and not headers.get("HX-History-Restore-Request")
    )


def render(
    template: str,
    partial: str | None = None,
    *,
    page_only: Callable[[], dict] | None = None,
    **context: object,
) -> str:
    """`partial` for htmx, else the full `template`; `page_only` gives what only the full page
    shows (computed only for it)."""
    if partial and is_htmx():
        return render_template(partial, **context)
    return render_template(template, **(page_only() if page_only else {}), **context)


def back(url: str, message: str | None = None, category: str = "success") -> Response:
    """After a plain form's change: say what happened and go back (303, so a reload does
    not post again)."""
    if message:
        flash(message, category)
    return redirect(url, 303)


def answer(
    fragment: Callable[[], object], back_to: str, message: str | None = None, category="success"
):
    """After a change: htmx gets `fragment()` (the part of the page that changed), a plain
    form goes back to `back_to` with the message."""
    if is_htmx():
        return fragment()
    return back(back_to, message, category)


def refused(message: str, status: int, back_to: str, title: str = "Not done") -> Response:
    """Understood but not done: htmx shows the message in the page's message area with the
    status; a plain form goes back to `back_to` with the message."""
    if is_htmx():
        return error_page(title, message, status)
    return back(back_to, message, "error")


def error_page(title: str, message: str, status: int) -> Response:
    """The one way errors are shown. An htmx request gets a message in the page's message
    area (htmx is told to swap error answers: see base.html), not a page inside a card."""
    if is_htmx():
        response = make_response(render_template("_error_message.html", message=message), status)
        response.headers["HX-Retarget"] = "#messages"
        response.headers["HX-Reswap"] = "innerHTML"
        return response
    return make_response(render_template("error.html", title=title, message=message), status)
