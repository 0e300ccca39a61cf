"""The audit trail's signing key: an Ed25519 key kept outside the database, which signs the
digests (dashboard.audit.digests) so that someone who can only write to the database cannot
rewrite the trail and sign it again.

From DASHBOARD_AUDIT_SIGNING_KEY_FILE (a PEM private key, e.g. made with `openssl genpkey
-algorithm ed25519`), or, when that is unset, a key made once in the instance folder (mode
0600). Loaded at start, so a missing or wrong key stops the start rather than the first
audit write. Anyone checks a digest with the public key alone (`flask audit public-key`).
No Flask and no database here.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from dashboard.private_files import read_or_create
from dashboard.settings import ConfigError

KEY_FILE = "audit_signing_key.pem"  # in the instance folder, when the setting is unset
SETTING = "DASHBOARD_AUDIT_SIGNING_KEY_FILE"


@dataclass(frozen=True)
class SigningKey:
    private: Ed25519PrivateKey
    path: Path  # where it was read from (shown to admins, never its content)

    @property
    def public(self) -> Ed25519PublicKey:
        return self.private.public_key()

    @property
    def public_pem(self) -> str:
        return self.public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode()

    @property
    def key_id(self) -> str:
        """SHA-256 (hex) of the raw 32-byte public key: names the key a digest was signed
        with, so a digest signed by another key is told apart from a forged one."""
        return key_id(self.public)

    def sign(self, message: bytes) -> str:
        return self.private.sign(message).hex()

    def verifies(self, message: bytes, signature: str) -> bool:
        try:
            self.public.verify(bytes.fromhex(signature), message)
        except (InvalidSignature, ValueError):
            return False
        return True


def key_id(public: Ed25519PublicKey) -> str:
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()


def load(configured: Path | None, instance_path: Path) -> SigningKey:
    """The configured key file, or the instance folder's (made on first start)."""
    if configured is None:
        path = instance_path / KEY_FILE
        return SigningKey(_parse(read_or_create(path, _new_pem), path), path)
    try:
        text = configured.read_text()
    except OSError as exc:
        raise ConfigError(
            f"{SETTING} names {configured}, which cannot be read ({exc.strerror}). Make a key "
            f"with: openssl genpkey -algorithm ed25519 -out {configured}; chmod 600 "
            f"{configured}. Or unset {SETTING} to have one made in the instance folder."
        ) from None
    return SigningKey(_parse(text, configured), configured)


def _new_pem() -> str:
    return (
        Ed25519PrivateKey.generate()
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode()
    )


def _parse(text: str, path: Path) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(text.encode(), password=None)
    except (ValueError, TypeError):
        key = None
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError(
            f"{path} ({SETTING}) is not an unencrypted Ed25519 private key in PEM. Make one "
            f"with: openssl genpkey -algorithm ed25519 -out {path}"
        )
    return key
