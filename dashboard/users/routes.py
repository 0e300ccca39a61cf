"""The Users pages: everyone the last plan saw, their provisioning state, and one person's
detail with provisioning on demand. Reads come from the database only."""

from __future__ import annotations

from flask import Blueprint, abort, render_template, request, url_for
from flask_login import current_user

from dashboard import audit
from dashboard.extensions import db
from dashboard.htmx import error_page, refused, render
from dashboard.person import Person
from dashboard.sync import one_user, readiness
from dashboard.sync.planner import ORPHANED, STATES
from dashboard.timeutil import utcnow
from dashboard.users import access, display, edits, live, roles, service

bp = Blueprint("users", __name__, url_prefix="/users")
for _name, _filter in display.FILTERS.items():
    bp.add_app_template_filter(_filter, _name)


@bp.app_context_processor
def labels() -> dict:
    return {"state_labels": display.STATE_LABELS, "onelogin_status": display.ONELOGIN_STATUS}


@bp.get("")
def users():
    filters = service.Filters.read(request.args)
    context = {
        "filters": filters,
        "page": service.page(filters),
        "no_role": service.NO_ROLE,
        "short_window": service.SHORT_WINDOW,
        "role_fields": edits.role_fields(),
        "known": roles.catalog(remote=False),
        "section": "users",
    }
    return render(
        "users/users.html",
        partial="users/_people.html",
        page_only=lambda: {
            "counts": service.state_counts(),
            "attention": service.needing_attention(),
            "read_at": service.read_at(),
            "today": utcnow().date(),
            "roles": service.roles(),
            "states": STATES,
        },
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
        "unrendered": readiness.unrendered_role_fields(),
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
    return render(
        "users/person.html", partial="users/_person.html", **person_context(person, **extra)
    )


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
    except (readiness.NotReady, readiness.Refused) as exc:
        return refused(str(exc), 409, url_for(".person", person_id=person.id))
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
    except (readiness.NotReady, readiness.Refused) as exc:
        return refused(str(exc), 409, url_for(".person", person_id=person.id))
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
        return refused(str(exc), exc.status, url_for(".person", person_id=person.id))
    except readiness.NotReady as exc:
        return refused(str(exc), 409, url_for(".person", person_id=person.id))
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
    except (access.AccessRefused, readiness.NotReady) as exc:
        context["problem"] = str(exc)
    return render("users/grant.html", partial="users/_candidates.html", **context)


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
    except readiness.NotReady as exc:
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
    return refused(message, 400, url_for(".person", person_id=person.id))
