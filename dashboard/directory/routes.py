"""The Users pages: everyone the last plan saw, their provisioning state, and one person's
detail with provisioning on demand. Reads come from the database only."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from markupsafe import Markup

from dashboard import error_page
from dashboard.directory import service
from dashboard.directory.models import Person
from dashboard.htmx import is_htmx
from dashboard.sync import one_user
from dashboard.sync import service as sync
from dashboard.sync.planner import ORPHANED, STATES
from dashboard.timeutil import utcnow

bp = Blueprint("directory", __name__, url_prefix="/users")

STATE_LABELS = {
    "in_sync": "In sync",
    "drift": "Drift",
    "not_provisioned": "Not provisioned",
    "suspended": "Suspended",
    "pending": "Pending",
    "failed": "Failed",
    "orphaned": "Orphaned",
}
# OneLogin user statuses (DESIGN.md §2).
ONELOGIN_STATUS = {
    0: "Unactivated",
    1: "Active",
    2: "Suspended",
    3: "Locked",
    4: "Password expired",
    5: "Awaiting password reset",
    7: "Password pending",
    8: "Security questions required",
}


@bp.app_context_processor
def labels() -> dict:
    return {"state_labels": STATE_LABELS, "onelogin_status": ONELOGIN_STATUS}


@bp.get("")
def users():
    filters = service.Filters.read(request.args)
    context = {
        "filters": filters,
        "page": service.page(filters),
        "no_role": service.NO_ROLE,
        "section": "users",
    }
    if is_htmx():
        return render_template("directory/_people.html", **context)
    return render_template(
        "directory/users.html",
        counts=service.state_counts(),
        attention=service.needing_attention(),
        read_at=service.read_at(),
        today=utcnow().date(),
        roles=service.roles(),
        states=STATES,
        **context,
    )


def _person_or_404(person_id: int) -> Person:
    person = service.get(person_id)
    if person is None:
        abort(404, "No such user in the last plan. Preview a sync to refresh the list.")
    return person


def _person_context(person: Person, **extra) -> dict:
    return {
        "person": person,
        "items": service.items_for(person),
        "orphan": person.state == ORPHANED,
        "section": "users",
        **extra,
    }


@bp.get("/<int:person_id>")
def person(person_id: int) -> str:
    return render_template("directory/person.html", **_person_context(_person_or_404(person_id)))


@bp.post("/<int:person_id>/provision")
def provision(person_id: int):
    """Provision this one person now, showing each step (read, render, find, act, compare).
    The steps come right under the person's name and take the focus (autofocus: htmx
    focuses it after the swap, a browser on load), so a screen reader reads them next."""
    person = _person_or_404(person_id)
    try:
        result = one_user.provision(person.email or person.user_name, current_user.actor)
    except (sync.NotReady, sync.Refused) as exc:
        return _refused(person, str(exc), 409)
    person = service.get(person_id) or person  # the row is rewritten by the provisioning
    context = _person_context(person, result=result)
    if is_htmx():
        return render_template("directory/_person.html", **context)
    return render_template("directory/person.html", **context)


@bp.post("/<int:person_id>/suspend")
def suspend(person_id: int):
    """Suspend an orphan in Workato: an admin's explicit choice, never the sync's."""
    person = _person_or_404(person_id)
    if request.form.get("understood") != "yes":
        return _refused(person, "Tick “I understand” to suspend this Workato user.", 400)
    try:
        run = sync.suspend_chosen([person.user_name], current_user.actor)
    except sync.AlreadyRunning as exc:
        message = f"Run {exc.run.id} is {exc.run.status}: try again when it has finished."
        return _refused(person, message, 409)
    except sync.AlreadyDone as exc:
        flash(str(exc), "success")
        return redirect(url_for(".person", person_id=person.id), 303)
    except (sync.Refused, sync.NotReady) as exc:
        return _refused(person, str(exc), 409)
    link = Markup('<a href="{}">run {}</a>').format(url_for("sync.run", run_id=run.id), run.id)
    flash(Markup("Suspending {} in Workato: {}.").format(person.user_name, link), "success")
    return redirect(url_for(".person", person_id=person.id), 303)


def _refused(person: Person, message: str, status: int):
    if is_htmx():
        return error_page("Not done", message, status)
    flash(message, "error")
    return redirect(url_for(".person", person_id=person.id), 303)


@bp.app_template_filter("scim_path")
def scim_path(path: str) -> str:
    """A SCIM attribute path as admins know it: an extension's attribute by its own name."""
    return path.rsplit(":", 1)[-1] if path.startswith("urn:") else path


@bp.app_template_filter("scim_value")
def scim_value(value: object) -> str:
    """One side of a change, readable: not set, true/false, the addresses of a list."""
    if value is None or value == [] or value == "":
        return "(not set)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ", ".join(str(v.get("value", v)) if isinstance(v, dict) else str(v) for v in value)
    return str(value)
