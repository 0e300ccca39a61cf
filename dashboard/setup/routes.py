"""The Setup page: the checklist, the values to paste, the SCIM template."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user

from dashboard.htmx import answer
from dashboard.setup import service
from dashboard.setup.checks import BY_ID
from dashboard.setup.template import TemplateUnreadable

bp = Blueprint("setup", __name__, url_prefix="/setup")


def _actor() -> str:
    return current_user.actor


def _page_context(**extra) -> dict:
    template = service.current_template()
    groups: dict[str, list] = {}
    for result in service.checklist():
        groups.setdefault(result.group, []).append(result)
    return {
        "groups": groups,
        "paste": service.values_to_paste(),
        "template": template,
        "section": "setup",
        **extra,
    }


@bp.get("")
def page() -> str:
    return render_template("setup/setup.html", **_page_context())


@bp.post("/check")
def check_all():
    service.run()
    return answer(
        lambda: render_template("setup/_checklist.html", **_page_context()), url_for(".page")
    )


def _item_or_404(item_id: str) -> str:
    if item_id not in BY_ID:
        abort(404)
    return item_id


def _one(item_id: str):
    """After a change to one item: its row for htmx, the page otherwise."""

    def row():
        result = next(r for r in service.checklist() if r.id == item_id)
        return render_template("setup/_item.html", item=result)

    return answer(row, url_for(".page") + f"#item-{item_id}")


@bp.post("/check/<item_id>")
def check_one(item_id: str):
    service.run([_item_or_404(item_id)])
    return _one(item_id)


@bp.post("/confirm/<item_id>")
def confirm(item_id: str):
    return _change_confirmation(item_id, service.confirm)


@bp.post("/withdraw/<item_id>")
def withdraw(item_id: str):
    return _change_confirmation(item_id, service.withdraw)


def _change_confirmation(item_id: str, change) -> object:
    try:
        change(_item_or_404(item_id), _actor())
    except service.NotConfirmable as exc:
        abort(400, str(exc))
    return _one(item_id)


@bp.post("/template")
def save_template():
    body = request.form.get("template", "")
    try:
        problems = service.save_template(body, _actor())
    except TemplateUnreadable as exc:
        return render_template(
            "setup/setup.html", **_page_context(template_error=str(exc), template_draft=body)
        ), 422
    service.run(["scim_template"])
    if problems:
        flash("Template saved, but it needs fixing: " + " ".join(problems), "error")
    else:
        flash("Template saved; it maps every role field.", "success")
    return redirect(url_for(".page") + "#item-scim_template")
