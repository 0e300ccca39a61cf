"""Secrets encrypted at rest with Fernet (AES-128-CBC + HMAC-SHA256, from `cryptography`).

Keys come from DASHBOARD_ENCRYPTION_KEY: several comma-separated keys, newest first.
Anything encrypted with any of them decrypts; new secrets are encrypted with the first, and
`flask connections rotate-key` re-encrypts every stored secret with it, after which the old
keys can be dropped. Without the variable, a key file is made once in the instance folder.
"""

from __future__ import annotations

from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from dashboard.private_files import read_or_create
from dashboard.settings import ConfigError

KEY_FILE = "encryption_key"


class SecretUnreadable(Exception):
    """A stored secret no configured key can decrypt (a key was dropped too early)."""


class Vault:
    def __init__(self, keys: list[str]):
        if not keys:
            raise ConfigError("DASHBOARD_ENCRYPTION_KEY holds no key.")
        fernets = []
        for number, key in enumerate(keys, start=1):
            try:
                fernets.append(Fernet(key.encode()))
            except ValueError:
                raise ConfigError(
                    f"Key {number} of DASHBOARD_ENCRYPTION_KEY is not a Fernet key (32 bytes, "
                    "url-safe base64). Make one with: python3 -c 'from cryptography.fernet "
                    "import Fernet; print(Fernet.generate_key().decode())'"
                ) from None
        self._keys = MultiFernet(fernets)

    def encrypt(self, secret: str) -> str:
        return self._keys.encrypt(secret.encode()).decode()

    def decrypt(self, token: str) -> str:
        try:
            return self._keys.decrypt(token.encode()).decode()
        except InvalidToken:
            raise SecretUnreadable(
                "A stored secret cannot be decrypted with the keys in DASHBOARD_ENCRYPTION_KEY. "
                "Put back the key it was saved with, or save the secret again."
            ) from None

    def rotate(self, token: str) -> str:
        """The same secret, encrypted with the newest key."""
        try:
            return self._keys.rotate(token.encode()).decode()
        except InvalidToken:
            raise SecretUnreadable(
                "A stored secret cannot be decrypted with any key in DASHBOARD_ENCRYPTION_KEY; "
                "rotation stopped before changing anything."
            ) from None


def load_vault(configured: str | None, instance_path: Path) -> Vault:
    if configured:
        return Vault([k.strip() for k in configured.split(",") if k.strip()])
    key = read_or_create(instance_path / KEY_FILE, lambda: Fernet.generate_key().decode())
    return Vault([key])
