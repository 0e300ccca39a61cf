"""The database a benchmark runs on: SQLite in its scratch folder, or a fresh PostgreSQL
database made for the run and dropped after it."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click
import psycopg

from dashboard import create_app
from dashboard.settings import Settings


@contextmanager
def scratch_database(postgres_admin_url: str | None, folder: Path) -> Iterator[str]:
    """A SQLAlchemy URL: SQLite under `folder` without `postgres_admin_url`, else a new
    PostgreSQL database next to that one (trust auth), dropped when the block ends."""
    if not postgres_admin_url:
        yield f"sqlite:///{folder / 'dashboard.db'}"
        return
    name = f"dashboard_bench_{secrets.token_hex(6)}"
    with psycopg.connect(postgres_admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield postgres_admin_url.rsplit("/", 1)[0] + f"/{name}"
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def postgres_reachable(url: str) -> bool:
    try:
        psycopg.connect(url, connect_timeout=3).close()
    except psycopg.OperationalError:
        return False
    return True


def page_bench_app(url: str, folder: Path, command: str):
    """The dashboard on `url`, as a `flask ...` command builds it: it serves no pages of its
    own, so no SAML settings are needed (a page benchmark signs in by itself)."""
    settings = Settings(SECRET_KEY=secrets.token_urlsafe(32), DATABASE_URL=url)
    with click.Context(click.Command(command)):
        return create_app(settings, instance_path=str(folder / "instance"))
