"""Base URLs for the external services: https, or plain http to this machine only."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit


class BadBaseUrl(ValueError):
    """The message says what is wrong and what a right one looks like."""


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_base_url(url: str, example: str) -> str:
    """The URL without a trailing slash, or BadBaseUrl. No credentials, query or fragment."""
    url = (url or "").strip()
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (raises on a port that is not a number from 0 to 65535)
    except ValueError:
        raise BadBaseUrl(
            f"That URL cannot be read (check the host and port); like {example}."
        ) from None
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise BadBaseUrl(f"That is not a URL; it should look like {example}.")
    if parts.username or parts.password:
        raise BadBaseUrl("Do not put credentials in the URL; store them in their own fields.")
    # The URL is not echoed back: a token pasted into it would be shown again.
    if parts.query or parts.fragment:
        raise BadBaseUrl(f"The URL has a query or fragment; give only the base, like {example}.")
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise BadBaseUrl("The URL uses plain http. Use https (plain http only to this machine).")
    return url.rstrip("/")
