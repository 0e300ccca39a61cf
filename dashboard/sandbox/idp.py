"""The demo's identity provider: signs real SAML responses for the demo people.

It exists so the product can be tried without a tenant. It is registered only in demo mode
and only ever answers this dashboard's own service provider. The tests use pysaml2 as the
IdP instead, so that our service provider is proved against an independent implementation.
"""

from __future__ import annotations

import base64
import os
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode
from uuid import uuid4
from xml.sax.saxutils import escape, quoteattr

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID
from onelogin.saml2.constants import OneLogin_Saml2_Constants as C
from onelogin.saml2.utils import OneLogin_Saml2_Utils
from onelogin.saml2.xml_utils import OneLogin_Saml2_XML

from dashboard.sandbox.people import Person

NS = {"samlp": C.NS_SAMLP, "saml": C.NS_SAML}
ASSERTION_LIFETIME = timedelta(minutes=5)


@dataclass(frozen=True)
class DemoIdp:
    base_url: str
    key_pem: str
    cert_pem: str

    @property
    def entity_id(self) -> str:
        return f"{self.base_url}/sandbox/idp/metadata"

    @property
    def sso_url(self) -> str:
        return f"{self.base_url}/sandbox/idp/sso"

    @property
    def slo_url(self) -> str:
        return f"{self.base_url}/sandbox/idp/slo"

    def metadata(self) -> str:
        cert = "".join(self.cert_pem.strip().splitlines()[1:-1])
        redirect = C.BINDING_HTTP_REDIRECT
        return f"""<?xml version="1.0"?>
<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID={quoteattr(self.entity_id)}>
  <md:IDPSSODescriptor WantAuthnRequestsSigned="false" protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
    <md:KeyDescriptor use="signing">
      <ds:KeyInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:X509Data><ds:X509Certificate>{cert}</ds:X509Certificate></ds:X509Data></ds:KeyInfo>
    </md:KeyDescriptor>
    <md:SingleLogoutService Binding="{redirect}" Location={quoteattr(self.slo_url)}/>
    <md:NameIDFormat>urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress</md:NameIDFormat>
    <md:SingleSignOnService Binding="{redirect}" Location={quoteattr(self.sso_url)}/>
  </md:IDPSSODescriptor>
</md:EntityDescriptor>
"""


def ensure_idp(folder: Path, base_url: str) -> Path:
    """Make the demo IdP's key and certificate once; write its metadata; return its path."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    key_path, cert_path = folder / "idp.key", folder / "idp.crt"
    if not key_path.exists():
        key_pem, cert_pem = _new_key_and_cert()
        fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(key_pem)
        cert_path.write_text(cert_pem)
    idp = load_idp(folder, base_url)
    metadata = folder / "metadata.xml"
    metadata.write_text(idp.metadata())
    return metadata


def load_idp(folder: Path, base_url: str) -> DemoIdp:
    return DemoIdp(
        base_url=base_url,
        key_pem=(folder / "idp.key").read_text(),
        cert_pem=(folder / "idp.crt").read_text(),
    )


def _new_key_and_cert() -> tuple[str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Demo sandbox IdP")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=3650))
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return key_pem, cert.public_bytes(serialization.Encoding.PEM).decode()


@dataclass(frozen=True)
class IncomingRequest:
    id: str
    acs_url: str | None
    issuer: str | None


def decode_redirect(message: str) -> bytes:
    """A message sent with the HTTP-Redirect binding: base64 of raw DEFLATE."""
    return zlib.decompress(base64.b64decode(message), -15)


def parse_request(saml_request: str, tag: str) -> IncomingRequest:
    root = OneLogin_Saml2_XML.to_etree(decode_redirect(saml_request))  # refuses DTDs
    if root.tag != f"{{{C.NS_SAMLP}}}{tag}":
        raise ValueError(f"not a {tag}")
    issuer = root.find("saml:Issuer", NS)
    return IncomingRequest(
        id=root.get("ID"),
        acs_url=root.get("AssertionConsumerServiceURL"),
        issuer=issuer.text if issuer is not None else None,
    )


def _instant(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def sign_in_response(
    idp: DemoIdp, person: Person, sp_entity_id: str, acs_url: str, in_response_to: str
) -> str:
    """A Response with a signed Assertion, itself signed, base64 for the HTTP-POST binding."""
    now = datetime.now(UTC)
    until = _instant(now + ASSERTION_LIFETIME)
    attributes = "".join(
        f"<saml:Attribute Name={quoteattr(name)}>"
        + "".join(
            f'<saml:AttributeValue xsi:type="xs:string">{escape(v)}</saml:AttributeValue>'
            for v in values
        )
        + "</saml:Attribute>"
        for name, values in person.attributes().items()
    )
    assertion = f"""<saml:Assertion xmlns:saml="{C.NS_SAML}" xmlns:xs="{C.NS_XS}" xmlns:xsi="{C.NS_XSI}" ID="_{uuid4().hex}" Version="2.0" IssueInstant="{_instant(now)}">
<saml:Issuer>{escape(idp.entity_id)}</saml:Issuer>
<saml:Subject>
<saml:NameID Format="urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress">{escape(person.email)}</saml:NameID>
<saml:SubjectConfirmation Method="{C.CM_BEARER}"><saml:SubjectConfirmationData NotOnOrAfter="{until}" Recipient={quoteattr(acs_url)} InResponseTo={quoteattr(in_response_to)}/></saml:SubjectConfirmation>
</saml:Subject>
<saml:Conditions NotBefore="{_instant(now - timedelta(seconds=30))}" NotOnOrAfter="{until}"><saml:AudienceRestriction><saml:Audience>{escape(sp_entity_id)}</saml:Audience></saml:AudienceRestriction></saml:Conditions>
<saml:AuthnStatement AuthnInstant="{_instant(now)}" SessionIndex="_{uuid4().hex}"><saml:AuthnContext><saml:AuthnContextClassRef>{C.AC_PASSWORD_PROTECTED}</saml:AuthnContextClassRef></saml:AuthnContext></saml:AuthnStatement>
<saml:AttributeStatement>{attributes}</saml:AttributeStatement>
</saml:Assertion>"""
    signed_assertion = _sign(idp, assertion)
    response = f"""<samlp:Response xmlns:samlp="{C.NS_SAMLP}" xmlns:saml="{C.NS_SAML}" ID="_{uuid4().hex}" Version="2.0" IssueInstant="{_instant(now)}" Destination={quoteattr(acs_url)} InResponseTo={quoteattr(in_response_to)}>
<saml:Issuer>{escape(idp.entity_id)}</saml:Issuer>
<samlp:Status><samlp:StatusCode Value="{C.STATUS_SUCCESS}"/></samlp:Status>
{signed_assertion}
</samlp:Response>"""
    return base64.b64encode(_sign(idp, response).encode()).decode()


def _sign(idp: DemoIdp, xml: str) -> str:
    signed = OneLogin_Saml2_Utils.add_sign(
        xml, idp.key_pem, idp.cert_pem, sign_algorithm=C.RSA_SHA256, digest_algorithm=C.SHA256
    )
    return signed.decode() if isinstance(signed, bytes) else signed


def logout_response_url(
    idp: DemoIdp, sls_url: str, in_response_to: str, relay_state: str | None
) -> str:
    """Our answer to the SP's LogoutRequest, signed for the HTTP-Redirect binding."""
    xml = f"""<samlp:LogoutResponse xmlns:samlp="{C.NS_SAMLP}" xmlns:saml="{C.NS_SAML}" ID="_{uuid4().hex}" Version="2.0" IssueInstant="{_instant(datetime.now(UTC))}" Destination={quoteattr(sls_url)} InResponseTo={quoteattr(in_response_to)}><saml:Issuer>{escape(idp.entity_id)}</saml:Issuer><samlp:Status><samlp:StatusCode Value="{C.STATUS_SUCCESS}"/></samlp:Status></samlp:LogoutResponse>"""
    deflated = zlib.compress(xml.encode())[2:-4]  # raw DEFLATE, as the binding requires
    params = {"SAMLResponse": base64.b64encode(deflated).decode()}
    if relay_state:
        params["RelayState"] = relay_state
    params["SigAlg"] = C.RSA_SHA256
    signed_part = urlencode(params)
    key = serialization.load_pem_private_key(idp.key_pem.encode(), password=None)
    signature = key.sign(signed_part.encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{sls_url}?{signed_part}&{urlencode({'Signature': base64.b64encode(signature)})}"
