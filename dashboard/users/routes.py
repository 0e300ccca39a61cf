"""The Users pages: everyone the last plan saw, their provisioning state, and one person's
detail with provisioning on demand. Reads come from the database only."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user

from dashboard import audit
from dashboard.extensions import db
from dashboard.htmx import error_page, is_htmx
from dashboard.person import Person
from dashboard.sync import one_user
from dashboard.sync import service as sync
from dashboard.sync.planner import ORPHANED, STATES
from dashboard.timeutil import utcnow
from dashboard.users import access, edits, live, roles, service

bp = Blueprint("users", __name__, url_prefix="/users")

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
        "role_fields": edits.role_fields(),
        "known": roles.catalog(remote=False),
        "section": "users",
    }
    if is_htmx():
        return render_template("users/_people.html", **context)
    return render_template(
        "users/users.html",
        counts=service.state_counts(),
        attention=service.needing_attention(),
        read_at=service.read_at(),
        today=utcnow().date(),
        roles=service.roles(),
        states=STATES,
        **context,
    )


def person_or_404(person_id: int) -> Person:
    person = service.get(person_id)
    if person is None:
        abort(404, "No such user in the last plan. Preview a sync to refresh the list.")
    return person


def role_form_context(person: Person) -> dict:
    """What the role fields form needs, as stored (shown without asking Workato)."""
    fields = edits.role_fields()
    return {
        "role_fields": fields,
        "known": roles.catalog(remote=False),
        "values": {f: (person.roles or {}).get(f) for f in fields},
        "problems": {},
        "shown": None,
        "unrendered": sync.unrendered_role_fields(),
        "place": "page",
    }


def person_context(person: Person, **extra) -> dict:
    return {
        "person": person,
        "items": service.items_for(person),
        "timeline": service.timeline(person),
        "orphan": person.state == ORPHANED,
        "section": "users",
        **role_form_context(person),
        **extra,
    }


def _show(person_id: int, **extra):
    """The person's page (or, for htmx, its body) after an action, with its outcome."""
    person = person_or_404(person_id)
    context = person_context(person, **extra)
    if is_htmx():
        return render_template("users/_person.html", **context)
    return render_template("users/person.html", **context)


@bp.get("/<int:person_id>")
def person(person_id: int) -> str:
    return render_template("users/person.html", **person_context(person_or_404(person_id)))


@bp.get("/<int:person_id>/live")
def live_view(person_id: int) -> str:
    """Both sides read now: on demand, never on page view."""
    person = person_or_404(person_id)
    found = live.read(person, edits.role_fields())
    return render_template("users/_live.html", person=person, live=found)


@bp.post("/<int:person_id>/provision")
def provision(person_id: int):
    """Provision this one person now, showing each step (read, render, find, act, compare).
    The steps come right under the person's name and take the focus (autofocus: htmx
    focuses it after the swap, a browser on load), so a screen reader reads them next."""
    person = person_or_404(person_id)
    try:
        result = one_user.provision(
            person.email or person.user_name,
            current_user.actor,
            known=(person.onelogin_id, person.user_name) if person.onelogin_id else None,
        )
    except (sync.NotReady, sync.Refused) as exc:
        return _refused(person, str(exc), 409)
    return _show(person_id, result=result, result_title="Provision now")


@bp.post("/<int:person_id>/workato")
def set_workato_active(person_id: int):
    """Suspend or reactivate the Workato account directly: for an orphan, or while OneLogin
    is unreachable. An admin's explicit choice, confirmed by ticking "I understand"."""
    person = person_or_404(person_id)
    active = request.form.get("active") == "true"
    if request.form.get("understood") != "yes":
        return _unconfirmed(person, "workato.reactivate" if active else "workato.suspend")
    try:
        result = one_user.set_active(person.user_name, person.key, active, current_user.actor)
    except (sync.NotReady, sync.Refused) as exc:
        return _refused(person, str(exc), 409)
    title = "Reactivate in Workato" if active else "Suspend in Workato"
    return _show(person_id, result=result, result_title=title)


@bp.post("/<int:person_id>/deprovision")
def deprovision(person_id: int):
    """Remove access in OneLogin (one of the walkthrough's three ways), then reconcile the
    person so their Workato account is suspended, and show what happened."""
    person = person_or_404(person_id)
    method = request.form.get("method", "")
    if request.form.get("understood") != "yes":
        return _unconfirmed(person, f"access.{method}")
    try:
        done = access.deprovision(
            person, method, current_user.actor, request.form.get("typed_email", "")
        )
    except access.AccessRefused as exc:
        return _refused(person, str(exc), exc.status)
    except sync.NotReady as exc:
        return _refused(person, str(exc), 409)
    title = {
        access.REMOVE_APP: "Remove app access",
        access.DEACTIVATE: "Deactivate in OneLogin",
        access.DELETE: "Delete in OneLogin",
    }[method]
    return _show(person_id, result=done.result, result_title=title, done=done)


@bp.get("/grant")
def grant_page():
    """Give a OneLogin user the Workato app: find them, choose a role that grants it."""
    q = request.args.get("q", "").strip()[:100]
    context: dict = {"q": q, "section": "users", "candidates": [], "roles": [], "problem": None}
    try:
        context["candidates"], context["roles"] = access.find(q)
    except (access.AccessRefused, sync.NotReady) as exc:
        context["problem"] = str(exc)
    if is_htmx():
        return render_template("users/_candidates.html", **context)
    return render_template("users/grant.html", **context)


@bp.post("/grant")
def grant():
    try:
        onelogin_id = int(request.form.get("onelogin_id", ""))
        role_id = int(request.form.get("role_id", ""))
    except ValueError:
        return error_page("Not done", "Choose a user and a OneLogin role.", 400)
    try:
        done = access.grant(onelogin_id, role_id, current_user.actor)
    except access.AccessRefused as exc:
        return error_page("Not done", str(exc), exc.status)
    except sync.NotReady as exc:
        return error_page("Not done", str(exc), 409)
    target = service.by_onelogin_id(onelogin_id)
    if target is None:
        return render_template(
            "users/grant.html",
            q="",
            candidates=[],
            roles=[],
            problem=None,
            done=done,
            section="users",
        )
    return _show(target.id, result=done.result, result_title="Give access", done=done)


def _unconfirmed(person: Person, action: str):
    """An action that takes access away (or gives it back) asked without the tick."""
    message = "Tick “I understand” first."
    audit.record(
        action,
        actor=current_user.actor,
        outcome="refused",
        target_user=person.email or person.user_name,
        details={"error": message},
    )
    db.session.commit()
    return _refused(person, message, 400)


def _refused(person: Person, message: str, status: int):
    if is_htmx():
        return error_page("Not done", message, status)
    flash(message, "error")
    return redirect(url_for(".person", person_id=person.id), 303)


@bp.app_template_filter("role_label")
def role_label(field: str) -> str:
    """A role field's short label in a table: its environment, or the field's own name."""
    return {"workato_role": "role", "workato_role_test": "test", "workato_role_prod": "prod"}.get(
        field, field
    )


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
