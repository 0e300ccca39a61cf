"""`flask alerts ...`: a test alert through every configured channel, for setting up and
for monitoring that alerts still reach someone."""

from __future__ import annotations

from flask.cli import AppGroup

from dashboard.alerts import service
from dashboard.alerts.channels import TITLES
from dashboard.commands import FAILED, OK, REFUSED, actor, finish, json_option
from dashboard.timeutil import utcnow

group = AppGroup("alerts", help="Alerts by webhook and e-mail.")

NOTHING_CONFIGURED = (
    "No alert channel is configured: set DASHBOARD_ALERT_WEBHOOK_URL, or DASHBOARD_SMTP_URL "
    "with DASHBOARD_ALERT_EMAIL_FROM and DASHBOARD_ALERT_EMAIL_TO."
)


@group.command("test")
@json_option
def test_command(as_json):
    """Send a test alert through every configured channel now. Exit 0 when each took it, 1
    when one did not (the reason is printed), 3 when no channel is configured."""
    results = service.send_test(actor())
    at = utcnow().isoformat()
    items = [
        {
            "id": r.channel,
            "title": r.title,
            "state": "verified" if r.ok else "failing",
            "message": r.message,
            "checked_at": at,
        }
        for r in results
    ]
    tried = {r.channel for r in results}
    items += [
        {
            "id": name,
            "title": title,
            "state": "cannot_check",
            "message": "Not configured.",
            "checked_at": None,
        }
        for name, title in TITLES.items()
        if name not in tried
    ]
    if not results:
        finish(REFUSED, {"ok": False, "items": items}, NOTHING_CONFIGURED, as_json)
    ok = all(r.ok for r in results)
    lines = [f"{'ok  ' if r.ok else 'FAIL'} {r.title}: {r.message}" for r in results]
    finish(OK if ok else FAILED, {"ok": ok, "items": items}, "\n".join(lines), as_json)
