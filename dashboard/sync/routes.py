"""The Sync page: preview a plan, apply it, follow the run, cancel, resume or retry it, and
read any run's items. Thin: each view calls one function of dashboard.sync.service.

Under htmx the forms swap #sync-state (or one run's progress card) and refusals arrive as
messages; without JavaScript every form posts, flashes and redirects back (303).
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import (
    Blueprint,
    abort,
    current_app,
    make_response,
    render_template,
    request,
    url_for,
)
from flask_login import current_user

from dashboard.auth.permissions import background_poll
from dashboard.connections import budget_store
from dashboard.htmx import answer, back, is_htmx, refused
from dashboard.setup import service as setup
from dashboard.setup.service import FAILING
from dashboard.sync import display, guard, people, reports, runs, service
from dashboard.sync.models import PLANNED, Run
from dashboard.sync.planner import ACTIONS

bp = Blueprint("sync", __name__, url_prefix="/sync")
for _name, _filter in display.FILTERS.items():
    bp.add_app_template_filter(_filter, _name)

PREVIEW_ITEMS = 200  # writes listed in a preview; the run page pages through the rest
RUN_ITEMS_PAGE = 50
HISTORY = 20
FAILED_SHOWN = 20
ITEM_STATUSES = ("pending", "running", "succeeded", "failed", "superseded")

ANNOUNCE_STEP = 25  # the status line speaks again when the percent crosses a step


@bp.app_context_processor
def labels() -> dict:
    return {
        "run_status_labels": display.STATUS_LABELS,
        "run_kind_labels": display.KIND_LABELS,
        "action_hints": display.ACTION_HINTS,
        "action_labels": display.ACTION_LABELS,
        "actions": ACTIONS,
        "redacted_request": reports.redacted_request,
        # A queued run waits for `flask sync worker`; with the thread executor it starts now.
        "sync_worker": current_app.extensions["dashboard.settings"].DASHBOARD_SYNC_EXECUTOR
        == "worker",
    }


# --- what the templates show -----------------------------------------------------------


@dataclass(frozen=True)
class Tracked:
    """A run with what its progress card shows."""

    run: Run
    progress: reports.Progress
    failed: list[dict]  # the first failed items of a finished run
    can_resume: bool

    @property
    def said(self) -> str:
        """What the card's status line says: it changes only with the status or when the
        percent crosses a step, so a screen reader is not told every second."""
        percent = self.progress.percent
        step = 100 if percent == 100 else percent // ANNOUNCE_STEP * ANNOUNCE_STEP
        status = display.STATUS_LABELS.get(self.run.status, self.run.status).lower()
        if self.run.is_active:
            return f"Run {self.run.id} {status}: {step}% done."
        return f"Run {self.run.id} {status}: {self.progress.done} of {self.progress.total} done."


def _tracked(run: Run) -> Tracked:
    progress = reports.progress(run)
    failed = []
    if not run.is_active and progress.failed:
        failed = reports.run_json(run, failed_limit=FAILED_SHOWN)["failed"]
    return Tracked(run, progress, failed, service.can_resume(run, progress.pending))


def _card(run: Run):
    """A run's progress card for htmx. The card sends back what its status line said and
    where it is shown (hx-vals): the line is updated only when it would say something new,
    and on the Sync page a finished run's card offers Preview. A finished run's card also
    tells the page (HX-Trigger: run-finished), so that what lists its items reloads them."""
    track = _tracked(run)
    response = make_response(
        render_template(
            "sync/_progress.html",
            track=track,
            on_sync_page=request.values.get("place") == "sync",
            announce=request.values.get("said") != track.said,
        )
    )
    if not run.is_active:
        response.headers["HX-Trigger"] = "run-finished"
    return response


def _state(**extra) -> dict:
    """#sync-state: the active run, else the preview, else the Preview button and the last
    run's outcome; above them, failing setup checks; below, OneLogin's API budget."""
    active = service.current_active()
    preview = None if active else runs.preview()
    latest = None if active or preview else runs.latest()
    context: dict = {
        "active": _tracked(active) if active else None,
        "preview": preview,
        "latest": _tracked(latest) if latest else None,
        "setup_failing": [item for item in setup.checklist() if item.state == FAILING],
        "budget": budget_store.shown(),  # OneLogin's API budget, as last seen
        "section": "sync",
        **extra,
    }
    if preview is not None:
        items = reports.preview_items(preview, PREVIEW_ITEMS)
        keys = [item.key for item in items]
        context.update(
            items=items,
            more=max(0, preview.total - len(items)),
            orphans=reports.orphans(),
            guard=guard.guard(preview),
            dangers=people.dangers(keys),
            people_ids=people.ids(keys),
        )
        if hasattr(service, "preview_is_stale"):
            context["stale"] = service.preview_is_stale(preview)
    return context


def _answer(message: str | None = None, category: str = "success", status: int = 200, **extra):
    """After a change: #sync-state afresh (htmx) or back to the page (a plain form)."""

    def state():
        messages = [(category, message)] if message else []
        return render_template("sync/_state.html", oob_messages=messages, **_state(**extra)), status

    return answer(state, url_for(".page"), message, category)


def _joined(exc: service.AlreadyRunning) -> str:
    return f"Run {exc.run.id} is already {exc.run.status}: showing it instead."


def _run_or_404(run_id: int) -> Run:
    run = runs.get(run_id)
    if run is None:
        abort(404, "There is no such run.")
    return run


# --- views -----------------------------------------------------------------------------


@bp.get("")
def page() -> str:
    return render_template("sync/page.html", history=runs.history(HISTORY), **_state())


@bp.post("/preview")
def preview():
    """Read both sides and store the plan; nothing is sent to Workato."""
    try:
        service.make_plan(current_user.actor)
    except service.NotReady as exc:
        return _answer(str(exc), "error", 409)
    except service.AlreadyRunning as exc:
        return _answer(_joined(exc), "error", 409)
    return _answer()


@bp.post("/runs/<int:run_id>/apply")
def apply(run_id: int):
    confirm = request.form.get("confirm_suspensions", "").strip()
    try:
        service.apply(run_id, current_user.actor, int(confirm) if confirm.isdecimal() else None)
    except service.NeedsConfirmation as exc:
        return _answer(str(exc), "error", 422, guard_error=str(exc))
    except service.AlreadyRunning as exc:
        return _answer(_joined(exc), "error", 409)
    except (service.Refused, service.NotReady) as exc:
        return _answer(str(exc), "error", 409)
    return _answer()


@bp.get("/runs/<int:run_id>/progress")
@background_poll
def progress(run_id: int):
    """One run's progress card; it polls itself every second until the run is final."""
    run = service.refresh_if_silent(_run_or_404(run_id))  # a dead process's run: interrupted
    return _card(run)


@bp.post("/runs/<int:run_id>/cancel")
def cancel(run_id: int):
    return _change_run(
        run_id, service.cancel, "Cancelling: items being sent finish, the rest stay pending."
    )


@bp.post("/runs/<int:run_id>/resume")
def resume(run_id: int):
    return _change_run(run_id, service.resume, "Resumed: what already succeeded is not sent again.")


def _change_run(run_id: int, change, done: str):
    """Cancel or resume: under htmx the run's card afresh, else back to the page."""
    _run_or_404(run_id)
    try:
        run = change(run_id, current_user.actor)
    except service.AlreadyRunning as exc:
        return _refused(_joined(exc), 409)
    except (service.Refused, service.NotReady) as exc:
        return _refused(str(exc), 409)
    # A queued run just ends: its message says so.
    return answer(
        lambda: _card(run), url_for(".page"), done if run.is_active else run.message or done
    )


@bp.post("/runs/<int:run_id>/retry")
def retry(run_id: int):
    """A new run of only this run's failed items."""
    _run_or_404(run_id)
    try:
        run = service.retry_failed(run_id, current_user.actor)
    except service.AlreadyRunning as exc:
        return _refused(_joined(exc), 409)
    except (service.Refused, service.NotReady) as exc:
        return _refused(str(exc), 409)
    return back(url_for(".page"), f"Retrying {run.total} failed items as run {run.id}.")


def _refused(message: str, status: int):
    return refused(message, status, url_for(".page"))


@bp.get("/runs/<int:run_id>")
def run(run_id: int) -> str:
    """A run and its items, filtered by status, paged by item id."""
    found = _run_or_404(run_id)
    status = request.args.get("status", "")
    status = status if status in ITEM_STATUSES else ""
    after = request.args.get("after", 0, type=int)
    fragment = is_htmx()
    # The card first, the items next: a running run's items are never older than its card.
    track = _tracked(found) if found.status != PLANNED and not fragment else None
    items = runs.items_page(found.id, status, after, RUN_ITEMS_PAGE + 1)
    more = len(items) > RUN_ITEMS_PAGE
    items = items[:RUN_ITEMS_PAGE]
    context = {
        "run": found,
        "items": items,
        "status": status,
        "after": after,
        "next_after": items[-1].id if more else None,
        "statuses": ITEM_STATUSES,
        "people_ids": people.ids([item.key for item in items]),
        "preview_mode": found.status == PLANNED,
        "section": "sync",
    }
    if fragment:
        return render_template("sync/_items.html", **context)
    return render_template("sync/run.html", track=track, **context)
