"""What can go wrong talking to OneLogin or Workato, as one typed error with a message an
admin can act on. Shared by every client; no Flask here.

Messages never contain a secret: URLs are stored without credentials, response bodies are
summarised, never echoed whole, and every problem a client's Http raises has that client's
secrets replaced by REDACTED (`redact`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from urllib.parse import quote, urlsplit

import requests

# Failure classes (ConnectionProblem.kind), stable for tests, JSON and audit details.
CONNECT = "connect"  # DNS failure, refused, unreachable
TLS = "tls"
TIMEOUT = "timeout"
UNAUTHORIZED = "unauthorized"  # 401
FORBIDDEN = "forbidden"  # 403
NOT_FOUND = "not_found"  # 404
RATE_LIMITED = "rate_limited"  # 429
SERVER_ERROR = "server_error"  # 5xx
REJECTED = "rejected"  # any other 4xx: the request itself was refused
BAD_RESPONSE = "bad_response"  # 2xx with a body we cannot read
SCIM_DISABLED = "scim_disabled"  # SCIM is disabled on Connections: no write was sent
STOPPED = "stopped"  # the dashboard stopped the run (cancel, SCIM changed): nothing was sent

# Worth retrying later with the same request.
TRANSIENT = frozenset({CONNECT, TIMEOUT, RATE_LIMITED, SERVER_ERROR})


@dataclass
class ConnectionProblem(Exception):
    """One failed call. `message` is what the admin reads; the rest is for code."""

    kind: str
    service: str  # "OneLogin API", "Workato SCIM API", "Workato developer API"
    message: str
    status: int | None = None
    retry_after: float | None = None  # seconds, from Retry-After, when the server said
    detail: str | None = None  # the service's own words (SCIM detail, OneLogin message)
    scim_type: str | None = None

    def __post_init__(self) -> None:
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message

    @property
    def transient(self) -> bool:
        return self.kind in TRANSIENT


REDACTED = "[redacted]"


def redact(text: str, secrets: tuple[str, ...]) -> str:
    """`text` with each secret (as sent, or percent-encoded) replaced by REDACTED; the
    longest first, so that a secret containing another is replaced whole."""
    forms = {form for secret in secrets if secret for form in (secret, quote(secret, safe=""))}
    for form in sorted(forms, key=len, reverse=True):
        text = text.replace(form, REDACTED)
    return text


def redacted(problem: ConnectionProblem, secrets: tuple[str, ...]) -> ConnectionProblem:
    """`problem` with the secrets redacted from every text a service may have put in it."""
    message = redact(problem.message, secrets)
    detail = None if problem.detail is None else redact(problem.detail, secrets)
    scim_type = None if problem.scim_type is None else redact(problem.scim_type, secrets)
    if (message, detail, scim_type) == (problem.message, problem.detail, problem.scim_type):
        return problem
    return replace(problem, message=message, detail=detail, scim_type=scim_type)


def host_of(url: str) -> str:
    parts = urlsplit(url)
    return parts.hostname or url


def from_exception(service: str, url: str, exc: requests.RequestException, timeout: float):
    """A ConnectionProblem for a call that got no HTTP answer at all."""
    host = host_of(url)
    if isinstance(exc, requests.exceptions.SSLError):
        return ConnectionProblem(
            TLS,
            service,
            f"The TLS connection to {service} at {host} failed (certificate not trusted, expired, "
            "or for another name). Check the base URL; this server must trust the certificate.",
        )
    if isinstance(exc, requests.exceptions.Timeout):
        return ConnectionProblem(
            TIMEOUT,
            service,
            f"{service} at {host} did not answer within {timeout:g} s. It may be down or slow; "
            "try again, and check the base URL if it keeps happening.",
        )
    return ConnectionProblem(
        CONNECT,
        service,
        f"Cannot connect to {service} at {host}: the name does not resolve or the connection is "
        "refused. Check the base URL and that this server can reach it.",
    )


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """Retry-After is either seconds or an HTTP date (RFC 9110 §10.2.3)."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():  # "²" is a digit to str.isdigit, not to float
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # "-0000": UTC, with no claim about the local zone (RFC 5322)
        when = when.replace(tzinfo=UTC)
    now = now or datetime.now(UTC)
    return max(0.0, (when - now).total_seconds())


def from_response(
    service: str,
    response: requests.Response,
    *,
    unauthorized: str,
    forbidden: str,
    detail: str | None = None,
    scim_type: str | None = None,
) -> ConnectionProblem:
    """A ConnectionProblem for an HTTP error answer. `unauthorized` and `forbidden` say, in
    the service's terms, what to fix (which credential, which scope)."""
    status = response.status_code
    host = host_of(response.url or "")
    said = f" {service} said: {detail}" if detail else ""
    if status == 401:
        return ConnectionProblem(UNAUTHORIZED, service, unauthorized + said, status, detail=detail)
    if status == 403:
        return ConnectionProblem(FORBIDDEN, service, forbidden + said, status, detail=detail)
    if status == 404:
        path = urlsplit(response.url or "").path
        return ConnectionProblem(
            NOT_FOUND,
            service,
            f"{service} at {host} has nothing at {path} (404): the base URL is probably wrong."
            + said,
            status,
            detail=detail,
        )
    if status == 429:
        wait = retry_after_seconds(response.headers.get("Retry-After"))
        when = (
            f"retry after {wait:.0f} s "
            f"({(datetime.now(UTC) + timedelta(seconds=wait)).strftime('%H:%M:%S')} UTC)"
            if wait is not None
            else "retry in a minute"
        )
        return ConnectionProblem(
            RATE_LIMITED,
            service,
            f"{service} is rate limiting this dashboard (429): {when}.",
            status,
            retry_after=wait,
            detail=detail,
        )
    if status >= 500:
        return ConnectionProblem(
            SERVER_ERROR,
            service,
            f"{service} is failing ({status}); this is on their side. Try again later." + said,
            status,
            retry_after=retry_after_seconds(response.headers.get("Retry-After")),
            detail=detail,
        )
    return ConnectionProblem(
        REJECTED,
        service,
        f"{service} refused the request ({status})." + said,
        status,
        detail=detail,
        scim_type=scim_type,
    )


def bad_response(service: str, what: str) -> ConnectionProblem:
    return ConnectionProblem(
        BAD_RESPONSE,
        service,
        f"{service} answered, but not as expected ({what}). Check that the base URL points at "
        f"the {service} itself.",
    )
