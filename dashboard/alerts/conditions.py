"""The alert conditions, each read from what the database holds: open or clear, and the
facts an admin needs to act (kind, counts, names, a link to the page that shows it).

No remote call here, and nothing written: `findings()` runs every few seconds in every
process, so each condition is one or two indexed reads. The audit chain's verdict is the one
expensive fact; dashboard.alerts.chain keeps it, and this module only reads what it kept.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from flask import current_app
from sqlalchemy import func, select

from dashboard.alerts import chain
from dashboard.alerts.messages import NAMES_SHOWN, listed
from dashboard.connections.models import KINDS, Connection
from dashboard.connections.service import TITLES
from dashboard.extensions import db
from dashboard.person import Person
from dashboard.schedule import models as schedule
from dashboard.schedule.models import ScheduledReconcile
from dashboard.setup import service as setup
from dashboard.setup.checks import FAILING
from dashboard.sync import models as sync
from dashboard.sync.models import Item, Run
from dashboard.sync.planner import KNOWN, ORPHANED

# A run that ended badly opens `run`; a cancel is an admin's choice, so it neither opens nor
# clears it (the run before it decides).
RUN_ENDS = (sync.SUCCEEDED, sync.FAILED, sync.STOPPED, sync.INTERRUPTED)
RUN_BAD = (sync.FAILED, sync.STOPPED, sync.INTERRUPTED)
# Scheduled reconciles that made a plan: the ones that can say whether drift is left or the
# guard tripped (a skipped, refused or failed one knows nothing new about either).
DRIFT_SAYERS = (schedule.PLANNED, schedule.IN_SYNC, schedule.APPLIED)
GUARD_SAYERS = (*DRIFT_SAYERS, schedule.GUARD)
WRITES = ("create", "update", "suspend", "reactivate")


@dataclass(frozen=True)
class Finding:
    """One condition as the database shows it now. `title` and `text` describe it open, or
    what cleared it; `names` are the possible leavers' keys (the orphans condition only)."""

    key: str
    open: bool
    title: str
    text: str
    link: str  # a path in the dashboard
    facts: dict = field(default_factory=dict)
    names: tuple[str, ...] = ()


def path_for(endpoint: str, anchor: str | None = None, **values) -> str:
    """A dashboard path outside any request (the watch runs in a background thread)."""
    path = current_app.url_map.bind("localhost").build(endpoint, values)
    return f"{path}#{anchor}" if anchor else path


# --- sync runs -------------------------------------------------------------------------------


def _latest_run(statuses) -> Run | None:
    return db.session.scalar(
        select(Run)
        .where(Run.status.in_(statuses))
        .order_by(Run.finished_at.desc(), Run.id.desc())
        .limit(1)
    )


def run_ended() -> Finding | None:
    run = _latest_run(RUN_ENDS)
    if run is None:
        return None
    facts = {
        "run": run.id,
        "kind": run.kind,
        "status": run.status,
        "counts": run.counts,
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
    }
    link = path_for("sync.run", run_id=run.id)
    if run.status == sync.SUCCEEDED:
        return Finding("run", False, f"Sync run {run.id} succeeded", "", link, facts)
    said = f" {run.message}" if run.message else ""
    text = f"Sync run {run.id} ended {run.status}.{said}"
    return Finding("run", True, f"Sync run {run.id} {run.status}", text, link, facts)


def failed_items() -> Finding | None:
    run = _latest_run(sync.FINAL)
    if run is None:
        return None
    failed = db.session.scalar(
        select(func.count()).where(Item.run_id == run.id, Item.status == sync.ITEM_FAILED)
    )
    link = path_for("sync.run", run_id=run.id, status=sync.ITEM_FAILED)
    facts = {"run": run.id, "failed": failed, "total": run.total}
    if not failed:
        title = f"Sync run {run.id} finished with no failed item"
        return Finding("items", False, title, "", link, facts)
    names = list(
        db.session.scalars(
            select(Item.user_name)
            .where(Item.run_id == run.id, Item.status == sync.ITEM_FAILED)
            .order_by(Item.id)
            .limit(NAMES_SHOWN)
        )
    )
    facts["names"] = names
    text = (
        f"{failed} of the {run.total} writes of sync run {run.id} failed "
        f"({listed(names, failed)}). Each one's error is on the run's page; Retry failed "
        "sends them again."
    )
    return Finding("items", True, f"{failed} failed in sync run {run.id}", text, link, facts)


# --- the scheduled reconcile --------------------------------------------------------------


def _latest_reconcile(outcomes) -> ScheduledReconcile | None:
    return db.session.scalar(
        select(ScheduledReconcile)
        .where(ScheduledReconcile.outcome.in_(outcomes))
        .order_by(ScheduledReconcile.due_at.desc())
        .limit(1)
    )


def _reconcile_facts(row: ScheduledReconcile) -> dict:
    return {
        "reconcile": row.id,
        "due_at": row.due_at.isoformat(),
        "outcome": row.outcome,
        "counts": row.counts,
        "run": row.run_id,
    }


def drift() -> Finding | None:
    row = _latest_reconcile(DRIFT_SAYERS)
    if row is None:
        return None
    link = path_for("sync.page")
    facts = _reconcile_facts(row)
    if row.outcome != schedule.PLANNED:
        title = "The scheduled reconcile left no drift"
        return Finding("drift", False, title, row.message or "", link, facts)
    found = ", ".join(f"{row.counts[a]} to {a}" for a in WRITES if row.counts.get(a))
    text = (
        f"The scheduled reconcile of {row.due_at:%Y-%m-%d %H:%M} UTC found OneLogin and "
        f"Workato apart ({found or 'changes'}) and left it for an admin "
        "(DASHBOARD_RECONCILE_APPLY=off). Preview and apply on the Sync page."
    )
    return Finding("drift", True, "Workato differs from OneLogin", text, link, facts)


def guard() -> Finding | None:
    row = _latest_reconcile(GUARD_SAYERS)
    if row is None:
        return None
    link = path_for("sync.page")
    facts = _reconcile_facts(row)
    if row.outcome != schedule.GUARD:
        return Finding("guard", False, "The suspension guard let the plan through", "", link, facts)
    suspend = row.counts.get("suspend", 0)
    text = (
        f"The scheduled reconcile of {row.due_at:%Y-%m-%d %H:%M} UTC would suspend {suspend} "
        "Workato users, more than the suspension guard allows, so nothing was applied. "
        f"{row.message or ''} An admin confirms the number on the Sync page, or finds why."
    ).strip()
    return Finding("guard", True, "The suspension guard tripped", text, link, facts)


# --- people, connections, setup, the audit trail --------------------------------------------


def possible_leavers() -> Finding:
    rows = db.session.execute(
        select(Person.key, Person.user_name)
        .where(Person.state == ORPHANED, Person.orphan_kind == KNOWN)
        .order_by(Person.key)
    ).all()
    link = path_for("users.users", state=ORPHANED)
    keys = tuple(key for key, _ in rows)
    facts = {"count": len(rows), "names": [name for _, name in rows][:NAMES_SHOWN]}
    if not rows:
        return Finding("orphans", False, "No possible leaver is left", "", link, facts)
    text = (
        f"{len(rows)} active in Workato without the Workato app in OneLogin, though OneLogin "
        f"knows them: {listed([name for _, name in rows])}. Possibly leavers removed before the "
        "dashboard existed: suspend them on the Users page if so."
    )
    return Finding("orphans", True, f"{len(rows)} possible leavers", text, link, facts, keys)


def connections() -> list[Finding]:
    found = []
    for connection in db.session.scalars(select(Connection).where(Connection.kind.in_(KINDS))):
        title = TITLES[connection.kind]
        key = f"connection:{connection.kind}"
        link = path_for("connections.page", anchor=connection.kind)
        facts = {
            "connection": connection.kind,
            "message": connection.last_test_message,
            "checked_at": connection.last_test_at.isoformat() if connection.last_test_at else None,
        }
        if connection.last_test_ok is False:
            text = f"The {title} does not work: {connection.last_test_message}"
            found.append(Finding(key, True, f"{title} does not work", text, link, facts))
        else:
            fine = "works" if connection.last_test_ok else "changed, not tried since"
            found.append(Finding(key, False, f"{title} {fine}", "", link, facts))
    return found


def checklist() -> Finding:
    failing = [item for item in setup.checklist() if item.state == FAILING]
    link = path_for("setup.page")
    facts = {"failing": [{"id": item.id, "title": item.title} for item in failing]}
    if not failing:
        return Finding("checklist", False, "No setup step is failing", "", link, facts)
    steps = "; ".join(f"{item.title}: {item.message}" for item in failing[:NAMES_SHOWN])
    count = f"{len(failing)} setup steps fail" if len(failing) > 1 else "A setup step fails"
    return Finding("checklist", True, count, f"{count}. {steps}", link, facts)


def audit_chain() -> Finding | None:
    verdict = chain.kept_verdict()
    if verdict is None:
        return None  # never verified yet
    link = path_for("audit.page")
    facts = {"checked": verdict.get("checked"), "verified_at": verdict.get("verified_at")}
    if verdict["ok"]:
        return Finding("audit_chain", False, "The audit trail verifies", "", link, facts)
    text = (
        f"The audit trail does not verify: {verdict.get('problem')} Something changed the "
        "database behind the dashboard's back; `flask audit verify` says the same."
    )
    return Finding("audit_chain", True, "The audit trail does not verify", text, link, facts)


# Each reader gives zero or more findings; a condition it cannot tell (no run yet) is left
# as it was.
READERS: tuple[Callable[[], Finding | list[Finding] | None], ...] = (
    run_ended,
    failed_items,
    drift,
    possible_leavers,
    connections,
    checklist,
    guard,
    audit_chain,
)
