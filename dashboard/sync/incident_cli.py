"""The emergency stop for scripts: `flask connections disable-scim [--clear-token] --yes` and
`flask connections enable-scim`. They switch the SCIM connection (the runner's watcher then
stops a run already sending) and name the run that stops, which is why they live with the
sync and join the `connections` group in setup_commands.
"""

from __future__ import annotations

import click
from flask.cli import with_appcontext

from dashboard.commands import FAILED, OK, REFUSED, actor, finish, json_option
from dashboard.connections import service as connections
from dashboard.connections.models import SCIM
from dashboard.sync import service as sync

NOT_CONFIGURED = "The Workato SCIM connection is not configured: there is nothing to switch."
MANUAL_STEPS = (
    "Finish the two manual steps: untick Enable provisioning on the Workato app in OneLogin, "
    "and Refresh token in Workato."
)
TOKEN_STATES = {
    "cleared": "The SCIM token is cleared.",
    "kept": "The SCIM token is kept.",
    "none": "No SCIM token is stored.",
}


def _scim_or_exit(as_json: bool):
    connection = connections.get(SCIM)
    if connection is None:
        finish(FAILED, {"ok": False, "message": NOT_CONFIGURED}, NOT_CONFIGURED, as_json)
    return connection


def _stopping(run) -> str:
    if run is None:
        return "No run is active."
    return (
        f"Run {run.id} ({run.status}, started by {run.started_by}) stops within a second: "
        "writes in flight finish and are recorded, the rest stay pending for a resume."
    )


@click.command("disable-scim")
@with_appcontext
@click.option("--clear-token", is_flag=True, help="Also forget the stored SCIM token.")
@click.option("--yes", is_flag=True, help="Do it (without it, only say what it would do).")
@json_option
def disable_scim(clear_token, yes, as_json):
    """Stop every SCIM write from the dashboard, the active run's included. Without --yes,
    only say what it would do (exit 3)."""
    connection = _scim_or_exit(as_json)
    was_enabled = connection.enabled
    clear = clear_token and connection.has_secret
    active = sync.current_active()
    active_id = active.id if active else None
    already = "SCIM is already disabled" + (
        f" (by {connection.disabled_by})" if connection.disabled_by else ""
    )
    if not was_enabled and not clear:
        token = "kept" if connection.has_secret else "none"
        message = f"{already}. {TOKEN_STATES[token]} Nothing changed."
        document = {
            "ok": True,
            "enabled": False,
            "changed": False,
            "token": token,
            "active_run": active_id,
        }
        finish(OK, document, message, as_json)
    if not yes:
        if was_enabled:
            lines = ["Would disable SCIM: the dashboard would send no more SCIM writes."]
            lines.append(_stopping(active))
        else:
            lines = [f"{already}."]
        lines.append(
            "Would clear the stored SCIM token."
            if clear
            else "Would keep the stored SCIM token."
            if connection.has_secret
            else "No SCIM token is stored."
        )
        lines.append("Nothing was changed. Run again with --yes to do it.")
        document = {
            "ok": False,
            "message": "needs --yes",
            "enabled": was_enabled,
            "clear_token": clear,
            "active_run": active_id,
        }
        finish(REFUSED, document, "\n".join(lines), as_json)
    if was_enabled:
        connections.disable_scim(actor(), clear_token=clear)
        lines = ["SCIM is disabled: the dashboard sends no more SCIM writes.", _stopping(active)]
    else:
        connections.clear_secret(SCIM, actor())
        lines = [f"{already}."]
    token = "cleared" if clear else "kept" if connection.has_secret else "none"
    lines += [
        TOKEN_STATES[token],
        MANUAL_STEPS,
        "Re-enable with `flask connections enable-scim`"
        + (f", then `flask sync run --resume {active_id} --yes`." if active_id else "."),
    ]
    document = {
        "ok": True,
        "enabled": False,
        "changed": True,
        "token": token,
        "active_run": active_id,
    }
    finish(OK, document, "\n".join(lines), as_json)


@click.command("enable-scim")
@with_appcontext
@json_option
def enable_scim(as_json):
    """Let the dashboard send SCIM writes again after disable-scim."""
    connection = _scim_or_exit(as_json)
    if connection.enabled:
        message = "SCIM is not disabled: nothing changed."
        finish(OK, {"ok": True, "enabled": True, "changed": False}, message, as_json)
    connections.enable_scim(actor())
    message = (
        "SCIM is enabled again. Resume a stopped run with `flask sync run --resume RUN --yes`."
    )
    finish(OK, {"ok": True, "enabled": True, "changed": True}, message, as_json)
