"""Editing Workato role fields: one user inline (Users page row or user page), many users at
once (selected, or all matching a filter), or a CSV file with a preview. Thin views over
users.edits and users.role_csv."""

from __future__ import annotations

from flask import (
    Blueprint,
    Response,
    flash,
    redirect,
    render_template,
    request,
    stream_with_context,
    url_for,
)
from flask_login import current_user

from dashboard.extensions import db
from dashboard.htmx import back, error_page, is_htmx
from dashboard.person import Person
from dashboard.timeutil import utcnow
from dashboard.users import edits, role_csv, roles, service
from dashboard.users.routes import person_context, person_or_404, role_form_context

bp = Blueprint("roles", __name__, url_prefix="/users/roles")

# People one bulk edit may change: each costs a OneLogin call, of 5000 an hour; more is a
# CSV import from the command line (`flask roles import`).
BULK_LIMIT = 1000
SHOWN = 20  # names listed on the bulk confirmation
IN_ROW = "row"  # an inline form in a Users row; else the user page's roles card


def _render(person: Person, *, editing: bool = False, **extra) -> str:
    """The Users row (editing: with the form in it), or the user page's body, whose state,
    drift and timeline an edit changes too."""
    if request.values.get("in") == IN_ROW:
        context = {"person": person, "editing": editing, **role_form_context(person), **extra}
        context["place"] = IN_ROW
        return render_template("users/_person_row.html", **context)
    return render_template("users/_person.html", **person_context(person, **extra))


@bp.get("/<int:person_id>/edit")
def edit_form(person_id: int) -> str:
    # A viewer gets the values, as on the user page: the form would only end in a 403.
    return _render(person_or_404(person_id), editing=current_user.is_admin)


@bp.get("/<int:person_id>")
def show(person_id: int) -> str:
    """The role fields as shown (a Cancel on the inline form): the focus goes back to Edit."""
    return _render(person_or_404(person_id), focus_edit=True)


@bp.post("/<int:person_id>")
def save(person_id: int):
    """Write the role fields to OneLogin, read them back, and push to Workato when asked.
    A refused value comes back in the form, by its field, with nothing written."""
    person = person_or_404(person_id)
    submitted = {f: request.form[f] for f in edits.role_fields() if f in request.form}
    shown = {f: request.form.get(f"shown-{f}") for f in submitted}
    # Only what the admin changed: a field the form showed empty may hold a value in OneLogin
    # that the template does not render.
    given = {f: v for f, v in submitted.items() if shown[f] is None or v.strip() != shown[f]}
    known = roles.catalog()
    push = request.form.get("push") == "yes"
    try:
        [outcome] = edits.edit(
            [person], {person.id: given}, current_user.actor, push=push, known=known
        )
    except roles.RoleRefused as refused:
        if not is_htmx():
            return back(_to_person(person_id), " ".join(refused.problems.values()), "error")
        # The values the form first showed stay what changes are measured against.
        stored = role_form_context(person)["values"]
        shown = {f: stored.get(f) or "" if v is None else v for f, v in shown.items()}
        context = {"values": submitted, "shown": shown, "problems": refused.problems}
        context["known"] = known
        return _render(person, editing=True, **context), 422
    except edits.EditRefused as exc:
        return error_page("Not saved", str(exc), 409)
    if not is_htmx():
        return back(_to_person(person_id), outcome.message, "success" if outcome.ok else "error")
    db.session.expire_all()  # the row was rewritten by the edit (and the push)
    return _render(person_or_404(person_id), outcome=outcome, known=known)


def _to_person(person_id: int) -> str:
    """Without JavaScript a form posts and goes back to the user's page."""
    return url_for("users.person", person_id=person_id)


@bp.post("/bulk")
def bulk():
    """One field set to one value for the ticked people, or for everyone the filters match.
    The first post shows who would change and asks to confirm; the confirmation names the
    people, so what is applied is exactly what was shown."""
    field = request.form.get("field", "")
    if field not in edits.role_fields():
        return _bulk_refused("Choose the role field to set.")
    if request.form.get("scope") == "filter":
        filters = service.Filters.read(request.form)
        ids = service.matching_ids(filters, BULK_LIMIT + 1, in_onelogin=True)
    else:
        ids = [int(i) for i in request.form.getlist("person") if i.isdigit()]
    if not ids:
        return _bulk_refused("Tick at least one user, or choose every user the filters match.")
    if len(ids) > BULK_LIMIT:
        return _bulk_refused(
            f"More than {BULK_LIMIT} users: narrow the filter, or use `flask roles import`."
        )
    value = request.form.get("value", "")
    people = service.get_many(ids)
    known = roles.catalog()
    try:
        if request.form.get("confirmed") != "yes":
            edits.check([(p, {field: value}) for p in people], current_user.actor, known)
            edits.ready(people, current_user.actor).close()  # refused now, not after confirming
            return render_template(
                "users/bulk_confirm.html",
                field=field,
                value=value.strip(),
                people=people,
                shown=SHOWN,
                clearing=roles.clearing_means(field),
                section="users",
            )
        values = {p.id: {field: value} for p in people}
        outcomes = edits.edit(people, values, current_user.actor, known=known)
    except roles.RoleRefused as exc:
        return error_page("Not saved", str(exc), 422)
    except edits.EditRefused as exc:
        return error_page("Not saved", str(exc), 409)
    return render_template(
        "users/bulk_result.html",
        field=field,
        value=value.strip() or None,
        outcomes=outcomes,
        section="users",
    )


def _bulk_refused(message: str):
    """Back to the Users page as it was filtered, with the reason (nothing was written)."""
    flash(message, "error")
    filters = service.Filters.read(request.form)
    return redirect(url_for("users.users", **filters.args(after="")), 303)


@bp.get("/import")
def import_page() -> str:
    return render_template("users/import.html", role_fields=edits.role_fields(), section="users")


@bp.post("/import")
def import_preview():
    """Read the file and show each row's change and error; nothing is written yet."""
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        return _import_refused("Choose a CSV file to preview.")
    raw = upload.read()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return _import_refused("The file is not UTF-8 text: save it as CSV UTF-8.")
    try:
        preview = role_csv.read(text, roles.catalog())
    except role_csv.FileRefused as exc:
        return _import_refused(str(exc))
    return render_template(
        "users/import.html",
        role_fields=edits.role_fields(),
        preview=preview,
        csv_text=text,
        section="users",
    )


@bp.post("/import/apply")
def import_apply():
    """Apply the previewed file's rows without errors (the file is read again, so what is
    applied is what the preview listed, checked against the people as they are now)."""
    known = roles.catalog()
    try:
        preview = role_csv.read(request.form.get("csv", ""), known)
        applied = role_csv.apply(preview, current_user.actor, known)
    except role_csv.FileRefused as exc:
        return _import_refused(str(exc))
    except edits.EditRefused as exc:
        return error_page("Not imported", str(exc), 409)
    return render_template(
        "users/import.html",
        role_fields=edits.role_fields(),
        applied=applied,
        section="users",
    )


def _import_refused(message: str):
    return (
        render_template(
            "users/import.html",
            role_fields=edits.role_fields(),
            file_problem=message,
            section="users",
        ),
        400,
    )


@bp.get("/export.csv")
def export() -> Response:
    name = f"workato-roles-{utcnow():%Y%m%d-%H%M}.csv"
    return Response(
        stream_with_context(role_csv.export()),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
