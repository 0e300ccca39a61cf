"""`flask audit ...`: the audit trail for operators (DESIGN.md §6).

`export` writes the entries the filters match, in the order they were recorded (the hash
chain's), to standard output as CSV or
JSON Lines (the same files as the Audit page's export links), streamed, so a million entries
are never held in memory. Its count goes to standard error, leaving standard output to the
data. Exit codes: 0 when written (nothing matching is not a failure); 2 for wrong usage
(an unknown format or source, a time that is not a date or an ISO 8601 date and time).

`verify` exits 1 at the first broken link or digest that does not hold; `import` exits 1
when a source failed; `prune` without --yes exits 3 when something would be removed.
`digest` signs where the chain stands now; `public-key` prints the key that checks digests;
`export --digests` writes every signed digest (dashboard.audit.digests).
"""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import AppGroup

from dashboard.audit import digests, export, retention, search
from dashboard.commands import FAILED, OK, REFUSED, actor, finish, json_option
from dashboard.extensions import db

group = AppGroup("audit", help="The audit trail: verify, sign, export, import and prune it.")

FORMATS = {"csv": export.csv_lines, "jsonl": export.jsonl_lines}


def _time(*, end: bool):
    def check(ctx: click.Context, param: click.Parameter, value: str | None) -> str:
        if not value:
            return ""
        try:
            search.parse_time(value, end=end)
        except ValueError:
            raise click.BadParameter(f"{value!r} is not {search.TIME_HINT}.") from None
        return value

    return check


@group.command("export")
@click.option(
    "--format",
    "format_",
    type=click.Choice(sorted(FORMATS)),
    help="CSV (details as a JSON cell) or JSON Lines (one object per entry). [default: csv]",
)
@click.option(
    "--digests",
    "signed",
    is_flag=True,
    help="Write the signed digests instead (JSON Lines, every one, oldest first): check an "
    "export's chain against them with the public key (flask audit public-key).",
)
@click.option(
    "--since",
    callback=_time(end=False),
    help="Entries at or after this UTC date (its 00:00) or date and time (inclusive).",
)
@click.option(
    "--until",
    callback=_time(end=True),
    help="Entries before this UTC date and time (exclusive); a date includes that whole day.",
)
@click.option("--user", default="", help="The target user, exactly as recorded.")
@click.option("--actor", default="", help="Who did it, exactly as recorded.")
@click.option("--action", default="", help="An action (roles.edit) or a prefix (access.).")
@click.option("--source", type=click.Choice(search.SOURCES), help="Where the entry came from.")
def export_command(format_, signed, since, until, user, actor, action, source):
    """Write the audit entries the filters match, in the order they were recorded (the hash
    chain's), to standard output: what the Audit page shows for the same filters, every page
    of it (the page lists them by when they happened). Columns: id, occurred_at
    (ISO 8601 UTC), actor, source, action, outcome, target_user, source_ip, details."""
    if signed:
        if format_ == "csv" or any((since, until, user, actor, action, source)):
            raise click.UsageError(
                "--digests writes every digest as JSON Lines: it takes no filter and no "
                "--format csv."
            )
        written = 0
        for line in digests.jsonl_lines():
            written += 1
            click.echo(line, nl=False)
        click.echo(f"{written} digests written.", err=True)
        return
    format_ = format_ or "csv"
    filters = search.Filters(
        user=user.strip(),
        actor=actor.strip(),
        action=action.strip(),
        source=source or "",
        since=since,
        until=until,
    )
    written = 0

    def counted(rows):
        nonlocal written
        for row in rows:
            written += 1
            yield row

    for chunk in FORMATS[format_](counted(search.rows(filters))):
        click.echo(chunk, nl=False)
    click.echo(f"{written} entries written.", err=True)


@group.command("verify")
@json_option
def verify_command(as_json):
    """Check the audit trail's hash chain from the newest pruning checkpoint, then every
    signed digest with the public key; report the first entry changed, removed or inserted
    behind the dashboard's back, or the first digest the chain no longer matches, that is
    not signed by this installation's key, or that was removed (exit 1)."""
    verdict = digests.verify_all()
    if verdict.ok:
        signed = (
            f"{verdict.digests} signed digests match it, the newest up to entry "
            f"#{verdict.signed_up_to}."
            if verdict.digests
            else "No digest has been signed yet (flask audit digest signs one)."
        )
        human = f"The audit trail verifies: {verdict.checked} entries, every link holds. {signed}"
    else:
        human = (
            f"The audit trail does not verify: {verdict.problem} "
            f"({verdict.checked} entries checked before it.)"
        )
    finish(OK if verdict.ok else FAILED, verdict.as_json(), human, as_json)


@group.command("prune")
@click.option(
    "--older-than-days",
    type=click.IntRange(min=1),
    help="Remove entries recorded more than this many days ago "
    "(default: DASHBOARD_AUDIT_RETENTION_DAYS).",
)
@click.option("--yes", is_flag=True, help="Remove them (without it, only count them).")
@json_option
def prune_command(older_than_days, yes, as_json):
    """Remove the entries the dashboard recorded longer ago than the retention (by when they
    were recorded, not when they happened: an imported event from last year recorded today
    stays), leaving a signed checkpoint so what remains still verifies. Without --yes, say
    how many would go (exit 3)."""
    days = (
        older_than_days
        or current_app.extensions["dashboard.settings"].DASHBOARD_AUDIT_RETENTION_DAYS
    )
    if not days:
        message = (
            "Retention is off (DASHBOARD_AUDIT_RETENTION_DAYS=0): nothing is pruned. "
            "Pass --older-than-days N."
        )
        finish(OK, {"ok": True, "pruned": 0, "message": message}, message, as_json)
    before = retention.cutoff(days)
    if not yes:
        plan = retention.preview(before)
        message = f"{plan.count} entries were recorded more than {days} days ago (before " + (
            f"{before:%Y-%m-%d %H:%M} UTC). Run again with --yes to remove them."
            if plan.count
            else f"{before:%Y-%m-%d %H:%M} UTC): nothing to remove."
        )
        code = REFUSED if plan.count else OK
        finish(code, {"ok": code == OK, **plan.as_json(), "message": message}, message, as_json)
    try:
        done = retention.prune(before, actor())
    except retention.PruneRefused as exc:
        finish(FAILED, {"ok": False, "message": str(exc)}, str(exc), as_json)
    message = (
        f"Removed {done.count} entries recorded before {before:%Y-%m-%d %H:%M} UTC; the "
        "checkpoint keeps the chain verifiable."
    )
    finish(OK, {"ok": True, **done.as_json(), "message": message}, message, as_json)


@group.command("digest")
@json_option
def digest_command(as_json):
    """Sign where the audit chain stands now (its newest entry's seq and hash, the time and
    the previous digest's hash) with the audit signing key, and store the digest (also in
    DASHBOARD_AUDIT_DIGEST_DIR when set). Also done every hour there are entries, at the end
    of each sync run and before a prune."""
    digest = digests.sign(digests.COMMAND)
    document = digests.as_json(digest)
    db.session.commit()
    human = (
        f"Signed digest #{digest.number}: the chain up to entry #{digest.seq} "
        f"({digest.head_hash[:16]}…) at {digest.signed_at:%Y-%m-%d %H:%M:%S} UTC."
    )
    finish(OK, document, human, as_json)


@group.command("public-key")
def public_key_command():
    """Print the public key (PEM) that checks the audit digests: give it to whoever checks
    exports, by a channel other than the dashboard's database."""
    click.echo(digests.key().public_pem, nl=False)
