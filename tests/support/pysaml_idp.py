"""An identity provider built on pysaml2, an implementation independent of ours.

It answers the AuthnRequests our service provider sends, and can be told to answer badly
(unsigned, expired, for someone else...) so that each attack is a real signed message.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
from saml2.config import IdPConfig
from saml2.metadata import entity_descriptor
from saml2.saml import NAME_FORMAT_BASIC, NAMEID_FORMAT_EMAILADDRESS, NameID
from saml2.server import Server

ENTITY_ID = "https://idp.test/saml/metadata"
SSO_URL = "https://idp.test/saml/sso"
SLO_URL = "https://idp.test/saml/slo"
RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"
PASSWORD_PROTECTED = "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"


def make_key_pair(folder: Path, name: str) -> tuple[Path, Path]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    key_path, cert_path = folder / f"{name}.key", folder / f"{name}.crt"
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key_path, cert_path


class PysamlIdp:
    """One IdP entity; `key_name` picks the signing key (the trusted one or an impostor)."""

    def __init__(self, folder: Path, key_name: str = "idp", with_slo: bool = True):
        self.folder = folder
        self.key_file, self.cert_file = folder / f"{key_name}.key", folder / f"{key_name}.crt"
        if not self.key_file.exists():
            make_key_pair(folder, key_name)
        self.with_slo = with_slo
        self._sp_metadata: list[str] = []
        self._server: Server | None = None

    def _config(self) -> IdPConfig:
        endpoints = {"single_sign_on_service": [(SSO_URL, BINDING_HTTP_REDIRECT)]}
        if self.with_slo:
            endpoints["single_logout_service"] = [(SLO_URL, BINDING_HTTP_REDIRECT)]
        conf = {
            "entityid": ENTITY_ID,
            "service": {
                "idp": {
                    "endpoints": endpoints,
                    "name_id_format": [NAMEID_FORMAT_EMAILADDRESS],
                    "policy": {
                        "default": {
                            "lifetime": {"minutes": 5},
                            "attribute_restrictions": None,
                            "name_form": NAME_FORMAT_BASIC,
                        }
                    },
                }
            },
            "key_file": str(self.key_file),
            "cert_file": str(self.cert_file),
            "xmlsec_binary": "/usr/bin/xmlsec1",
            "metadata": {"inline": self._sp_metadata} if self._sp_metadata else {},
        }
        config = IdPConfig()
        config.load(conf)
        return config

    def metadata_xml(self) -> str:
        return str(entity_descriptor(self._config()))

    def trust_sp(self, sp_metadata: str) -> None:
        self._sp_metadata.append(sp_metadata)
        self._server = None

    @property
    def server(self) -> Server:
        if self._server is None:
            self._server = Server(config=self._config())
        return self._server

    def read_authn_request(self, saml_request: str):
        return self.server.parse_authn_request(saml_request, BINDING_HTTP_REDIRECT).message

    def response_xml(
        self,
        *,
        in_response_to: str | None,
        destination: str,
        sp_entity_id: str,
        email: str,
        roles: list[str],
        sign_response: bool = True,
        sign_assertion: bool = True,
        sign_alg: str = RSA_SHA256,
        digest_alg: str = SHA256,
    ) -> str:
        identity = {
            "email": [email],
            "firstname": [email.split("@")[0].split(".")[0].title()],
            "lastname": ["Tester"],
            "roles": roles,
        }
        response = self.server.create_authn_response(
            identity,
            in_response_to=in_response_to,
            destination=destination,
            sp_entity_id=sp_entity_id,
            name_id=NameID(format=NAMEID_FORMAT_EMAILADDRESS, text=email),
            authn={"class_ref": PASSWORD_PROTECTED},
            sign_response=sign_response,
            sign_assertion=sign_assertion,
            sign_alg=sign_alg,
            digest_alg=digest_alg,
        )
        return str(response)

    def logout_request_url(
        self, sp_entity_id: str, sls_url: str, name_id: str, session_index: str | None
    ):
        """An IdP-initiated LogoutRequest to the SP, signed for HTTP-Redirect."""
        req_id, request = self.server.create_logout_request(
            destination=sls_url,
            issuer_entity_id=sp_entity_id,
            name_id=NameID(format=NAMEID_FORMAT_EMAILADDRESS, text=name_id),
            session_indexes=[session_index] if session_index else None,
            sign=False,
        )
        info = self.server.apply_binding(
            BINDING_HTTP_REDIRECT,
            str(request),
            destination=request.destination,
            relay_state="",
            sign=True,
            sigalg=RSA_SHA256,
        )
        return req_id, dict(info["headers"])["Location"]

    def logout_response_url(self, logout_request_query: str):
        """Answer the SP's LogoutRequest (HTTP-Redirect) with a signed LogoutResponse."""
        from urllib.parse import parse_qs

        params = {k: v[0] for k, v in parse_qs(logout_request_query).items()}
        request = self.server.parse_logout_request(params["SAMLRequest"], BINDING_HTTP_REDIRECT)
        response = self.server.create_logout_response(request.message, [BINDING_HTTP_REDIRECT])
        info = self.server.apply_binding(
            BINDING_HTTP_REDIRECT,
            str(response),
            destination=response.destination,
            relay_state=params.get("RelayState", ""),
            response=True,
            sign=True,
            sigalg=RSA_SHA256,
        )
        return dict(info["headers"])["Location"]


def post_binding(xml: str) -> str:
    return base64.b64encode(xml.encode()).decode()


__all__ = ["BINDING_HTTP_POST", "PysamlIdp", "make_key_pair", "post_binding"]
