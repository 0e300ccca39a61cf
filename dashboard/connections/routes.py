"""The Connections page. Thin: each view calls one service function."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user

from dashboard.connections import service
from dashboard.connections.models import KINDS, ONELOGIN, SCIM
from dashboard.htmx import render

bp = Blueprint("connections", __name__, url_prefix="/connections")


def _kind(kind: str) -> str:
    kind = kind.replace("-", "_")
    if kind not in KINDS:
        abort(404)
    return kind


def _actor() -> str:
    return current_user.actor


@bp.get("")
def page() -> str:
    return render_template("connections/connections.html", **_context())


def _context(errors: dict | None = None, kind: str | None = None) -> dict:
    return {
        "connections": service.all_by_kind(),
        "titles": service.TITLES,
        "examples": service.EXAMPLES,
        "secret_names": service.SECRET_NAMES,
        "secret_labels": service.SECRET_LABELS,
        "errors": errors or {},
        "error_kind": kind,
        "form": request.form if kind else {},
        "section": "connections",
    }


@bp.post("/<kind>")
def save(kind: str):
    kind = _kind(kind)
    form = request.form
    try:
        service.save(
            kind,
            actor=_actor(),
            base_url=form.get("base_url", ""),
            secret=form.get("secret") or None,
            client_id=form.get("client_id") if kind == ONELOGIN else None,
            app_id=form.get("app_id") if kind == ONELOGIN else None,
        )
    except service.Invalid as exc:
        body = render_template(
            "connections/connections.html", **_context({exc.field: exc.message}, kind)
        )
        return body, 422
    flash(f"{service.TITLES[kind]} saved. Test it to be sure it works.", "success")
    return redirect(url_for(".page") + f"#{kind}")


@bp.post("/<kind>/clear-secret")
def clear_secret(kind: str):
    kind = _kind(kind)
    try:
        service.clear_secret(kind, _actor())
    except service.Invalid as exc:
        flash(exc.message, "error")
    else:
        flash(f"The {service.SECRET_NAMES[kind]} was cleared.", "success")
    return redirect(url_for(".page") + f"#{kind}")


@bp.post("/<kind>/test")
def test(kind: str):
    kind = _kind(kind)
    service.try_connection(kind, _actor())
    return render(
        "connections/connections.html", partial="connections/_card.html", kind=kind, **_context()
    )


@bp.post("/scim/disable")
def disable_scim():
    if request.form.get("confirm") != "yes":
        flash("Tick the confirmation to disable SCIM.", "error")
        return redirect(url_for(".page") + f"#{SCIM}")
    try:
        service.disable_scim(_actor(), clear_token=request.form.get("token") == "clear")
    except service.Invalid as exc:
        flash(exc.message, "error")
    else:
        flash(
            "SCIM is disabled: the dashboard sends no more SCIM writes. Finish the two manual "
            "steps below.",
            "success",
        )
    return redirect(url_for(".page") + f"#{SCIM}")


@bp.post("/scim/enable")
def enable_scim():
    try:
        service.enable_scim(_actor())
    except service.Invalid as exc:
        flash(exc.message, "error")
    else:
        flash("SCIM is enabled again.", "success")
    return redirect(url_for(".page") + f"#{SCIM}")
