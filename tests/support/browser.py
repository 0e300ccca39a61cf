"""What a browser sends, where the test client would send everything it holds."""

from __future__ import annotations

from flask.testing import FlaskClient


def cross_site_post(client: FlaskClient) -> None:
    """Leave in `client` only the cookies a browser sends with a cross-site POST (the IdP's
    form to our ACS): those marked SameSite=None. A cookie without SameSite counts as Lax,
    as Chromium treats it (past its first two minutes)."""
    for key, cookie in list(client._cookies.items()):
        if (cookie.same_site or "").lower() != "none":
            del client._cookies[key]
