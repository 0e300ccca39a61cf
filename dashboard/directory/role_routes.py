"""Editing Workato role fields: one user inline (Users page row or user page), many users at
once (selected, or all matching a filter), or a CSV file with a preview. Thin views over
directory.edits and directory.role_csv."""

from __future__ import annotations

from flask import (
    Blueprint,
    Response,
    abort,
    flash,
    redirect,
    render_template,
    request,
    stream_with_context,
    url_for,
)
from flask_login import current_user

from dashboard import error_page
from dashboard.directory import edits, role_csv, roles, service
from dashboard.directory.models import Person
from dashboard.extensions import db
from dashboard.htmx import is_htmx
from dashboard.timeutil import utcnow

bp = Blueprint("roles", __name__, url_prefix="/users/roles")

BULK_LIMIT = 5000  # people one bulk edit may change; more is a CSV import's job
IN_ROW, ON_PAGE = "row", "page"  # where an inline form sits


def _person(person_id: int) -> Person:
    person = service.get(person_id)
    if person is None:
        abort(404, "No such user in the last plan. Preview a sync to refresh the list.")
    return person


def _place() -> str:
    return IN_ROW if request.values.get("in") == IN_ROW else ON_PAGE


def _form_context(person: Person, **extra) -> dict:
    return {
        "person": person,
        "place": _place(),
        "role_fields": edits.role_fields(),
        "known": roles.catalog(remote=False),
        "values": {f: (person.roles or {}).get(f) for f in edits.role_fields()},
        "problems": {},
        **extra,
    }


def _render(person: Person, *, editing: bool = False, **extra) -> str:
    """The Users row (editing: with the form in it), or the user page's roles card."""
    context = _form_context(person, editing=editing, **extra)
    if _place() == IN_ROW:
        return render_template("directory/_person_row.html", **context)
    return render_template("directory/_roles.html", **context)


@bp.get("/<int:person_id>/edit")
def edit_form(person_id: int) -> str:
    # A viewer gets the values, as on the user page: the form would only end in a 403.
    return _render(_person(person_id), editing=current_user.is_admin)


@bp.get("/<int:person_id>")
def show(person_id: int) -> str:
    """The role fields as shown (a Cancel on the inline form)."""
    return _render(_person(person_id))


@bp.post("/<int:person_id>")
def save(person_id: int):
    """Write the role fields to OneLogin, read them back, and push to Workato when asked.
    A refused value comes back in the form, by its field, with nothing written."""
    person = _person(person_id)
    fields = edits.role_fields()
    given = {f: request.form.get(f, "") for f in fields if f in request.form}
    known = roles.catalog()
    clean, problems = edits.validate(given, known)
    if problems:
        if not is_htmx():
            return _back(person_id, " ".join(problems.values()), "error")
        return _render(person, editing=True, values=given, problems=problems, known=known), 422
    push = request.form.get("push") == "yes"
    try:
        [outcome] = edits.edit([person], clean, current_user.actor, push=push, known=known)
    except edits.EditRefused as exc:
        return error_page("Not saved", str(exc), 409)
    if not is_htmx():
        return _back(person_id, outcome.message, "success" if outcome.ok else "error")
    db.session.expire_all()  # the row was rewritten by the edit (and the push)
    return _render(_person(person_id), outcome=outcome, known=known)


def _back(person_id: int, message: str, category: str):
    """Without JavaScript a form posts, flashes and goes back to the user's page (303)."""
    flash(message, category)
    return redirect(url_for("directory.person", person_id=person_id), 303)


@bp.post("/bulk")
def bulk():
    """One field set to one value for the selected people, or for all the filter matches."""
    field = request.form.get("field", "")
    if field not in edits.role_fields():
        return error_page("Not saved", "Choose the role field to set.", 400)
    if request.form.get("scope") == "filter":
        filters = service.Filters.read(request.form)
        ids = service.matching_ids(filters, BULK_LIMIT + 1, in_onelogin=True)
    else:
        ids = [int(i) for i in request.form.getlist("person") if i.isdigit()]
    if not ids:
        return error_page("Not saved", "Select at least one user.", 400)
    if len(ids) > BULK_LIMIT:
        return error_page(
            "Not saved",
            f"More than {BULK_LIMIT} users match: narrow the filter, or import a CSV file.",
            400,
        )
    value = request.form.get("value", "")
    try:
        people = service.get_many(ids)
        outcomes = edits.edit(people, {field: value}, current_user.actor)
    except roles.RoleRefused as exc:
        return error_page("Not saved", str(exc), 422)
    except edits.EditRefused as exc:
        return error_page("Not saved", str(exc), 409)
    return render_template(
        "directory/bulk_result.html",
        field=field,
        value=value.strip() or None,
        outcomes=outcomes,
        section="users",
    )


@bp.get("/import")
def import_page() -> str:
    return render_template(
        "directory/import.html", role_fields=edits.role_fields(), section="users"
    )


@bp.post("/import")
def import_preview():
    """Read the file and show each row's change and error; nothing is written yet."""
    upload = request.files.get("file")
    if upload is not None and upload.filename:
        raw = upload.read()
    else:
        raw = request.form.get("csv", "").encode()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return _import_refused("The file is not UTF-8 text: save it as CSV UTF-8.")
    try:
        preview = role_csv.read(text, roles.catalog())
    except role_csv.FileRefused as exc:
        return _import_refused(str(exc))
    return render_template(
        "directory/import.html",
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
        "directory/import.html",
        role_fields=edits.role_fields(),
        applied=applied,
        section="users",
    )


def _import_refused(message: str):
    return (
        render_template(
            "directory/import.html",
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
