"""Posting the dashboard's forms from a test client as a browser would: with the CSRF token
the page carries, and optionally as htmx."""

from __future__ import annotations

import re

HTMX = {"HX-Request": "true"}


def token(client) -> str:
    """The CSRF token of the signed-in session, read from a page as a browser has it."""
    body = client.get("/").get_data(as_text=True)
    return re.search(r'name="csrf_token" value="([^"]+)"', body).group(1)


def post(client, url: str, htmx: bool = False, **data):
    return client.post(
        url, data={"csrf_token": token(client), **data}, headers=HTMX if htmx else {}
    )
