"""Saving, clearing, testing and using the connections. Views and commands call these;
each change is audited (never with a secret) and committed here."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from urllib.parse import urlsplit

from sqlalchemy.exc import IntegrityError

from dashboard import audit
from dashboard.connections import errors
from dashboard.connections.clients import ONE_TRY, client_for, vault
from dashboard.connections.models import (
    KINDS,
    ONELOGIN,
    SCIM,
    SECRET_NAMES,
    WORKATO_API,
    Connection,
)
from dashboard.connections.urls import BadBaseUrl, check_base_url
from dashboard.connections.vault import SecretUnreadable
from dashboard.extensions import db
from dashboard.timeutil import utcnow

TITLES = {
    ONELOGIN: "OneLogin API",
    SCIM: "Workato SCIM API",
    WORKATO_API: "Workato developer API",
}
EXAMPLES = {
    ONELOGIN: "https://yourcompany.onelogin.com",
    SCIM: "https://workato.com/scim/v2",
    WORKATO_API: "https://www.workato.com",
}
SECRET_LABELS = {ONELOGIN: "Client secret", SCIM: "SCIM token", WORKATO_API: "API token"}


# The columns' sizes (PostgreSQL enforces them; SQLite would not).
MAX_URL = 512
MAX_CLIENT_ID = 256


class Invalid(ValueError):
    """A value an admin typed is wrong; `field` says which."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field
        self.message = message


@dataclass(frozen=True)
class ConnectionCheck:
    kind: str
    ok: bool
    message: str
    problem_kind: str | None = None  # errors.CONNECT, errors.UNAUTHORIZED, ...
    checked_at: datetime | None = None


def get(kind: str) -> Connection | None:
    return db.session.scalar(db.select(Connection).filter_by(kind=kind))


def with_secret(kind: str) -> Connection | None:
    """The connection of this kind when it is saved with its secret (usable), else None."""
    connection = get(kind)
    return connection if connection is not None and connection.has_secret else None


def all_by_kind() -> dict[str, Connection | None]:
    found = {c.kind: c for c in db.session.scalars(db.select(Connection))}
    return {kind: found.get(kind) for kind in KINDS}


def save(
    kind: str,
    *,
    actor: str,
    base_url: str,
    secret: str | None,
    client_id: str | None = None,
    app_id: str | int | None = None,
) -> Connection:
    """Create or update a connection. `secret=None` keeps the stored one."""
    try:
        base_url = check_base_url(base_url, EXAMPLES[kind])
    except BadBaseUrl as exc:
        raise Invalid("base_url", str(exc)) from None
    if len(base_url) > MAX_URL:
        raise Invalid("base_url", f"The base URL is longer than {MAX_URL} characters.")
    if kind == ONELOGIN:
        client_id = (client_id or "").strip()
        if not client_id or len(client_id) > MAX_CLIENT_ID:
            raise Invalid("client_id", "Enter the API client id from OneLogin.")
        app_id = _app_id(app_id)
    connection = get(kind)
    if secret is not None:
        secret = secret.strip()
        if not secret:
            raise Invalid("secret", f"The {SECRET_NAMES[kind]} is empty.")
    elif connection is None or not connection.has_secret:
        raise Invalid("secret", f"Enter the {SECRET_NAMES[kind]}.")
    elif _origin(connection.base_url) != _origin(base_url):
        # Otherwise anyone at an admin's keyboard could send the stored secret to a host of
        # their choosing with "Test connection".
        raise Invalid(
            "secret",
            f"The host changed: enter the {SECRET_NAMES[kind]} again to send it to the new one.",
        )
    now = utcnow()
    if connection is None:
        connection = Connection(kind=kind)
        db.session.add(connection)
    before = _public_view(connection)
    connection.base_url = base_url
    connection.client_id = client_id if kind == ONELOGIN else None
    connection.app_id = app_id if kind == ONELOGIN else None
    connection.saved_by, connection.saved_at = actor, now
    if secret is not None:
        _set_secret(connection, secret, actor, now)
    after = _public_view(connection)
    changed = {k: [before.get(k), v] for k, v in after.items() if before.get(k) != v}
    if changed:
        _forget_test(connection)  # the last test was of other settings
    audit.record(
        "connection.saved",
        actor=actor,
        outcome="success",
        details={
            "connection": kind,
            "changed": changed,
            "secret": "replaced" if secret is not None else "unchanged",
        },
    )
    _commit_once_per_kind(kind)
    return connection


def _origin(url: str) -> tuple[str, str | None, int | None]:
    parts = urlsplit(url)
    return parts.scheme, parts.hostname, parts.port


def _commit_once_per_kind(kind: str) -> None:
    """Two first saves at once collide on the unique kind: the second is told to retry."""
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise Invalid(
            "base_url", f"Someone saved the {TITLES[kind]} at the same moment; reload and retry."
        ) from None


def _app_id(value: str | int | None) -> int:
    try:
        app_id = int(str(value).strip())
    except ValueError:
        app_id = 0
    if not 0 < app_id < 2**31:
        raise Invalid(
            "app_id",
            "Enter the numeric id of the Workato app in OneLogin (the number in the app's URL "
            "in OneLogin's admin console).",
        )
    return app_id


def _set_secret(connection: Connection, secret: str | None, actor: str, now) -> None:
    """Store (or, with None, clear) the secret; whatever the last test said is void."""
    connection.secret_ciphertext = vault().encrypt(secret) if secret is not None else None
    # Short secrets would be half given away by their last four characters.
    connection.secret_last4 = secret[-4:] if secret is not None and len(secret) >= 12 else None
    connection.secret_saved_by, connection.secret_saved_at = actor, now
    _forget_test(connection)


def _forget_test(connection: Connection) -> None:
    connection.last_test_at = connection.last_test_ok = connection.last_test_message = None


def _public_view(connection: Connection) -> dict:
    return {
        "base_url": connection.base_url,
        "client_id": connection.client_id,
        "app_id": connection.app_id,
    }


def clear_secret(kind: str, actor: str) -> None:
    connection = get(kind)
    if connection is None or not connection.has_secret:
        raise Invalid("secret", f"No {SECRET_NAMES[kind]} is stored.")
    connection.secret_ciphertext = connection.secret_last4 = None
    connection.secret_saved_by, connection.secret_saved_at = actor, utcnow()
    connection.last_test_at = connection.last_test_ok = connection.last_test_message = None
    audit.record(
        "connection.secret_cleared", actor=actor, outcome="success", details={"connection": kind}
    )
    db.session.commit()


def rotate_keys(actor: str) -> int:
    """Re-encrypt every stored secret with the newest key; all or nothing."""
    connections = [c for c in db.session.scalars(db.select(Connection)) if c.has_secret]
    rotated = {c.id: vault().rotate(c.secret_ciphertext) for c in connections}
    for connection in connections:
        connection.secret_ciphertext = rotated[connection.id]
    audit.record(
        "connection.keys_rotated",
        actor=actor,
        outcome="success",
        details={"secrets": len(connections)},
    )
    db.session.commit()
    return len(connections)


def try_connection(kind: str, actor: str) -> ConnectionCheck:
    """Call the service with the stored credentials; remember and audit the outcome."""
    connection = get(kind)
    if connection is None:
        return ConnectionCheck(kind, False, f"The {TITLES[kind]} is not configured yet.", "missing")
    try:
        client_for(connection, retry=ONE_TRY).check()
        result = ConnectionCheck(
            kind, True, f"Connected to {TITLES[kind]} at {connection.base_url}."
        )
    except errors.ConnectionProblem as problem:
        result = ConnectionCheck(kind, False, problem.message, problem.kind)
    except SecretUnreadable as exc:
        result = ConnectionCheck(kind, False, str(exc), "secret_unreadable")
    result = replace(result, checked_at=utcnow())
    note_health(kind, result.ok, result.message, result.checked_at)
    audit.record(
        "connection.tested",
        actor=actor,
        outcome="success" if result.ok else "failed",
        details={"connection": kind, "message": result.message, "problem": result.problem_kind},
    )
    db.session.commit()
    return result


# Problems that say the connection itself is down or its credential refused, as opposed to
# one request being wrong: what the Overview, the metrics and the alerts call "down".
DOWN = frozenset(
    {errors.CONNECT, errors.TLS, errors.TIMEOUT, errors.UNAUTHORIZED, errors.FORBIDDEN}
)
KIND_OF_SERVICE = {title: kind for kind, title in TITLES.items()}


def note_health(kind: str, ok: bool, message: str, at: datetime | None = None) -> None:
    """Remember how a connection last answered: a test, a setup check, a plan or a run.
    The Overview, the metrics and the alerts read this; the caller commits."""
    connection = get(kind)
    if connection is None:
        return
    connection.last_test_at = at or utcnow()
    connection.last_test_ok = ok
    connection.last_test_message = message


def note_problem(problem: errors.ConnectionProblem) -> None:
    """A call failed: when it says the connection is down, remember that (note_health)."""
    kind = KIND_OF_SERVICE.get(problem.service)
    if kind is not None and problem.kind in DOWN:
        note_health(kind, False, problem.message)


def disable_scim(actor: str, clear_token: bool) -> None:
    connection = get(SCIM)
    if connection is None:
        raise Invalid("scim", "The Workato SCIM connection is not configured.")
    connection.enabled = False
    connection.disabled_by, connection.disabled_at = actor, utcnow()
    if clear_token and connection.has_secret:
        _set_secret(connection, None, actor, utcnow())
    audit.record(
        "connection.scim_disabled",
        actor=actor,
        outcome="success",
        details={"token": "cleared" if clear_token else "kept"},
    )
    db.session.commit()


def enable_scim(actor: str) -> None:
    connection = get(SCIM)
    if connection is None or connection.enabled:
        raise Invalid("scim", "SCIM is not disabled.")
    connection.enabled = True
    connection.disabled_by = connection.disabled_at = None
    audit.record("connection.scim_enabled", actor=actor, outcome="success", details={})
    db.session.commit()
