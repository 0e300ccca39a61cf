"""Typed settings, read from the environment once at start.

Every variable here is documented in the README's Configuration section. Values that a
deployment must get right (the IdP metadata, the public base URL) are checked when the
app starts serving pages, so a broken setup fails at start, not at the first sign-in.
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

import click
from limits import parse_many
from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

CommaList = Annotated[list[str], NoDecode]
FIELD_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

# What the demo sandbox's identity provider grants; see dashboard/sandbox/people.py.
DEMO_ADMIN_VALUE = "Workato Dashboard Admins"
DEMO_VIEWER_VALUE = "Workato Dashboard Viewers"
DEMO_BASE_URL = "http://127.0.0.1:5000"
PLACEHOLDER = "REPLACE-ME"  # what deploy/dashboard.env.example leaves to be filled in
# Where sign-in rate limits may be counted: in this process, or in Redis (shared).
RATELIMIT_STORAGE_SCHEMES = ("memory", "redis", "rediss", "redis+unix", "redis+sentinel")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(case_sensitive=True, extra="ignore")

    SECRET_KEY: SecretStr | None = None
    DATABASE_URL: str | None = None

    DASHBOARD_DEMO: bool = False
    DASHBOARD_INSTANCE_PATH: Path | None = None
    DASHBOARD_SESSION_IDLE_MINUTES: int = Field(default=30, ge=1)
    DASHBOARD_SESSION_MAX_HOURS: int = Field(default=12, ge=1)
    DASHBOARD_PROXY_COUNT: int = Field(default=0, ge=0)
    # Requests to /saml/login, /saml/acs and /saml/sls per client address (Flask-Limiter's
    # syntax), counted where every process and instance sees the same counts when shared.
    DASHBOARD_SIGNIN_RATE_LIMIT: str = "30/minute"
    DASHBOARD_RATELIMIT_STORAGE_URL: str = "memory://"
    DASHBOARD_ENCRYPTION_KEY: SecretStr | None = None
    DASHBOARD_CONNECT_TIMEOUT_SECONDS: float = Field(default=10.0, gt=0)
    DASHBOARD_CHECK_TIMEOUT_SECONDS: float = Field(default=20.0, gt=0)
    DASHBOARD_ROLE_FIELDS: CommaList = ["workato_role", "workato_role_test", "workato_role_prod"]
    DASHBOARD_KNOWN_ROLES: CommaList = ["Admin", "Analyst", "Operator"]
    DASHBOARD_SYNC_EXECUTOR: Literal["thread", "worker"] = "thread"
    # At most this many SCIM writes in flight: as many as the rate needs (pace.writers).
    DASHBOARD_SYNC_CONCURRENCY: int = Field(default=16, ge=1, le=16)
    # SCIM requests a second: "auto" finds Workato's limit (sync/pace.py); a number is a hard
    # ceiling the rate still adapts under; 0 sends as fast as the writers go.
    DASHBOARD_SYNC_RATE: float | Literal["auto"] = "auto"
    # The share of OneLogin's hourly API budget left to the account's other integrations.
    DASHBOARD_ONELOGIN_RESERVE: float = Field(default=0.1, ge=0, lt=1)
    DASHBOARD_SYNC_ATTEMPTS: int = Field(default=5, ge=1, le=20)
    DASHBOARD_SYNC_BACKOFF_SECONDS: float = Field(default=0.5, gt=0, le=30)
    DASHBOARD_SYNC_FAILURE_THRESHOLD: float = Field(default=0.25, gt=0, le=1)
    DASHBOARD_SYNC_SUSPEND_GUARD_COUNT: int = Field(default=10, ge=0)
    DASHBOARD_SYNC_SUSPEND_GUARD_SHARE: float = Field(default=0.1, ge=0, le=1)
    DASHBOARD_SYNC_LEASE_SECONDS: int = Field(default=60, ge=5)
    DASHBOARD_SYNC_PAGE_SIZE: int = Field(default=100, ge=1, le=1000)
    DASHBOARD_AUDIT_RETENTION_DAYS: int = Field(default=0, ge=0)  # 0: keep every entry
    # The Ed25519 key that signs the audit digests (unset: made in the instance folder), and
    # a folder each digest is also appended to (dashboard.audit.digests).
    DASHBOARD_AUDIT_SIGNING_KEY_FILE: Path | None = None
    DASHBOARD_AUDIT_DIGEST_DIR: Path | None = None
    # Unattended operation (dashboard.schedule): plan every this many seconds ("1h", "15m",
    # "30s"; 0 off), and whether to apply what a scheduled plan decides (safe) or only
    # record it and alert (off).
    DASHBOARD_RECONCILE_EVERY: int = 3600
    DASHBOARD_RECONCILE_APPLY: Literal["off", "safe"] = "off"
    # Where alerts go (dashboard.alerts). Both URLs may carry a secret (a Slack webhook's
    # path, an SMTP password): they are never logged, shown or audited.
    DASHBOARD_ALERT_WEBHOOK_URL: SecretStr | None = None
    DASHBOARD_SMTP_URL: SecretStr | None = None
    DASHBOARD_ALERT_EMAIL_FROM: str | None = None
    DASHBOARD_ALERT_EMAIL_TO: CommaList = []
    # GET /metrics with `Authorization: Bearer <this>` (a signed-in user needs no token).
    DASHBOARD_METRICS_TOKEN: SecretStr | None = None

    SAML_IDP_METADATA_FILE: Path | None = None
    SAML_SP_BASE_URL: str | None = None
    SAML_SP_CERT_FILE: Path | None = None
    SAML_SP_KEY_FILE: Path | None = None
    SAML_ROLE_ATTRIBUTE: str = "roles"
    SAML_ADMIN_VALUES: CommaList = []
    SAML_VIEWER_VALUES: CommaList = []
    SAML_ALLOW_IDP_INITIATED: bool = False
    # Split each role value on this (OneLogin's "Semicolon Delimited input": ";"); unset, a
    # value is one role, so a group named "x;Admins" is not the Admins group.
    SAML_ROLE_DELIMITER: str | None = None

    @field_validator(
        "SAML_ADMIN_VALUES",
        "SAML_VIEWER_VALUES",
        "DASHBOARD_ROLE_FIELDS",
        "DASHBOARD_KNOWN_ROLES",
        "DASHBOARD_ALERT_EMAIL_TO",
        mode="before",
    )
    @classmethod
    def _split_commas(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("DASHBOARD_ROLE_FIELDS")
    @classmethod
    def _custom_field_names(cls, fields: list[str]) -> list[str]:
        bad = [f for f in fields if not FIELD_NAME.fullmatch(f)]
        if bad or not fields:
            raise ValueError(
                "role fields are OneLogin custom field short names (letters, digits, _), "
                f"at least one; these are not: {', '.join(bad) or '(empty)'}"
            )
        return fields

    @field_validator("DASHBOARD_SYNC_RATE", mode="before")
    @classmethod
    def _sync_rate(cls, value: object) -> object:
        if isinstance(value, str) and value.strip().lower() == "auto":
            return "auto"
        try:
            rate = float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise ValueError(
                f"{value!r} is not auto or a number of requests a second (0: no limit)"
            ) from None
        if rate < 0 or rate != rate:
            raise ValueError(f"{value!r}: a rate is auto, 0 or more requests a second")
        return rate

    @field_validator("DASHBOARD_RECONCILE_EVERY", mode="before")
    @classmethod
    def _interval(cls, value: object) -> object:
        return parse_interval(value)

    @field_validator("DASHBOARD_SMTP_URL")
    @classmethod
    def _smtp_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None
        parts = urlsplit(value.get_secret_value())
        # Only the scheme is named back: the URL may hold a password.
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise ValueError(
                f"the scheme {parts.scheme or '(none)'!r} is not smtp:// (STARTTLS when the "
                "server offers it) or smtps:// (TLS from the start), with a host"
            )
        return value

    @field_validator(
        "SECRET_KEY",
        "DATABASE_URL",
        "DASHBOARD_ENCRYPTION_KEY",
        "DASHBOARD_ALERT_WEBHOOK_URL",
        "DASHBOARD_SMTP_URL",
        "DASHBOARD_METRICS_TOKEN",
        mode="before",
    )
    @classmethod
    def _filled_in(cls, value: object) -> object:
        # deploy/dashboard.env.example's placeholder, left in: a guessable key is worse than
        # none. The value is not named back (it may hold a real password beside it).
        if isinstance(value, str) and PLACEHOLDER in value:
            raise ValueError(f"still holds the example's {PLACEHOLDER}: fill it in")
        return value

    @field_validator("DASHBOARD_ALERT_WEBHOOK_URL", "DASHBOARD_METRICS_TOKEN")
    @classmethod
    def _blank_is_unset(cls, value: SecretStr | None) -> SecretStr | None:
        return value if value is not None and value.get_secret_value().strip() else None

    @field_validator("DASHBOARD_ALERT_WEBHOOK_URL")
    @classmethod
    def _webhook_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and urlsplit(value.get_secret_value()).scheme not in ("http", "https"):
            raise ValueError("an alert webhook is an http:// or https:// URL")
        return value

    @field_validator("DASHBOARD_ONELOGIN_RESERVE", mode="before")
    @classmethod
    def _share(cls, value: object) -> object:
        # "10%" reads as 0.1, as the README writes it.
        if isinstance(value, str) and value.strip().endswith("%"):
            try:
                return float(value.strip()[:-1]) / 100
            except ValueError:
                raise ValueError(f"{value!r} is not a share such as 10% or 0.1") from None
        return value

    @field_validator("DASHBOARD_SIGNIN_RATE_LIMIT")
    @classmethod
    def _rate_limit(cls, value: str) -> str:
        try:
            parse_many(value)
        except ValueError:
            raise ValueError(
                f"{value!r} is not a rate limit such as 30/minute (or 30/minute;200/hour)"
            ) from None
        return value

    @field_validator("DASHBOARD_RATELIMIT_STORAGE_URL")
    @classmethod
    def _rate_limit_storage(cls, value: str) -> str:
        # Only the scheme is named back: the URL may hold a password.
        scheme = urlsplit(value).scheme
        if scheme not in RATELIMIT_STORAGE_SCHEMES:
            raise ValueError(
                f"the scheme {scheme or '(none)'!r} is not one of "
                f"{', '.join(s + '://' for s in RATELIMIT_STORAGE_SCHEMES)}"
            )
        return value

    @field_validator("SAML_ROLE_DELIMITER")
    @classmethod
    def _delimiter(cls, value: str | None) -> str | None:
        return value or None

    @field_validator("SAML_SP_BASE_URL")
    @classmethod
    def _no_trailing_slash(cls, value: str | None) -> str | None:
        return value.rstrip("/") if value else value

    def with_demo_defaults(self, demo_metadata: Path) -> Settings:
        """Fill what the demo sandbox provides; anything set in the environment still wins."""
        return self.model_copy(
            update={
                "SAML_IDP_METADATA_FILE": self.SAML_IDP_METADATA_FILE or demo_metadata,
                "SAML_SP_BASE_URL": self.SAML_SP_BASE_URL or DEMO_BASE_URL,
                "SAML_ADMIN_VALUES": self.SAML_ADMIN_VALUES or [DEMO_ADMIN_VALUE],
                "SAML_VIEWER_VALUES": self.SAML_VIEWER_VALUES or [DEMO_VIEWER_VALUE],
            }
        )

    def refuse_public_demo(self) -> None:
        """Demo mode's identity provider signs anyone in as an admin: it runs only where no
        one else can reach it, a loopback base URL (`make run`'s http://127.0.0.1:5000)."""
        if not self.DASHBOARD_DEMO or is_loopback(self.SAML_SP_BASE_URL or DEMO_BASE_URL):
            return
        raise ConfigError(
            f"DASHBOARD_DEMO is on, but SAML_SP_BASE_URL ({self.SAML_SP_BASE_URL}) is not a "
            "loopback address. Demo mode's identity provider signs anyone in as an admin, so "
            "it runs only on this machine (http://127.0.0.1:5000 or http://localhost:5000). "
            'Unset DASHBOARD_DEMO and configure your identity provider (README, "Connecting a '
            'real OneLogin tenant"), or use a loopback SAML_SP_BASE_URL.'
        )

    @property
    def session_cookie_secure(self) -> bool:
        return bool(self.SAML_SP_BASE_URL and self.SAML_SP_BASE_URL.startswith("https://"))


INTERVAL = re.compile(r"(\d+)\s*([smhd]?)")
UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
SHORTEST_INTERVAL = 10  # seconds: a plan reads both sides whole


def parse_interval(value: object) -> int:
    """Seconds from "30s", "15m", "2h", "1d" or a bare number of seconds; 0 is off."""
    match = INTERVAL.fullmatch(str(value).strip().lower())
    if match is None:
        raise ValueError(f"{value!r} is not an interval such as 30s, 15m or 2h (0: off)")
    seconds = int(match[1]) * UNIT_SECONDS[match[2]]
    if 0 < seconds < SHORTEST_INTERVAL:
        raise ValueError(f"{value!r}: the shortest interval is {SHORTEST_INTERVAL}s (0: off)")
    return seconds


def is_loopback(url: str) -> bool:
    """Whether a URL's host is this machine only."""
    return is_loopback_host(urlsplit(url).hostname)


def is_loopback_host(host: str | None) -> bool:
    """localhost, 127.0.0.0/8 or ::1 (also as an IPv4-mapped address)."""
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return address.is_loopback or bool(mapped and mapped.is_loopback)


def load() -> Settings:
    """Settings from the environment; a wrong value stops the start with its variable named."""
    try:
        return Settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in error['loc'])}: {error['msg']}" for error in exc.errors()
        )
        raise ConfigError(f"Invalid setting: {problems}.") from None


class ConfigError(click.ClickException):
    """A setting is missing or wrong; the message tells the operator what to do.

    A ClickException so that `flask run` prints the message alone and exits 1, instead of
    a traceback that buries it.
    """
