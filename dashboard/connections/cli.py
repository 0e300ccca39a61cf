"""`flask connections ...`: the Connections page for automation, including the incident
switch (disable-scim / enable-scim) that operators script."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from dashboard.commands import FAILED, OK, actor, finish, json_option, read_secret
from dashboard.connections import service
from dashboard.connections.models import KINDS, ONELOGIN, SCIM, WORKATO_API
from dashboard.connections.vault import SecretUnreadable

group = AppGroup("connections", help="Store, test and rotate the OneLogin and Workato credentials.")


def _save(kind: str, as_json: bool, **values) -> None:
    try:
        connection = service.save(kind, actor=actor(), **values)
    except service.Invalid as exc:
        finish(
            FAILED,
            {"ok": False, "field": exc.field, "message": exc.message},
            f"Not saved: {exc.message}",
            as_json,
        )
    finish(
        OK,
        {"ok": True, "connection": kind, "base_url": connection.base_url},
        f"Saved the {service.TITLES[kind]} connection ({connection.base_url}). "
        "Run `flask connections test` to check it.",
        as_json,
    )


def secret_file_option(name: str, what: str):
    """Secrets come from a file or standard input, never from argv (see read_secret)."""
    return click.option(
        name,
        type=click.File("r"),
        required=True,
        help=f"File holding the {what}; - reads standard input.",
    )


@group.command("set-onelogin")
@click.option("--base-url", required=True, help="e.g. https://yourcompany.onelogin.com")
@click.option("--client-id", required=True, help="The API credential's client id.")
@secret_file_option("--client-secret-file", "client secret")
@click.option("--app-id", required=True, type=int, help="The Workato app's id in OneLogin.")
@json_option
def set_onelogin(base_url, client_id, client_secret_file, app_id, as_json):
    """Store the OneLogin API credential and the Workato app's id."""
    _save(
        ONELOGIN,
        as_json,
        base_url=base_url,
        client_id=client_id,
        app_id=app_id,
        secret=read_secret(client_secret_file),
    )


@group.command("set-scim")
@click.option("--base-url", required=True, help="The SCIM base URL shown in Workato.")
@secret_file_option("--token-file", "SCIM token")
@json_option
def set_scim(base_url, token_file, as_json):
    """Store the Workato SCIM base URL and bearer token."""
    _save(SCIM, as_json, base_url=base_url, secret=read_secret(token_file))


@group.command("set-workato-api")
@click.option("--base-url", required=True, help="e.g. https://www.workato.com")
@secret_file_option("--token-file", "API token")
@json_option
def set_workato_api(base_url, token_file, as_json):
    """Store the optional Workato developer API token (for the list of roles)."""
    _save(WORKATO_API, as_json, base_url=base_url, secret=read_secret(token_file))


@group.command("test")
@json_option
def test_connections(as_json):
    """Test every configured connection; exit 0 only when all of them work."""
    configured = [k for k, c in service.all_by_kind().items() if c is not None]
    results = [service.try_connection(kind, actor()) for kind in configured]
    items = [
        {
            "id": r.kind,
            "title": service.TITLES[r.kind],
            "state": "verified" if r.ok else "failing",
            "message": r.message,
            "checked_at": r.checked_at.isoformat(),
        }
        for r in results
    ]
    items += [
        {
            "id": kind,
            "title": service.TITLES[kind],
            "state": "cannot_check",
            "message": "Not configured.",
            "checked_at": None,
        }
        for kind in KINDS
        if kind not in configured
    ]
    ok = all(r.ok for r in results)
    lines = [f"{'ok  ' if r.ok else 'FAIL'} {service.TITLES[r.kind]}: {r.message}" for r in results]
    if not configured:
        lines = ["No connection is configured yet."]
    finish(OK if ok else FAILED, {"ok": ok, "items": items}, "\n".join(lines), as_json)


@group.command("rotate-key")
@json_option
def rotate_key(as_json):
    """Re-encrypt every stored secret with the first key of DASHBOARD_ENCRYPTION_KEY."""
    try:
        count = service.rotate_keys(actor())
    except SecretUnreadable as exc:
        finish(FAILED, {"ok": False, "message": str(exc)}, str(exc), as_json)
    finish(
        OK,
        {"ok": True, "secrets": count},
        f"Re-encrypted {count} secret(s) with the newest key. Older keys can now be removed "
        "from DASHBOARD_ENCRYPTION_KEY.",
        as_json,
    )
