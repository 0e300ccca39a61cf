"""What the Overview warns about in where the dashboard keeps its keys: a key file in the
same folder as the SQLite database, where one backup or copy of that folder holds the
stored secrets together with the key that decrypts them (or the audit trail together with
the key that signs it). Demo mode is left alone: its keys and data are throwaway.
Reads settings and paths only; nothing here touches a file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from flask import current_app

from dashboard.audit import digests
from dashboard.connections.vault import KEY_FILE
from dashboard.private_files import sqlite_path


@dataclass(frozen=True)
class KeyBesideDatabase:
    what: str  # the key, in words
    setting: str  # the variable that moves it elsewhere
    key: Path
    database: Path


def keys_beside_database() -> list[KeyBesideDatabase]:
    settings = current_app.extensions["dashboard.settings"]
    if settings.DASHBOARD_DEMO:
        return []
    database = sqlite_path(current_app.config["SQLALCHEMY_DATABASE_URI"])
    if database is None:
        return []
    database = database.resolve()
    keys = []
    if settings.DASHBOARD_ENCRYPTION_KEY is None:
        keys.append(
            (
                "The encryption key of the stored secrets",
                "DASHBOARD_ENCRYPTION_KEY",
                Path(current_app.instance_path) / KEY_FILE,
            )
        )
    keys.append(
        ("The audit trail's signing key", "DASHBOARD_AUDIT_SIGNING_KEY_FILE", digests.key().path)
    )
    return [
        KeyBesideDatabase(what, setting, path.resolve(), database)
        for what, setting, path in keys
        if path.resolve().parent == database.parent
    ]
