"""What an alert says, in words an admin acts on: the payload kept in the outbox when a
transition is claimed, and the message each channel sends from it (with what the rate limit
held back). Pure: no database, no Flask."""

from __future__ import annotations

from datetime import datetime

from dashboard.alerts.channels import Outgoing
from dashboard.alerts.models import FIRING, RESOLVED

NAMES_SHOWN = 20  # names in one message; the rest are counted ("and 12 more")


def listed(names: list[str], total: int | None = None) -> str:
    """Names as "a, b and c", at most NAMES_SHOWN of them, the rest counted."""
    total = len(names) if total is None else total
    shown = names[:NAMES_SHOWN]
    if total > len(shown):
        return ", ".join(shown) + f" and {total - len(shown)} more"
    if len(shown) > 1:
        return ", ".join(shown[:-1]) + f" and {shown[-1]}"
    return shown[0] if shown else ""


def firing(finding) -> dict:
    return {
        "title": finding.title,
        "text": finding.text,
        "facts": finding.facts,
        "link": finding.link,
    }


def more_leavers(finding, new_names: list[str]) -> dict:
    """The orphans condition, still open, with names that were not in the last alert."""
    count = len(new_names)
    title = f"{count} new possible leaver{'s' if count != 1 else ''}"
    text = f"New since the last alert: {listed(new_names)}. {finding.text}"
    return {
        "title": title,
        "text": text,
        "facts": {**finding.facts, "new": new_names},
        "link": finding.link,
    }


def resolved(opened_title: str, finding) -> dict:
    """`opened_title` is what the alert said when it opened; `finding` what cleared it."""
    text = f"{opened_title}: resolved. {finding.title}."
    if finding.text:
        text += f" {finding.text}"
    return {
        "title": f"Resolved: {opened_title}",
        "text": text,
        "facts": finding.facts,
        "link": finding.link,
    }


def test(actor: str) -> Outgoing:
    return Outgoing(
        subject="Test alert",
        text=(
            f"Test alert from the provisioning dashboard, sent by {actor}. Alerts reach you "
            "here when a sync run fails, a connection stops working, the scheduled reconcile "
            "leaves drift, or anything else needs an admin."
        ),
        kind="test",
        status="test",
    )


def _when(at: str) -> str:
    return f"{datetime.fromisoformat(at):%Y-%m-%d %H:%M:%S} UTC"


def outgoing(
    key: str,
    status: str,
    payload: dict,
    base_url: str | None,
    per_hour: int,
    capped_since: datetime | None = None,
) -> Outgoing:
    """The message as sent: the sentence, then what was held back, then the link."""
    lead = "Alert" if status == FIRING else "Resolved" if status == RESOLVED else status
    title = payload["title"].removeprefix("Resolved: ")
    lines = [f"{lead}: {title}", payload["text"]]
    held = payload.get("held_back") or []
    if held:
        changes = " and ".join(f"{h['status']} at {_when(h['at'])}" for h in held[-5:])
        earlier = f"{len(held)} earlier change{'s' if len(held) != 1 else ''}"
        lines.append(f"(Held back by the rate limit: {earlier} of this alert, {changes}.)")
    if capped_since is not None:
        lines.append(
            f"(Delayed from {capped_since:%Y-%m-%d %H:%M} UTC by the limit of {per_hour} "
            "alerts an hour.)"
        )
    link = f"{base_url or ''}{payload['link']}"
    lines.append(link)
    facts = dict(payload.get("facts") or {})
    if held:
        facts["held_back"] = held
    return Outgoing(
        subject=payload["title"],
        text="\n".join(line for line in lines if line),
        kind=key,
        status=status,
        facts=facts,
        links={"dashboard": link},
    )
