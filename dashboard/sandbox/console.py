"""Demo mode only: connect the sandbox, and a minimal stand-in for OneLogin's admin console
so that the checklist's instructions can be followed in the demo."""

from __future__ import annotations

import json

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user

from dashboard.connections import service as connections
from dashboard.sandbox.services import Sandbox
from dashboard.setup import service as setup
from dashboard.setup.template import WORKATO_ROLE, default_template

bp = Blueprint("sandbox_console", __name__, url_prefix="/sandbox")


def _sandbox() -> Sandbox:
    return current_app.extensions["dashboard.sandbox"]


def _actor() -> str:
    return current_user.actor


def seeded_template(role_fields: list[str]) -> str:
    """The template as a hurried admin pasted it: the last role field forgotten."""
    template = json.loads(default_template(role_fields))
    template[WORKATO_ROLE].pop(role_fields[-1])
    return json.dumps(template, indent=2)


@bp.post("/connect")
def connect():
    try:
        _connect(_sandbox(), _actor())
    except connections.Invalid as exc:
        flash(f"The demo sandbox could not be connected: {exc.message}", "error")
        return redirect(url_for("connections.page"))
    flash(
        "The three connections now point at the demo sandbox. Test them, then open Setup.",
        "success",
    )
    return redirect(url_for("connections.page"))


def _connect(sandbox: Sandbox, actor: str) -> None:
    credentials = sandbox.credentials
    connections.save(
        "onelogin",
        actor=actor,
        base_url=sandbox.onelogin_url,
        client_id=credentials["onelogin_client_id"],
        secret=credentials["onelogin_client_secret"],
        app_id=sandbox.app_id,
    )
    connections.save(
        "scim", actor=actor, base_url=sandbox.scim_url, secret=credentials["scim_token"]
    )
    connections.save(
        "workato_api",
        actor=actor,
        base_url=sandbox.workato_api_url,
        secret=credentials["workato_api_token"],
    )
    if setup.current_template() is None:
        setup.save_template(seeded_template(setup.role_fields()), actor)


@bp.get("/console")
def console() -> str:
    state = _sandbox().onelogin_state
    app = state.apps[_sandbox().app_id]
    users = [state.users[i] for i in state.app_user_ids(app.id)]
    return render_template(
        "sandbox/console.html", app=app, users=users, role_fields=setup.role_fields()
    )


@bp.post("/console/app")
def save_app():
    state = _sandbox().onelogin_state
    with state.lock:
        app = state.apps[_sandbox().app_id]
        app.provisioning_enabled = request.form.get("provisioning") == "on"
        for short, parameter in app.parameters.items():
            parameter.include_in_saml_assertion = request.form.get(f"saml-{short}") == "on"
    flash("Sandbox OneLogin: the Workato app was saved.", "success")
    return redirect(url_for(".console"))


@bp.post("/console/users/<int:user_id>")
def save_user(user_id: int):
    state = _sandbox().onelogin_state
    if user_id not in state.users:
        abort(404)
    known = set(state.attribute_names())
    values = {f: request.form.get(f, "").strip() or None for f in setup.role_fields() if f in known}
    with state.lock:
        state.update_attributes(user_id, values, actor_user_name=_actor())
    flash(f"Sandbox OneLogin: {state.users[user_id].email} was saved.", "success")
    return redirect(url_for(".console") + f"#user-{user_id}")
