"""Sign-in and sign-out: what happens once SAML has spoken.

The views call these functions; every outcome, accepted or refused, is audited here, in the
same transaction as the state it changes (refusals through dashboard.auth.refusals, which
bounds how many entries a flood of them can write).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from flask import current_app
from onelogin.saml2.logout_response import OneLogin_Saml2_Logout_Response
from sqlalchemy.exc import IntegrityError

from dashboard import audit
from dashboard.auth import binding, refusals, saml, sessions
from dashboard.auth.models import (
    ADMIN,
    VIEWER,
    Account,
    LoginSession,
    SamlIdentity,
    SamlRequest,
    SeenAssertion,
)
from dashboard.auth.permissions import local_path
from dashboard.extensions import db
from dashboard.timeutil import utcnow

# How long the person may take at the IdP (password, MFA) before the request goes stale.
REQUEST_LIFETIME = timedelta(minutes=15)


class NotAllowed(saml.SamlRefused):
    """SAML was satisfied, but this person holds no dashboard role (a 403, not a 400)."""

    forbidden = True

    def __init__(self, actor: str, message: str):
        super().__init__("not_authorised", message, signed=True)
        self.actor = actor


@dataclass(frozen=True)
class SignIn:
    account: Account
    login: LoginSession
    next_path: str


@dataclass(frozen=True)
class SignInStarted:
    idp_url: str  # where to send the browser
    request_id: str  # what the browser is bound to (dashboard.auth.binding)


@dataclass(frozen=True)
class LogoutHandled:
    next_url: str | None  # our LogoutResponse at the IdP, or None: the signed-out page
    ended_this_session: bool  # the browser's own session was among those the IdP ended


def config() -> saml.SamlConfig:
    saml_config = current_app.extensions.get("dashboard.saml")
    if saml_config is None:
        raise current_app.extensions["dashboard.saml_error"]
    return saml_config


def begin_sign_in(data: dict, next_path: str) -> SignInStarted:
    """Record an AuthnRequest; the IdP URL to send the browser to, and the request's id."""
    url, request_id = saml.authn_request(config(), data, next_path)
    _prune()  # this public route is where the table grows, so it is kept small here
    _remember_request(request_id, "authn")
    db.session.commit()
    return SignInStarted(idp_url=url, request_id=request_id)


def _remember_request(request_id: str, kind: str) -> None:
    now = utcnow()
    db.session.add(
        SamlRequest(id=request_id, kind=kind, created_at=now, expires_at=now + REQUEST_LIFETIME)
    )


def complete_sign_in(
    data: dict, saml_response: str, relay_state: str | None, cookies: dict[str, str]
) -> SignIn:
    """Check a response posted to the ACS by a browser sending `cookies`; start a session
    or raise saml.SamlRefused.

    Either way the outcome is audited (a refusal within refusals' bounds) and committed.
    """
    try:
        result = _accept(data, saml_response, relay_state, cookies)
        audit.record(
            "auth.sign_in",
            actor=result.account.actor,
            outcome="success",
            details={"role": result.login.role, "name_id": result.login.name_id},
        )
        _prune()
        db.session.commit()
    except saml.SamlRefused as exc:
        db.session.rollback()
        refusals.record("auth.refused", exc)
        _prune()
        db.session.commit()
        raise
    return result


def _accept(
    data: dict, saml_response: str, relay_state: str | None, cookies: dict[str, str]
) -> SignIn:
    cfg = config()
    next_path = "/"
    if relay_state:
        next_path = local_path(relay_state)
        if next_path is None:
            raise saml.SamlRefused(
                "relay_state_not_local",
                "The sign-in asked to continue to another site; only pages of this dashboard "
                "are allowed.",
            )
    now = utcnow()
    request_id = saml.in_response_to(cfg, saml_response)
    pending = None
    if request_id is None:
        if not cfg.allow_idp_initiated:
            raise saml.SamlRefused(
                "unsolicited",
                "The IdP sent a sign-in this dashboard did not ask for (IdP-initiated). Start "
                "from the dashboard's own address, or set SAML_ALLOW_IDP_INITIATED=1.",
            )
    else:
        pending = db.session.get(SamlRequest, request_id)
        if pending is None or pending.kind != "authn":
            raise saml.SamlRefused(
                "unknown_in_response_to",
                "The sign-in response answers a request this dashboard never made.",
            )
        if not binding.started_here(cookies, request_id):
            raise saml.SamlRefused(
                "not_this_browser",
                "This sign-in was started in another browser, or this browser's sign-in "
                "cookie is missing or expired. Sign in again from the dashboard's own address.",
            )
    assertion = saml.validate_response(cfg, data, saml_response, request_id)
    if db.session.get(SeenAssertion, assertion.assertion_id) is not None:
        raise _replayed()
    if pending is not None:
        if pending.expires_at <= now:
            raise saml.SamlRefused(
                "request_expired",
                "The sign-in took too long at the IdP; please sign in again.",
                signed=True,
            )
        # One statement, so that two answers to one request cannot both use it.
        requests = SamlRequest.__table__
        used = db.session.execute(
            requests.update()
            .where(requests.c.id == pending.id, requests.c.consumed_at.is_(None))
            .values(consumed_at=now)
        ).rowcount
        if not used:
            raise saml.SamlRefused(
                "request_reused", "This sign-in request was already answered.", signed=True
            )
    db.session.add(
        SeenAssertion(id=assertion.assertion_id, not_on_or_after=assertion.not_on_or_after)
    )
    try:
        # Two posts of one response can both pass the lookup above; the primary key lets
        # only one through (PostgreSQL makes the second wait here, then refuses it).
        db.session.flush()
    except IntegrityError:
        raise _replayed() from None
    role = _role_for(cfg, assertion)
    if role is None:
        raise NotAllowed(
            assertion.name_id,
            f"{assertion.name_id} signed in at the IdP but is not an admin or viewer of this "
            f"dashboard (no allowed value in the {cfg.role_attribute!r} attribute).",
        )
    account = _link_identity(cfg, assertion)
    account.last_sign_in_at = now
    login = sessions.start(
        account,
        role,
        assertion.name_id,
        assertion.session_index,
        idp_expires_at=assertion.session_not_on_or_after,
    )
    return SignIn(account=account, login=login, next_path=next_path)


def _replayed() -> saml.SamlRefused:
    return saml.SamlRefused("replayed", "This sign-in response was already used once.", signed=True)


def _role_for(cfg: saml.SamlConfig, assertion: saml.Assertion) -> str | None:
    """Admin, viewer or None, from the role attribute's values. OneLogin sends a multi-value
    parameter as several values, or, with "Semicolon Delimited input", as one value to split
    (SAML_ROLE_DELIMITER=";"): only then is a value split, so that a group whose name holds
    the delimiter ("x;Admins") is not taken for the groups it seems to list."""
    raw = assertion.attributes.get(cfg.role_attribute, [])
    if cfg.role_delimiter:
        raw = [part for value in raw for part in value.split(cfg.role_delimiter)]
    values = {value.strip() for value in raw}
    if values & set(cfg.admin_values):
        return ADMIN
    if values & set(cfg.viewer_values):
        return VIEWER
    return None


def _link_identity(cfg: saml.SamlConfig, assertion: saml.Assertion) -> Account:
    """The one handler that ties an IdP identity to a dashboard account."""
    identity = db.session.scalar(
        db.select(SamlIdentity).filter_by(provider=assertion.issuer, name_id=assertion.name_id)
    )
    email = assertion.first("email", "Email", "User.email") or (
        assertion.name_id if "@" in assertion.name_id else None
    )
    names = [assertion.first("firstname", "FirstName", "User.FirstName") or ""]
    names.append(assertion.first("lastname", "LastName", "User.LastName") or "")
    display_name = " ".join(n for n in names if n) or email or assertion.name_id
    if identity is None:
        account = Account(display_name=display_name, email=email)
        identity = SamlIdentity(
            provider=assertion.issuer, name_id=assertion.name_id, account=account
        )
        db.session.add(identity)
    else:
        identity.account.display_name = display_name
        identity.account.email = email
    return identity.account


def _prune() -> None:
    """Drop SAML state nobody can use any more (expired requests and assertions)."""
    now = utcnow()
    db.session.execute(db.delete(SamlRequest).where(SamlRequest.expires_at < now))
    db.session.execute(db.delete(SeenAssertion).where(SeenAssertion.not_on_or_after < now))


def sign_out(account: Account, data: dict, reason: str = "sign_out") -> str | None:
    """End the session; the IdP single-logout URL to visit next, when the IdP has one."""
    login = account.login
    assert login is not None
    sessions.end(login, reason)
    audit.record(
        "auth.sign_out",
        actor=account.actor,
        outcome="success",
        details={"single_logout": config().has_single_logout},
    )
    url = None
    if config().has_single_logout:
        url, request_id = saml.logout_request(
            config(), data, login.name_id, login.session_index, relay_state="/signed-out"
        )
        _remember_request(request_id, "logout")
    db.session.commit()
    return url


def handle_logout_message(data: dict, account: Account | None) -> LogoutHandled:
    """A message from the IdP at our SLS, in a browser signed in as `account` (or not).

    Nothing is ended unless the message passed every check; a LogoutRequest then ends the
    sessions it names (its NameID, and SessionIndex when given), which are the browser's
    own only when they match it: a valid request for someone else signs nobody else out.
    """
    try:
        handled = _process_logout_message(data, account)
    except saml.SamlRefused as exc:
        db.session.rollback()
        refusals.record("auth.logout_refused", exc)
        db.session.commit()
        raise
    db.session.commit()
    return handled


def _process_logout_message(data: dict, account: Account | None) -> LogoutHandled:
    cfg = config()
    request_id = None
    if "SAMLResponse" in data["get_data"]:
        # The answer to a LogoutRequest of ours: find which one, and use it once.
        try:
            answered = OneLogin_Saml2_Logout_Response(
                cfg.toolkit_settings, data["get_data"]["SAMLResponse"]
            ).get_in_response_to()
        except Exception:  # unreadable: treated like an answer to nothing
            answered = None
        pending = db.session.get(SamlRequest, answered) if answered else None
        if pending is None or pending.kind != "logout" or pending.consumed_at is not None:
            raise saml.SamlRefused(
                "unknown_in_response_to", "The logout answer matches no logout we started."
            )
        pending.consumed_at = utcnow()
        request_id = pending.id
    message = saml.process_logout(cfg, data, request_id)
    if message.name_id is None:
        # The IdP's answer to our own LogoutRequest: that session ended at /logout.
        return LogoutHandled(next_url=None, ended_this_session=False)
    ended = sessions.end_matching(message.name_id, list(message.session_indexes), "idp_logout")
    for login in ended:
        audit.record(
            "auth.sign_out",
            actor=login.account.email or login.name_id,
            outcome="success",
            details={"initiated_by": "idp"},
        )
    mine = account.login.id if account is not None and account.login is not None else None
    return LogoutHandled(
        next_url=message.answer_url, ended_this_session=any(login.id == mine for login in ended)
    )
