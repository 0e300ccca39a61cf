"""`flask sync ...`: plan, run and follow the sync from the command line (DESIGN.md §6).

Exit codes: 0 done and fine; 1 something failed (a connection, a run, an item); 3 refused
pending a decision (needs --yes, needs --confirm-suspensions N, SCIM disabled, another run
holds the lock).
"""

from __future__ import annotations

import threading

import click
from flask import current_app
from flask.cli import AppGroup

from dashboard.commands import FAILED, OK, REFUSED, actor, finish, json_option
from dashboard.connections import budget_store
from dashboard.sync import one_user, reports, runner, runs, service
from dashboard.sync.models import SUCCEEDED, Run
from dashboard.sync.planner import ACTIONS, NOOP

group = AppGroup("sync", help="Reconcile OneLogin with Workato: plan, run, follow.")
SHOWN = 50  # changes listed in a human preview; --json has them all
WORKER_POLL_SECONDS = 2.0


def _counts(counts: dict) -> str:
    return ", ".join(f"{action} {counts.get(action, 0)}" for action in ACTIONS)


def _refused_running(run: Run, as_json: bool) -> None:
    message = (
        f"Run {run.id} is {run.status} (started by {run.started_by}): follow it with "
        "`flask sync status`, or cancel it on the Sync page."
    )
    finish(REFUSED, {"ok": False, "message": message, "run": run.id}, message, as_json)


def _plan_or_exit(as_json: bool):
    try:
        return service.make_plan(actor())
    except (
        service.Refused
    ) as exc:  # OneLogin's API budget: wait for its reset, or lower the reserve
        finish(REFUSED, {"ok": False, "message": str(exc)}, f"Cannot plan now: {exc}", as_json)
    except service.NotReady as exc:
        finish(FAILED, {"ok": False, "message": str(exc)}, f"Cannot plan: {exc}", as_json)
    except runs.AlreadyRunning as exc:
        _refused_running(exc.run, as_json)


def _preview_lines(plan) -> list[str]:
    changes = [d for d in plan.decisions if d.action != NOOP]
    lines = [f"Plan: {_counts(plan.counts)}."]
    for d in changes[:SHOWN]:
        what = "; ".join(f"{path}: {old!r} -> {new!r}" for path, (old, new) in d.changes.items())
        lines.append(f"  {d.action:<10} {d.user_name}  {what or d.reason}")
        if d.danger:
            lines.append(f"  {'':<10} ! {d.danger}")
    if len(changes) > SHOWN:
        lines.append(f"  ... and {len(changes) - SHOWN} more (--json lists them all).")
    return lines


@group.command("plan")
@json_option
def plan_command(as_json):
    """Read both sides and show what a sync would do; nothing is sent to Workato."""
    _run, plan = _plan_or_exit(as_json)
    finish(OK, reports.plan_json(plan), "\n".join(_preview_lines(plan)), as_json)


@group.command("run")
@click.option("--yes", is_flag=True, help="Apply the plan (without it, only preview).")
@click.option(
    "--confirm-suspensions",
    type=int,
    metavar="N",
    help="Needed when the plan suspends more users than the guard allows: N must equal "
    "the planned suspensions.",
)
@click.option("--resume", "resume_id", type=int, metavar="RUN", help="Resume this run.")
@click.option("--retry-failed", "retry_id", type=int, metavar="RUN", help="Retry its failures.")
@json_option
def run_command(yes, confirm_suspensions, resume_id, retry_id, as_json):
    """Plan and apply a sync, and wait for its end. Without --yes, only preview."""
    if resume_id and retry_id:
        raise click.UsageError("Give --resume or --retry-failed, not both.")
    if resume_id or retry_id:
        if not yes:
            what = f"resume run {resume_id}" if resume_id else f"retry run {retry_id}'s failures"
            message = f"Add --yes to {what}."
            finish(REFUSED, {"ok": False, "message": message}, message, as_json)
        _start_and_wait(
            lambda: (
                service.resume(resume_id, actor(), start=False)
                if resume_id
                else service.retry_failed(retry_id, actor(), start=False)
            ),
            as_json,
        )
    run, plan = _plan_or_exit(as_json)
    lines = _preview_lines(plan)
    if not yes:
        lines.append("Nothing was sent. Run again with --yes to apply.")
        document = reports.plan_json(plan) | {"ok": False, "message": "needs --yes"}
        finish(REFUSED, document, "\n".join(lines), as_json)
    if not run.total:
        finish(OK, reports.run_json(run) | {"status": "nothing_to_do"}, lines[0], as_json)
    _start_and_wait(
        lambda: service.apply(run.id, actor(), confirm_suspensions, start=False), as_json
    )


def _start_and_wait(start, as_json: bool) -> None:
    try:
        run = start()
    except service.NeedsConfirmation as exc:
        message = f"{exc} (--confirm-suspensions {exc.suspensions})"
        finish(REFUSED, {"ok": False, "message": message}, message, as_json)
    except service.Refused as exc:
        finish(REFUSED, {"ok": False, "message": str(exc)}, str(exc), as_json)
    except service.AlreadyDone as exc:
        finish(OK, {"ok": True, "message": str(exc)}, str(exc), as_json)
    except service.NotReady as exc:
        finish(FAILED, {"ok": False, "message": str(exc)}, str(exc), as_json)
    except runs.AlreadyRunning as exc:
        _refused_running(exc.run, as_json)
    if current_app.extensions["dashboard.settings"].DASHBOARD_SYNC_EXECUTOR == "thread":
        runner.process(run.id)
    else:
        click.echo(f"Queued as run {run.id}; a `flask sync worker` works it. Waiting.", err=True)
        _wait_for(run.id)
    _report(runs.get(run.id), as_json)


def _wait_for(run_id: int) -> None:
    """With DASHBOARD_SYNC_EXECUTOR=worker a `flask sync worker` does the work; we follow."""
    from dashboard.extensions import db

    done = threading.Event()
    while not done.wait(WORKER_POLL_SECONDS):
        db.session.expire_all()
        service.current_active()
        run = runs.get(run_id)
        if run is None or not run.is_active:
            return


def _report(run: Run, as_json: bool) -> None:
    document = reports.run_json(run)
    lines = [
        f"Run {run.id}: {run.status}. Planned: {_counts(document['counts'])}.",
        f"{document['succeeded']} succeeded, {len(document['failed'])} failed, "
        f"{document['pending']} pending.",
    ]
    if run.message:
        lines.append(run.message)
    lines += [f"  failed {f['action']} {f['user_name']}: {f['error']}" for f in document["failed"]]
    finish(OK if run.status == SUCCEEDED else FAILED, document, "\n".join(lines), as_json)


@group.command("status")
@json_option
def status_command(as_json):
    """The running run's progress, or the last run's result. Exit 1 when it did not succeed."""
    active = service.current_active()
    run = active or runs.latest()
    if run is None:
        document = {
            "id": None,
            "status": "none",
            "rate": reports.rate_json(),
            "onelogin_budget": budget_store.onelogin_budget_json(),
        }
        finish(OK, document, "No sync has run yet.", as_json)
    state = reports.progress(run)
    document = {**reports.run_json(run), "onelogin_budget": budget_store.onelogin_budget_json()}
    human = f"Run {run.id} ({run.kind}): {run.status}, {state.done}/{state.total} done"
    if state.rate:
        human += f", {state.rate:.1f}/s, about {state.seconds_left:.0f} s left"
    if run.rate:
        human += f", sending at {run.rate:.1f} requests/s"
    human += f"; {state.failed} failed." + (f"\n{run.message}" if run.message else "")
    fine = run.status == SUCCEEDED or run.is_active
    finish(OK if fine else FAILED, document, human, as_json)


@group.command("user")
@click.argument("email")
@json_option
def user_command(email, as_json):
    """Provision one user now, step by step: read, render, find, act, read back."""
    try:
        result = one_user.provision(email, actor())
    except service.Refused as exc:
        finish(REFUSED, {"ok": False, "message": str(exc)}, str(exc), as_json)
    except service.NotReady as exc:
        finish(FAILED, {"ok": False, "message": str(exc)}, str(exc), as_json)
    marks = {True: "ok  ", False: "FAIL", None: "----"}
    lines = [f"{marks[s.ok]} {s.title}: {s.detail}" for s in result.steps]
    finish(OK if result.ok else FAILED, result.as_json(), "\n".join(lines), as_json)


@group.command("suspend")
@click.argument("emails", nargs=-1, required=True)
@click.option("--yes", is_flag=True, help="Suspend them (without it, nothing is sent).")
@json_option
def suspend_command(emails, yes, as_json):
    """Suspend orphans (Workato users the sync leaves alone) chosen by userName or email."""
    if not yes:
        message = f"Add --yes to suspend {len(emails)} user(s) in Workato: {', '.join(emails)}."
        finish(REFUSED, {"ok": False, "message": message}, message, as_json)
    _start_and_wait(lambda: service.suspend_chosen(list(emails), actor(), start=False), as_json)


@group.command("cancel")
@json_option
def cancel_command(as_json):
    """Cancel the active run: a queued one at once (nothing was sent); a running one stops,
    its writes in flight finish and are recorded, the rest stay pending for a resume.
    Exit 1 when no run is active."""
    run = service.current_active()
    if run is None:
        message = "No run is active: nothing to cancel."
        finish(FAILED, {"ok": False, "message": message}, message, as_json)
    try:
        run = service.cancel(run.id, actor())
    except service.Refused:
        message = f"Run {run.id} ended before it could be cancelled: nothing to cancel."
        finish(FAILED, {"ok": False, "message": message, "run": run.id}, message, as_json)
    human = f"Run {run.id}: {run.status}." + (f" {run.message}" if run.message else "")
    if run.is_active:
        human += (
            " Cancel requested: writes in flight finish and are recorded, the rest stay "
            "pending. Follow it with `flask sync status`."
        )
    finish(OK, reports.run_json(run), human, as_json)
