"""`flask setup ...`: store the SCIM template, run the checklist for monitoring."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from dashboard.commands import FAILED, OK, actor, finish, json_option
from dashboard.setup import service
from dashboard.setup.checks import FAILING
from dashboard.setup.template import TemplateUnreadable

group = AppGroup("setup", help="The setup checklist and the SCIM JSON template.")

MARKS = {
    "verified": "ok  ",
    "failing": "FAIL",
    "needs_confirmation": "todo",
    "cannot_check": "----",
}


@group.command("set-template")
@click.argument("template_file", type=click.File("r"))
@json_option
def set_template(template_file, as_json):
    """Store the SCIM JSON template copied from OneLogin (FILE, or - for standard input)."""
    body = template_file.read()
    try:
        problems = service.save_template(body, actor())
    except TemplateUnreadable as exc:
        finish(FAILED, {"ok": False, "message": str(exc)}, f"Not stored: {exc}", as_json)
    human = "Stored the SCIM JSON template."
    if problems:
        human += " The checklist will flag:\n" + "\n".join(f"- {p}" for p in problems)
    finish(OK, {"ok": True, "problems": problems}, human, as_json)


@group.command("check")
@json_option
def check(as_json):
    """Run every checklist item; exit 1 when a verified item fails (not for items that need
    confirmation or cannot be checked yet)."""
    results = service.run()
    ok = not any(r.state == FAILING for r in results)
    items = [
        {k: v for k, v in r.as_json().items() if k not in ("manual", "group")} | {"group": r.group}
        for r in results
    ]
    lines = [f"{MARKS[r.state]} {r.title}: {r.message}" for r in results]
    finish(OK if ok else FAILED, {"ok": ok, "items": items}, "\n".join(lines), as_json)
