"""Clients built from the stored connections, with their secrets decrypted only here."""

from __future__ import annotations

from flask import current_app

from dashboard.connections import budget_store
from dashboard.connections.http import RetryPolicy
from dashboard.connections.models import ONELOGIN, SCIM, SECRET_NAMES, WORKATO_API, Connection
from dashboard.connections.onelogin import OneLoginClient
from dashboard.connections.scim import ScimClient
from dashboard.connections.vault import SecretUnreadable, Vault
from dashboard.connections.workato_api import WorkatoApiClient


def _timeout() -> float:
    return current_app.extensions["dashboard.settings"].DASHBOARD_CONNECT_TIMEOUT_SECONDS


# An admin pressing "Test" or reading the checklist wants the answer now, not after backoff.
ONE_TRY = RetryPolicy(attempts=1)


def vault() -> Vault:
    return current_app.extensions["dashboard.vault"]


def secret_of(connection: Connection) -> str:
    if not connection.has_secret:
        raise SecretUnreadable(f"No {SECRET_NAMES[connection.kind]} is stored.")
    return vault().decrypt(connection.secret_ciphertext)


def client_for(connection: Connection, retry: RetryPolicy | None = None, pace=None):
    secret = secret_of(connection)
    options = {"timeout": _timeout(), "retry": retry or RetryPolicy()}
    if connection.kind == ONELOGIN:
        # Every call spends the account's hourly budget: paced by it (budget_store).
        budget = budget_store.pace_for(connection)
        return OneLoginClient(
            connection.base_url, connection.client_id, secret, budget=budget, **options
        )
    if connection.kind == SCIM:
        role_fields = current_app.extensions["dashboard.settings"].DASHBOARD_ROLE_FIELDS
        return ScimClient(
            connection.base_url,
            secret,
            role_fields=tuple(role_fields),
            # "Disable SCIM" holds here: the client itself refuses every write.
            writes_allowed=connection.enabled,
            pace=pace,
            **options,
        )
    if connection.kind == WORKATO_API:
        return WorkatoApiClient(connection.base_url, secret, **options)
    raise ValueError(connection.kind)
