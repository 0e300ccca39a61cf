"""Each sign-in request is bound to the browser that started it (against login CSRF).

Without this, someone could start a sign-in in their own browser, take the IdP's signed
answer and make a victim's browser post it to our ACS: the victim would be working in the
dashboard as the attacker, and what they enter would be the attacker's to read. So
/saml/login gives the browser a short-lived cookie holding a hash of the AuthnRequest's id,
and the ACS accepts an answer to a request only from a browser holding that hash.

The cookie must survive the IdP's cross-site POST to the ACS, which carries no SameSite=Lax
cookie. It is `SameSite=None; Secure` (HttpOnly, path /saml/, 15 minutes), which browsers
keep and send under https, and also over plain http to a loopback host (localhost,
127.0.0.0/8, ::1), which they count as a secure context. On plain http to any other host a
Secure cookie would be dropped, and SameSite=None without Secure is refused: there the cookie
goes without SameSite (Firefox and Safari send it with the IdP's POST; Chromium only within
two minutes of /saml/login), so that setup works at best partly: use https.

Sign-ins started at the IdP (SAML_ALLOW_IDP_INITIATED) answer no request and cannot be bound.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from urllib.parse import urlsplit

from flask import Response

from dashboard.auth.saml import SamlConfig
from dashboard.settings import is_loopback

COOKIE = "dashboard_signin"
# Sent to /saml/login too, which adds to it, and to nothing outside the SAML endpoints.
PATH = "/saml/"
# As long as the request itself stays answerable (service.REQUEST_LIFETIME).
MAX_AGE_SECONDS = 15 * 60
# Sign-ins a browser may have under way at once (several tabs); the oldest is forgotten.
KEPT = 5


def _digest(request_id: str) -> str:
    return hashlib.sha256(request_id.encode()).hexdigest()[:32]


def _held(cookies: Mapping[str, str]) -> list[str]:
    return [h for h in cookies.get(COOKIE, "").split(".") if h][-KEPT:]


def started_here(cookies: Mapping[str, str], request_id: str) -> bool:
    """Whether the browser that sent `cookies` started the request `request_id`."""
    return _digest(request_id) in _held(cookies)


def bind(response: Response, cookies: Mapping[str, str], request_id: str, cfg: SamlConfig):
    """Add `request_id` to the browser's sign-ins under way (the cookie on `response`)."""
    held = [*_held(cookies), _digest(request_id)][-KEPT:]
    base = urlsplit(cfg.base_url)
    secure = base.scheme == "https" or is_loopback(cfg.base_url)
    response.set_cookie(
        COOKIE,
        ".".join(held),
        max_age=MAX_AGE_SECONDS,
        path=base.path.rstrip("/") + PATH,
        secure=secure,
        httponly=True,
        samesite="None" if secure else None,
    )
    return response
