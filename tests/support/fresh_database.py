"""An empty database, never migrated, of the kind a test runs on: what a new install has
before its first `flask db upgrade`.

    with fresh_database(database.kind, tmp_path) as url: ...

SQLite: a file that does not exist yet, in the test's folder. PostgreSQL: a database of its
own on the test server (TEST_POSTGRES_URL, as tests/conftest.py reads it), dropped after.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg

POSTGRES_ADMIN_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://127.0.0.1:5432/postgres")


@contextmanager
def fresh_database(kind: str, folder: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{folder / 'fresh.db'}"
        return
    name = f"dashboard_fresh_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True, connect_timeout=3) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
