"""`flask audit import`: OneLogin's events and Workato's activity log into the audit trail,
from where the last import stopped. Part of the `audit` group (see setup_commands)."""

from __future__ import annotations

import click
from flask.cli import with_appcontext

from dashboard.commands import FAILED, OK, actor, finish, json_option
from dashboard.history import imports


@click.command("import")
@with_appcontext
@json_option
def import_command(as_json):
    """Import OneLogin's provisioning events and Workato's activity log from where the last
    import stopped (exit 1 when a source failed; the other is imported all the same)."""
    report = imports.import_all(actor())
    lines = []
    for source in report.sources:
        if not source.configured:
            lines.append(f"{source.source}: not connected, skipped.")
        elif source.problem:
            lines.append(f"{source.source}: failed: {source.problem}")
        else:
            lines.append(f"{source.source}: {source.added} added, {source.skipped} already here.")
    document = {"ok": report.ok, "sources": [s.as_json() for s in report.sources]}
    finish(OK if report.ok else FAILED, document, "\n".join(lines), as_json)
