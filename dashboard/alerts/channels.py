"""Where alerts go: a webhook (a JSON POST; Slack and Teams incoming webhooks read its
`text`) and e-mail through an SMTP server. No Flask, no database.

Both URLs may hold a secret (a Slack webhook's path, an SMTP password), so a failure is told
as an `Undelivered` whose reason is built here from what went wrong, never from the
library's own message (which names the URL).
"""

from __future__ import annotations

import http.client
import json
import smtplib
import socket
import ssl
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from urllib.parse import unquote, urlsplit

WEBHOOK, EMAIL = "webhook", "email"
TITLES = {WEBHOOK: "Webhook", EMAIL: "E-mail"}
# Each delivery gives up after this long without an answer (per connection step for SMTP):
# a channel that hangs must not hold up the watch, which other alerts wait on.
TIMEOUT_SECONDS = 10.0
SMTP_PORTS = {"smtp": 25, "smtps": 465}
USER_AGENT = "onelogin-workato-dashboard"
SUBJECT_PREFIX = "[Provisioning dashboard]"


class Undelivered(Exception):
    """A channel did not take the message; `reason` names no URL, token or password."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Outgoing:
    """One message, as every channel sends it."""

    subject: str
    text: str  # human sentences
    kind: str  # the condition ("run", "connection:scim") or "test"
    status: str  # firing, resolved or test
    facts: dict = field(default_factory=dict)
    links: dict = field(default_factory=dict)  # name -> absolute URL

    def webhook_body(self) -> dict:
        return {
            "text": self.text,
            "kind": self.kind,
            "status": self.status,
            "facts": self.facts,
            "links": self.links,
        }


@dataclass(frozen=True)
class Channels:
    """The configured channels (DASHBOARD_ALERT_WEBHOOK_URL, DASHBOARD_SMTP_URL,
    DASHBOARD_ALERT_EMAIL_FROM, DASHBOARD_ALERT_EMAIL_TO)."""

    webhook_url: str | None = field(default=None, repr=False)
    smtp_url: str | None = field(default=None, repr=False)
    email_from: str | None = None
    email_to: tuple[str, ...] = ()

    @classmethod
    def from_settings(cls, settings) -> Channels:
        webhook, smtp = settings.DASHBOARD_ALERT_WEBHOOK_URL, settings.DASHBOARD_SMTP_URL
        return cls(
            webhook.get_secret_value() if webhook else None,
            smtp.get_secret_value() if smtp else None,
            settings.DASHBOARD_ALERT_EMAIL_FROM,
            tuple(settings.DASHBOARD_ALERT_EMAIL_TO),
        )

    @property
    def names(self) -> list[str]:
        """The channels set up, in the order they are tried."""
        return [name for name, url in ((WEBHOOK, self.webhook_url), (EMAIL, self.smtp_url)) if url]

    @property
    def smtp_security(self) -> str | None:
        """How the mail is protected, in words (no host, no user)."""
        if not self.smtp_url:
            return None
        if urlsplit(self.smtp_url).scheme == "smtps":
            return "TLS from the start (smtps://)"
        return "STARTTLS when the server offers it (smtp://)"

    def send(self, name: str, message: Outgoing) -> None:
        """Deliver `message` through channel `name`, or raise Undelivered."""
        if name == WEBHOOK:
            post_webhook(self.webhook_url, message)
        else:
            send_email(self.smtp_url, self.email_from, self.email_to, message)


# --- the webhook -----------------------------------------------------------------------------


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None  # a 3xx is an answer like any other: a webhook that moved is set again


# urllib rather than requests: urllib3 logs every request's path at DEBUG, and a Slack
# webhook's path is its secret. Proxies come from the environment (HTTPS_PROXY, NO_PROXY),
# trusted certificates from the system's store (or SSL_CERT_FILE).
_opener = urllib.request.build_opener(_NoRedirects)


def post_webhook(url: str, message: Outgoing, timeout: float | None = None) -> None:
    timeout = TIMEOUT_SECONDS if timeout is None else timeout
    request = urllib.request.Request(  # noqa: S310  (http or https only: settings checks it)
        url,
        data=json.dumps(message.webhook_body()).encode(),
        headers={"Content-Type": "application/json", "User-Agent": USER_AGENT},
        method="POST",
    )
    try:
        with _opener.open(request, timeout=timeout) as response:
            status = response.status
    except urllib.error.HTTPError as answer:
        answer.close()
        status = answer.code
    except TimeoutError:
        raise Undelivered(f"the webhook did not answer within {timeout:g} s") from None
    except urllib.error.URLError as exc:
        raise Undelivered(_webhook_reason(exc.reason, timeout)) from None
    except (OSError, http.client.HTTPException) as exc:
        raise Undelivered(_webhook_reason(exc, timeout)) from None
    if not 200 <= status < 300:
        raise Undelivered(f"the webhook answered HTTP {status}")


def _webhook_reason(cause: object, timeout: float) -> str:
    if isinstance(cause, TimeoutError):
        return f"the webhook did not answer within {timeout:g} s"
    if isinstance(cause, ssl.SSLCertVerificationError):
        return "the webhook's TLS certificate is not trusted"
    if isinstance(cause, ssl.SSLError):
        return "the TLS handshake with the webhook's server failed"
    if isinstance(cause, socket.gaierror):
        return "the webhook's host name does not resolve"
    if isinstance(cause, OSError):
        return "could not connect to the webhook's server"
    return f"the webhook request failed ({type(cause).__name__})"


# --- e-mail ----------------------------------------------------------------------------------


def email_body(message: Outgoing) -> str:
    lines = [message.text, ""]
    lines += [f"{name.capitalize()}: {url}" for name, url in message.links.items()]
    return "\n".join(lines).strip() + "\n"


def send_email(
    smtp_url: str,
    sender: str | None,
    recipients: tuple[str, ...],
    message: Outgoing,
    timeout: float | None = None,
) -> None:
    """smtps://: TLS from the start; smtp://: STARTTLS when the server offers it. A user and
    password in the URL log in, and only over TLS: never in the clear."""
    timeout = TIMEOUT_SECONDS if timeout is None else timeout
    if not sender:
        raise Undelivered("DASHBOARD_ALERT_EMAIL_FROM is not set")
    if not recipients:
        raise Undelivered("DASHBOARD_ALERT_EMAIL_TO is empty")
    parts = urlsplit(smtp_url)
    mail = EmailMessage()
    mail["Subject"] = f"{SUBJECT_PREFIX} {message.subject}"
    mail["From"] = sender
    mail["To"] = ", ".join(recipients)
    mail["Date"] = formatdate(localtime=False)
    mail["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or None)
    mail.set_content(email_body(message))
    try:
        _send(parts, mail, timeout)
    except Undelivered:
        raise
    except Exception as exc:  # any failure at all, told without the library's words
        raise Undelivered(_smtp_reason(exc, timeout)) from None


def _send(parts, mail: EmailMessage, timeout: float) -> None:
    port = parts.port or SMTP_PORTS[parts.scheme]
    context = ssl.create_default_context()
    if parts.scheme == "smtps":
        server = smtplib.SMTP_SSL(parts.hostname, port, timeout=timeout, context=context)
    else:
        server = smtplib.SMTP(parts.hostname, port, timeout=timeout)
    with server:
        server.ehlo()
        encrypted = parts.scheme == "smtps"
        if not encrypted and server.has_extn("starttls"):
            server.starttls(context=context)
            server.ehlo()
            encrypted = True
        if parts.username:
            if not encrypted:
                raise Undelivered(
                    "the SMTP server does not offer STARTTLS, and the password is not sent in "
                    "the clear: use smtps:// or a server that offers STARTTLS"
                )
            server.login(unquote(parts.username), unquote(parts.password or ""))
        server.send_message(mail)


def _smtp_reason(exc: Exception, timeout: float) -> str:
    # smtplib reports a reply that never came as a disconnection, caused by the timeout.
    if isinstance(exc, TimeoutError) or isinstance(exc.__context__, TimeoutError):
        return f"the SMTP server did not answer within {timeout:g} s"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return "the SMTP server's TLS certificate is not trusted"
    if isinstance(exc, ssl.SSLError):
        return "the TLS handshake with the SMTP server failed"
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return f"the SMTP server refused the user and password ({exc.smtp_code})"
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return "the SMTP server refused every recipient"
    if isinstance(exc, smtplib.SMTPSenderRefused):
        return f"the SMTP server refused the sender address ({exc.smtp_code})"
    if isinstance(exc, smtplib.SMTPResponseException):
        return f"the SMTP server refused the message ({exc.smtp_code})"
    if isinstance(exc, smtplib.SMTPException):
        return f"the SMTP exchange failed ({type(exc).__name__})"
    if isinstance(exc, socket.gaierror):
        return "the SMTP server's name does not resolve"
    if isinstance(exc, OSError):
        return f"could not connect to the SMTP server ({exc.strerror or type(exc).__name__})"
    return f"sending the e-mail failed ({type(exc).__name__})"
