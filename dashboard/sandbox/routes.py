"""The demo IdP's pages: pick a person, get signed in; single logout."""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Response, abort, current_app, redirect, render_template, request

from dashboard.auth import service
from dashboard.auth.permissions import public
from dashboard.sandbox import idp, people

bp = Blueprint("sandbox", __name__, url_prefix="/sandbox")


def _idp() -> idp.DemoIdp:
    folder = Path(current_app.instance_path) / "demo-idp"
    return idp.load_idp(folder, service.config().base_url)


def _incoming(tag: str) -> idp.IncomingRequest:
    try:
        return idp.parse_request(request.values.get("SAMLRequest", ""), tag)
    except Exception:
        abort(400, f"The demo identity provider expects a SAML {tag} from this dashboard.")


@bp.get("/idp/metadata")
@public
def metadata() -> Response:
    return Response(_idp().metadata(), mimetype="application/samlmetadata+xml")


@bp.get("/idp/sso")
@public
def choose_person() -> str:
    incoming = _incoming("AuthnRequest")
    return render_template(
        "sandbox/choose.html",
        people=people.PEOPLE,
        saml_request=request.args["SAMLRequest"],
        relay_state=request.args.get("RelayState", ""),
        issuer=incoming.issuer,
    )


@bp.post("/idp/sso")
@public
def sign_in_as() -> str:
    incoming = _incoming("AuthnRequest")
    person = people.find(request.form.get("person", ""))
    if person is None:
        abort(400, "Pick one of the demo people.")
    cfg = service.config()
    # Answer only our own service provider, whatever the request claims.
    if incoming.acs_url not in (None, cfg.acs_url) or incoming.issuer != cfg.entity_id:
        abort(400, "The demo identity provider only signs in to this dashboard.")
    saml_response = idp.sign_in_response(_idp(), person, cfg.entity_id, cfg.acs_url, incoming.id)
    return render_template(
        "sandbox/post.html",
        acs_url=cfg.acs_url,
        saml_response=saml_response,
        relay_state=request.form.get("RelayState", ""),
    )


@bp.get("/idp/slo")
@public
def single_logout() -> Response:
    incoming = _incoming("LogoutRequest")
    url = idp.logout_response_url(
        _idp(), service.config().sls_url, incoming.id, request.args.get("RelayState")
    )
    return redirect(url)
