"""SAML endpoints and sign-out. Thin: each view calls one service function."""

from __future__ import annotations

from flask import Blueprint, Response, abort, redirect, render_template, request, session
from flask_login import current_user, login_user

from dashboard.auth import binding, service
from dashboard.auth.permissions import local_path, public, viewer_may_post
from dashboard.auth.saml import HINTS, SamlRefused, request_data
from dashboard.extensions import csrf

bp = Blueprint("auth", __name__)


def _data() -> dict:
    return request_data(
        service.config(),
        request.path,
        request.args.to_dict(),
        request.form.to_dict(),
        request.query_string.decode("latin-1"),
    )


@bp.get("/saml/metadata")
@public
def metadata() -> Response:
    return Response(service.config().metadata_xml(), mimetype="application/samlmetadata+xml")


@bp.get("/saml/login")
@public
def login() -> Response:
    next_path = local_path(request.args.get("next")) or "/"
    if current_user.is_authenticated:
        return redirect(next_path)
    started = service.begin_sign_in(_data(), next_path)
    return binding.bind(
        redirect(started.idp_url), request.cookies, started.request_id, service.config()
    )


@bp.post("/saml/acs")
@public
@csrf.exempt  # the IdP's cross-site POST; its signature is the proof
def acs() -> Response | tuple[str, int]:
    saml_response = request.form.get("SAMLResponse")
    if not saml_response:
        abort(400, "This address takes a SAMLResponse posted by the identity provider.")
    try:
        result = service.complete_sign_in(
            _data(), saml_response, request.form.get("RelayState"), request.cookies
        )
    except SamlRefused as exc:
        status = 403 if exc.forbidden else 400
        hint = HINTS.get(exc.reason)
        return render_template("auth/refused.html", refusal=exc, hint=hint), status
    session.clear()  # a fresh session: nothing from before sign-in carries over
    login_user(result.account)
    return redirect(result.next_path)


@bp.post("/logout")
@viewer_may_post
def logout() -> Response:
    idp_url = service.sign_out(current_user._get_current_object(), _data())
    session.clear()
    return redirect(idp_url or "/signed-out")


@bp.get("/saml/sls")
@public
def sls() -> Response | tuple[str, int]:
    account = current_user._get_current_object() if current_user.is_authenticated else None
    try:
        handled = service.handle_logout_message(_data(), account)
    except SamlRefused as exc:
        # Anyone can send a browser here: a message that fails its checks ends nothing.
        page = render_template(
            "auth/signed_out.html", problem=exc.message, still_signed_in=account is not None
        )
        return page, 400
    if handled.ended_this_session:
        session.clear()
    return redirect(handled.next_url or "/signed-out")


@bp.get("/signed-out")
@public
def signed_out() -> str:
    return render_template("auth/signed_out.html", problem=None)
