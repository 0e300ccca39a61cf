"""Posting the dashboard's forms from a test client as a browser would: with the CSRF token
the page carries, and optionally as htmx.

The signed-in page carries the token twice: in the sign-out form's hidden input (what a
plain form posts) and in the body's hx-headers (what htmx sends as X-CSRFToken). Each is
read from where its sender finds it.
"""

from __future__ import annotations

import json
import re

HTMX = {"HX-Request": "true"}


def token(client) -> str:
    """The CSRF token of the signed-in session, read from a page's form as a browser has it."""
    body = client.get("/").get_data(as_text=True)
    return re.search(r'name="csrf_token" value="([^"]+)"', body).group(1)


def htmx_headers(client) -> dict[str, str]:
    """The headers htmx sends with a request from the signed-in page: HX-Request and the
    page's hx-headers (the CSRF token as X-CSRFToken)."""
    body = client.get("/").get_data(as_text=True)
    given = json.loads(re.search(r"hx-headers='([^']+)'", body).group(1))
    return {**HTMX, **given}


def post(client, url: str, htmx: bool = False, **data):
    """A form posted with its CSRF token; as htmx posts it when `htmx`."""
    return client.post(
        url, data={"csrf_token": token(client), **data}, headers=HTMX if htmx else {}
    )
