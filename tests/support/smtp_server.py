"""A real SMTP server (aiosmtpd) on 127.0.0.1 for the alert e-mail tests: plain, offering
STARTTLS, or TLS from the start (smtps), with a self-signed certificate made here, and
optionally a login it checks.

server = SmtpServer(tmp_path, tls="starttls", login=("alerts", "pa:ss"))
with server:
    ...server.url()...                 # smtp://alerts:pa%3Ass@127.0.0.1:<port>
    server.wait_for(1)                 # the messages received, once there is one
Point SSL_CERT_FILE at `server.cert_file` for the client to trust the certificate.
"""

from __future__ import annotations

import datetime
import ipaddress
import socket
import ssl
import threading
import time
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from urllib.parse import quote

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

WAIT_SECONDS = 10.0
HOST = "127.0.0.1"


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and localhost, signed by its own key: (cert, key)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "alerts test SMTP")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address(HOST))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "smtp-cert.pem", folder / "smtp-key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


class SmtpServer:
    def __init__(
        self, folder: Path, tls: str = "none", login: tuple[str, str] | None = None
    ) -> None:
        """`tls`: "none" (plain, no STARTTLS), "starttls" (offered) or "smtps"."""
        self.tls, self.login = tls, login
        self.messages: list[Message] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self.logins: list[str] = []
        self.secured: list[bool] = []  # whether each message came over TLS
        self.changed = threading.Condition()
        self.cert_file, key_file = self_signed(folder)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert_file, key_file)
        options = {}
        if tls == "starttls":
            options["tls_context"] = context
        elif tls == "smtps":
            # aiosmtpd counts only STARTTLS as TLS for AUTH: this connection is TLS throughout.
            options.update(ssl_context=context, auth_require_tls=False)
        if login is not None:
            options["authenticator"] = self._authenticate
        self.port = _free_port()
        self.controller = Controller(self, hostname=HOST, port=self.port, **options)

    def _authenticate(self, server, session, envelope, mechanism, auth_data) -> AuthResult:
        ok = (
            isinstance(auth_data, LoginPassword)
            and (auth_data.login.decode(), auth_data.password.decode()) == self.login
        )
        if ok:
            self.logins.append(auth_data.login.decode())
        return AuthResult(success=ok, handled=False)  # aiosmtpd answers (235 or 535)

    async def handle_DATA(self, server, session, envelope) -> str:
        with self.changed:
            self.messages.append(message_from_bytes(envelope.content))
            self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
            self.secured.append(server.transport.get_extra_info("ssl_object") is not None)
            self.changed.notify_all()
        return "250 Message accepted for delivery"

    def url(self, password: str | None = None) -> str:
        scheme = "smtps" if self.tls == "smtps" else "smtp"
        user = ""
        if self.login is not None:
            name, real = self.login
            user = f"{quote(name, safe='')}:{quote(password or real, safe='')}@"
        return f"{scheme}://{user}{HOST}:{self.port}"

    def __enter__(self) -> SmtpServer:
        self.controller.start()
        return self

    def __exit__(self, *exc) -> None:
        self.controller.stop()

    def wait_for(self, count: int, timeout: float = WAIT_SECONDS) -> list[Message]:
        deadline = time.monotonic() + timeout
        with self.changed:
            while len(self.messages) < count:
                left = deadline - time.monotonic()
                assert left > 0, f"{len(self.messages)} messages arrived, not {count}"
                self.changed.wait(left)
            return list(self.messages)
