"""The SAML service provider, on python3-saml in strict mode.

This module speaks SAML and nothing else: it builds requests, validates what the IdP sends,
and turns every failure into a `SamlRefused` with a reason an admin can act on. What to do
with a valid assertion (accounts, sessions, audit) lives in dashboard.auth.service.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from onelogin.saml2.auth import OneLogin_Saml2_Auth
from onelogin.saml2.constants import OneLogin_Saml2_Constants
from onelogin.saml2.errors import OneLogin_Saml2_Error, OneLogin_Saml2_ValidationError
from onelogin.saml2.idp_metadata_parser import OneLogin_Saml2_IdPMetadataParser
from onelogin.saml2.logout_request import OneLogin_Saml2_Logout_Request
from onelogin.saml2.response import OneLogin_Saml2_Response
from onelogin.saml2.settings import OneLogin_Saml2_Settings

from dashboard.settings import ConfigError, Settings

# python3-saml accepts timestamps up to this far off (fixed in the library, in seconds).
CLOCK_SKEW_SECONDS = OneLogin_Saml2_Constants.ALLOWED_CLOCK_DRIFT


class SamlRefused(Exception):
    """A SAML message was not accepted. `reason` is a stable code for the audit trail.

    `signed`: the refusal came after the IdP's signature was checked, so `message` holds only
    our words and what the IdP signed. Before that, anything in it may be the sender's text:
    the audit trail then keeps the reason alone.
    """

    # Set by refusals that come after SAML was satisfied (see service.NotAllowed).
    forbidden = False
    actor: str | None = None

    def __init__(self, reason: str, message: str, *, signed: bool = False):
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.signed = signed


@dataclass(frozen=True)
class Assertion:
    """What a valid response told us about the person."""

    issuer: str
    name_id: str
    session_index: str | None
    assertion_id: str
    not_on_or_after: datetime
    attributes: dict[str, list[str]] = field(default_factory=dict)
    # The AuthnStatement's SessionNotOnOrAfter: when the IdP wants a fresh sign-in.
    session_not_on_or_after: datetime | None = None

    def first(self, *names: str) -> str | None:
        for name in names:
            for value in self.attributes.get(name, []):
                if value:
                    return value
        return None


@dataclass(frozen=True)
class SamlConfig:
    """The SP's view of the federation: our URLs, the IdP's metadata, who is let in."""

    base_url: str
    idp: dict[str, Any]
    sp_cert: str | None
    sp_key: str | None = field(repr=False)
    role_attribute: str
    admin_values: tuple[str, ...]
    viewer_values: tuple[str, ...]
    allow_idp_initiated: bool
    role_delimiter: str | None = None  # split each role value on it (SAML_ROLE_DELIMITER)

    @property
    def entity_id(self) -> str:
        return f"{self.base_url}/saml/metadata"

    @property
    def acs_url(self) -> str:
        return f"{self.base_url}/saml/acs"

    @property
    def sls_url(self) -> str:
        return f"{self.base_url}/saml/sls"

    @property
    def idp_entity_id(self) -> str:
        return self.idp["entityId"]

    @property
    def has_single_logout(self) -> bool:
        return bool(self.idp.get("singleLogoutService", {}).get("url"))

    @property
    def idp_origins(self) -> set[str]:
        """Where the browser may be sent with a form or redirect (for the CSP)."""
        urls = [self.idp["singleSignOnService"]["url"]]
        urls.append(self.idp.get("singleLogoutService", {}).get("url", ""))
        return {f"{p.scheme}://{p.netloc}" for p in map(urlsplit, urls) if p.netloc}

    @cached_property
    def toolkit_settings(self) -> OneLogin_Saml2_Settings:
        sp: dict[str, Any] = {
            "entityId": self.entity_id,
            "assertionConsumerService": {
                "url": self.acs_url,
                "binding": OneLogin_Saml2_Constants.BINDING_HTTP_POST,
            },
            "singleLogoutService": {
                "url": self.sls_url,
                "binding": OneLogin_Saml2_Constants.BINDING_HTTP_REDIRECT,
            },
            "NameIDFormat": OneLogin_Saml2_Constants.NAMEID_UNSPECIFIED,
        }
        signing = bool(self.sp_key and self.sp_cert)
        if signing:
            sp["x509cert"] = self.sp_cert
            sp["privateKey"] = self.sp_key
        settings = {
            "strict": True,
            "debug": False,
            "sp": sp,
            "idp": self.idp,
            "security": {
                # Both the response and its assertion must carry a valid signature.
                "wantMessagesSigned": True,
                "wantAssertionsSigned": True,
                "wantNameId": True,
                "wantAttributeStatement": True,
                "authnRequestsSigned": signing,
                "logoutRequestSigned": signing,
                "logoutResponseSigned": signing,
                "signMetadata": False,
                "requestedAuthnContext": False,
                "rejectDeprecatedAlgorithm": True,
                "signatureAlgorithm": OneLogin_Saml2_Constants.RSA_SHA256,
                "digestAlgorithm": OneLogin_Saml2_Constants.SHA256,
            },
        }
        return OneLogin_Saml2_Settings(settings, sp_validation_only=False)

    def metadata_xml(self) -> bytes:
        settings = self.toolkit_settings
        xml = settings.get_sp_metadata()
        errors = settings.validate_metadata(xml)
        if errors:  # our own settings produced it: a bug, not an operator error
            raise RuntimeError(f"SP metadata is invalid: {errors}")
        return xml if isinstance(xml, bytes) else xml.encode()


def load_config(settings: Settings) -> SamlConfig:
    """Read and check the SAML settings; a ConfigError says exactly what to fix."""
    if not settings.SAML_SP_BASE_URL:
        raise ConfigError(
            "SAML_SP_BASE_URL is not set. Set it to the public base URL of the dashboard, "
            "e.g. https://dashboard.example.com (or set DASHBOARD_DEMO=1 to try the demo)."
        )
    base = urlsplit(settings.SAML_SP_BASE_URL)
    if base.scheme not in ("https", "http") or not base.netloc or base.query or base.fragment:
        raise ConfigError(
            f"SAML_SP_BASE_URL={settings.SAML_SP_BASE_URL!r} is not a base URL such as "
            "https://dashboard.example.com."
        )
    if not settings.SAML_IDP_METADATA_FILE:
        raise ConfigError(
            "SAML_IDP_METADATA_FILE is not set. Download the IdP metadata XML (OneLogin: the "
            "dashboard's app, More Actions > SAML Metadata) and point this variable at it "
            "(or set DASHBOARD_DEMO=1 to try the demo)."
        )
    idp = _read_idp_metadata(settings.SAML_IDP_METADATA_FILE)
    if not settings.SAML_ADMIN_VALUES:
        raise ConfigError(
            "SAML_ADMIN_VALUES is empty: nobody could administer the dashboard. List the values "
            f"of the {settings.SAML_ROLE_ATTRIBUTE!r} attribute that make someone an admin."
        )
    sp_cert = sp_key = None
    if bool(settings.SAML_SP_CERT_FILE) != bool(settings.SAML_SP_KEY_FILE):
        raise ConfigError("Set both SAML_SP_CERT_FILE and SAML_SP_KEY_FILE, or neither.")
    if settings.SAML_SP_CERT_FILE and settings.SAML_SP_KEY_FILE:
        sp_cert = _read_text(settings.SAML_SP_CERT_FILE, "SAML_SP_CERT_FILE")
        sp_key = _read_text(settings.SAML_SP_KEY_FILE, "SAML_SP_KEY_FILE")
    config = SamlConfig(
        base_url=settings.SAML_SP_BASE_URL,
        idp=idp,
        sp_cert=sp_cert,
        sp_key=sp_key,
        role_attribute=settings.SAML_ROLE_ATTRIBUTE,
        admin_values=tuple(settings.SAML_ADMIN_VALUES),
        viewer_values=tuple(settings.SAML_VIEWER_VALUES),
        allow_idp_initiated=settings.SAML_ALLOW_IDP_INITIATED,
        role_delimiter=settings.SAML_ROLE_DELIMITER,
    )
    try:
        config.toolkit_settings  # noqa: B018  (builds and checks the toolkit settings now)
    except OneLogin_Saml2_Error as exc:
        raise ConfigError(f"The SAML settings are not usable: {exc}") from exc
    return config


def _read_text(path: Path, variable: str) -> str:
    try:
        return path.read_text()
    except OSError as exc:
        raise ConfigError(f"{variable}={str(path)!r} cannot be read: {exc.strerror}.") from exc


def _read_idp_metadata(path: Path) -> dict[str, Any]:
    xml = _read_text(path, "SAML_IDP_METADATA_FILE")
    try:
        parsed = OneLogin_Saml2_IdPMetadataParser.parse(xml)
    except Exception as exc:  # the parser raises bare XML errors for non-XML input
        raise ConfigError(
            f"SAML_IDP_METADATA_FILE={str(path)!r} is not SAML metadata XML ({exc})."
        ) from exc
    idp = parsed.get("idp") or {}
    missing = [
        what
        for what, present in (
            ("the IdP entity id", idp.get("entityId")),
            ("an HTTP-Redirect SingleSignOnService", idp.get("singleSignOnService", {}).get("url")),
            ("a signing certificate", idp.get("x509cert") or idp.get("x509certMulti")),
        )
        if not present
    ]
    if missing:
        raise ConfigError(
            f"SAML_IDP_METADATA_FILE={str(path)!r} lacks {', '.join(missing)}. Download the "
            "metadata again from the IdP."
        )
    return idp


def request_data(config: SamlConfig, path: str, args: dict, form: dict, query: str) -> dict:
    """Describe the request to python3-saml from our configured public URL, not from the
    Host header, so that Destination checks hold behind a proxy and cannot be spoofed."""
    base = urlsplit(config.base_url)
    return {
        "https": "on" if base.scheme == "https" else "off",
        "http_host": base.netloc,
        "script_name": base.path.rstrip("/") + path,
        "get_data": args,
        "post_data": form,
        "query_string": query,
        "validate_signature_from_qs": True,
    }


def _toolkit(config: SamlConfig, data: dict) -> OneLogin_Saml2_Auth:
    return OneLogin_Saml2_Auth(data, old_settings=config.toolkit_settings)


def authn_request(config: SamlConfig, data: dict, relay_state: str) -> tuple[str, str]:
    """The IdP URL to send the browser to (HTTP-Redirect) and the request's id."""
    auth = _toolkit(config, data)
    url = auth.login(return_to=relay_state)
    return url, auth.get_last_request_id()


def logout_request(
    config: SamlConfig, data: dict, name_id: str, session_index: str | None, relay_state: str
) -> tuple[str, str]:
    auth = _toolkit(config, data)
    url = auth.logout(return_to=relay_state, name_id=name_id, session_index=session_index)
    return url, auth.get_last_request_id()


def in_response_to(config: SamlConfig, saml_response: str) -> str | None:
    """Read InResponseTo before validation, only to find the request it claims to answer."""
    return _parse_response(config, saml_response).get_in_response_to()


def _parse_response(config: SamlConfig, saml_response: str) -> OneLogin_Saml2_Response:
    unreadable = SamlRefused("malformed", "The sign-in response is not a readable SAML response.")
    try:
        response = OneLogin_Saml2_Response(config.toolkit_settings, saml_response)
    except Exception as exc:  # base64, XML or DTD errors all mean the same to the admin
        raise unreadable from exc
    if response.document.tag != f"{{{OneLogin_Saml2_Constants.NS_SAMLP}}}Response":
        raise unreadable
    return response


def validate_response(
    config: SamlConfig, data: dict, saml_response: str, request_id: str | None
) -> Assertion:
    """Every check python3-saml's strict mode makes, plus an exact Destination."""
    response = _parse_response(config, saml_response)
    try:
        response.is_valid(data, request_id, raise_exceptions=True)
    except OneLogin_Saml2_ValidationError as exc:
        raise SamlRefused(_reason(exc), f"The sign-in response was refused: {exc}") from exc
    except OneLogin_Saml2_Error as exc:
        raise SamlRefused("invalid", f"The sign-in response was refused: {exc}") from exc
    # The library accepts a response without Destination; a signed one must name our ACS.
    if response.document.get("Destination") != config.acs_url:
        raise SamlRefused(
            "wrong_destination",
            f"The sign-in response was not addressed to {config.acs_url}.",
            signed=True,
        )
    not_on_or_after = response.get_assertion_not_on_or_after()
    if not not_on_or_after:
        # The Web Browser SSO profile requires it; without it the replay store could not
        # know how long to remember this assertion.
        raise SamlRefused(
            "no_expiry",
            "The sign-in response's assertion has no expiry (SubjectConfirmationData "
            "NotOnOrAfter), which SAML requires.",
            signed=True,
        )
    session_ends = response.get_session_not_on_or_after()
    return Assertion(
        issuer=config.idp_entity_id,
        name_id=response.get_nameid(),
        session_index=response.get_session_index(),
        assertion_id=response.get_assertion_id(),
        # Kept past expiry by the skew python3-saml allows, so it cannot be replayed then.
        not_on_or_after=datetime.fromtimestamp(not_on_or_after + CLOCK_SKEW_SECONDS, UTC),
        attributes={k: [str(v) for v in vs] for k, vs in response.get_attributes().items()},
        session_not_on_or_after=(
            datetime.fromtimestamp(session_ends, UTC) if session_ends else None
        ),
    )


# python3-saml's error codes, named for the audit trail.
_REASONS = {
    OneLogin_Saml2_ValidationError.WRONG_INRESPONSETO: "wrong_in_response_to",
    OneLogin_Saml2_ValidationError.WRONG_AUDIENCE: "wrong_audience",
    OneLogin_Saml2_ValidationError.WRONG_DESTINATION: "wrong_destination",
    OneLogin_Saml2_ValidationError.WRONG_ISSUER: "wrong_issuer",
    OneLogin_Saml2_ValidationError.ASSERTION_EXPIRED: "expired",
    OneLogin_Saml2_ValidationError.ASSERTION_TOO_EARLY: "not_yet_valid",
    OneLogin_Saml2_ValidationError.WRONG_SUBJECTCONFIRMATION: "wrong_subject_confirmation",
    OneLogin_Saml2_ValidationError.NO_SIGNED_MESSAGE: "unsigned_response",
    OneLogin_Saml2_ValidationError.NO_SIGNED_ASSERTION: "unsigned_assertion",
    OneLogin_Saml2_ValidationError.INVALID_SIGNATURE: "bad_signature",
    OneLogin_Saml2_ValidationError.WRONG_NUMBER_OF_ASSERTIONS: "wrong_number_of_assertions",
    OneLogin_Saml2_ValidationError.WRONG_NUMBER_OF_SIGNATURES: "wrong_number_of_signatures",
    OneLogin_Saml2_ValidationError.WRONG_SIGNED_ELEMENT: "wrong_signed_element",
    OneLogin_Saml2_ValidationError.INVALID_XML_FORMAT: "malformed",
    OneLogin_Saml2_ValidationError.STATUS_CODE_IS_NOT_SUCCESS: "idp_status_not_success",
    OneLogin_Saml2_ValidationError.DEPRECATED_SIGNATURE_METHOD: "deprecated_algorithm",
    OneLogin_Saml2_ValidationError.DEPRECATED_DIGEST_METHOD: "deprecated_algorithm",
}


# What an administrator should look at, per reason: the usual causes in a OneLogin setup.
HINTS = {
    "unsigned_response": "In OneLogin, set the app's SAML signature element to “Both”: the "
    "dashboard needs the response and the assertion signed.",
    "unsigned_assertion": "In OneLogin, set the app's SAML signature element to “Both”.",
    "bad_signature": "The IdP may have a new signing certificate: download its metadata again "
    "into SAML_IDP_METADATA_FILE and restart.",
    "deprecated_algorithm": "In OneLogin, set the app's SAML signature algorithm to SHA-256.",
    "wrong_destination": "OneLogin's ACS (Consumer) URL and SAML_SP_BASE_URL must name the same "
    "address the browser uses, e.g. https://dashboard.example.com/saml/acs.",
    "wrong_audience": "OneLogin's Audience (Entity ID) must be SAML_SP_BASE_URL followed by "
    "/saml/metadata.",
    "wrong_issuer": "The response came from another IdP than the one in SAML_IDP_METADATA_FILE.",
    "expired": "Check that this server's clock and the IdP's agree (NTP).",
    "not_yet_valid": "Check that this server's clock and the IdP's agree (NTP).",
    "unsolicited": "Start from the dashboard's own address rather than the IdP's portal, or set "
    "SAML_ALLOW_IDP_INITIATED=1.",
    "request_expired": "Sign in again from the dashboard.",
    "unknown_in_response_to": "Sign in again from the dashboard; if it keeps happening, another "
    "server may be answering on this address.",
    "not_this_browser": "A sign-in must end in the browser that started it, within 15 minutes "
    "(a cookie recognises it). If it keeps happening, serve the dashboard over https: over "
    "plain http browsers keep that cookie only for localhost or 127.0.0.1.",
}


def _reason(exc: OneLogin_Saml2_ValidationError) -> str:
    return _REASONS.get(exc.code, "invalid")


@dataclass(frozen=True)
class LogoutMessage:
    """A logout message from the IdP that passed every check (signature included)."""

    # For a LogoutRequest: whose sessions to end (all of name_id's when no index is listed),
    # and our LogoutResponse's URL. For a LogoutResponse (the answer to ours): all None.
    name_id: str | None = None
    session_indexes: tuple[str, ...] = ()
    answer_url: str | None = None


def process_logout(config: SamlConfig, data: dict, request_id: str | None) -> LogoutMessage:
    """Check what the IdP sent to our SLS. Ends nothing itself: which session a valid
    LogoutRequest names is for the caller to match."""
    auth = _toolkit(config, data)
    try:
        # keep_local_session: python3-saml would otherwise call for the browser's session to
        # end whatever NameID the request names.
        url = auth.process_slo(request_id=request_id, keep_local_session=True)
    except OneLogin_Saml2_Error as exc:
        raise SamlRefused("invalid_logout", f"The logout message was refused: {exc}") from exc
    errors = auth.get_errors()
    if errors:
        reason = auth.get_last_error_reason() or ", ".join(errors)
        raise SamlRefused("invalid_logout", f"The logout message was refused: {reason}")
    if "SAMLRequest" not in data["get_data"]:
        return LogoutMessage()
    request_xml = auth.get_last_request_xml()
    try:
        name_id = OneLogin_Saml2_Logout_Request.get_nameid(request_xml)
    except OneLogin_Saml2_Error as exc:  # an encrypted NameID we hold no key for
        raise SamlRefused(
            "invalid_logout", "The logout request's NameID could not be read.", signed=True
        ) from exc
    indexes = OneLogin_Saml2_Logout_Request.get_session_indexes(request_xml)
    return LogoutMessage(name_id=name_id, session_indexes=tuple(indexes), answer_url=url)
