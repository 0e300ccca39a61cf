"""Alembic environment for Flask-Migrate: runs migrations on the app's own engine, one
upgrade at a time per database (two deploys may run `flask db upgrade` at the same moment)."""

import fcntl
import logging
import os
from contextlib import contextmanager
from logging.config import fileConfig

from alembic import context
from flask import current_app
from sqlalchemy import text

from dashboard.private_files import sqlite_path
from dashboard.timeutil import UTCDateTime

config = context.config
# Keep the app's loggers: alembic's ini would otherwise disable every logger that exists.
fileConfig(config.config_file_name, disable_existing_loggers=False)
logger = logging.getLogger("alembic.env")

target_db = current_app.extensions["migrate"].db


def render_item(type_, obj, autogen_context):
    """Migrations spell our UTCDateTime as the plain column type it stores."""
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


# The PostgreSQL advisory lock an upgrade holds: any fixed number no other lock on the
# database uses ("dashmig" in ASCII).
UPGRADE_LOCK_KEY = 0x64617368_6D6967
WAITING = "Waiting for another flask db upgrade on this database to finish."


@contextmanager
def one_upgrade_at_a_time(engine):
    """A connection to migrate on, holding the database's upgrade lock. Whoever comes second
    waits, then finds the schema at head and has nothing to do, instead of creating the same
    tables again and failing half way. On SQLite the lock is taken before connecting: the
    connection's first statement (PRAGMA journal_mode=WAL) must not meet another upgrade's
    migration ("database is locked")."""
    if engine.dialect.name == "postgresql":
        with engine.connect() as connection, _advisory_lock(connection):
            yield connection
        return
    database = sqlite_path(engine.url.render_as_string(hide_password=False))
    if database is None:  # in memory: nobody else can see it
        with engine.connect() as connection:
            yield connection
        return
    with _folder_lock(database.resolve().parent), engine.connect() as connection:
        yield connection


@contextmanager
def _advisory_lock(connection):
    """A session-level advisory lock, so it outlives the migration's transaction and is let
    go after its commit (or rollback); a process that dies lets it go with its connection."""
    key = {"key": UPGRADE_LOCK_KEY}
    if not connection.execute(text("SELECT pg_try_advisory_lock(:key)"), key).scalar():
        logger.info(WAITING)
        connection.execute(text("SELECT pg_advisory_lock(:key)"), key)
    connection.commit()  # end the transaction the SELECT began: the migration runs its own
    try:
        yield
    finally:
        try:
            connection.execute(text("SELECT pg_advisory_unlock(:key)"), key)
            connection.commit()
        except Exception:
            # Never back in the pool still holding the lock: closing it lets the lock go.
            connection.invalidate()


@contextmanager
def _folder_lock(folder):
    """SQLite: an exclusive flock on the database file's folder (never on the file itself:
    closing a second descriptor of it would drop SQLite's own locks in this process). The
    database is on this machine, so every upgrade of it sees the same lock."""
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            logger.info(WAITING)
            fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)  # lets the lock go


def run_migrations_offline():
    url = target_db.engine.url.render_as_string(hide_password=False)
    context.configure(url=url, target_metadata=target_db.metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online():
    def skip_empty(context, revision, directives):
        if getattr(config.cmd_opts, "autogenerate", False) and directives[0].upgrade_ops.is_empty():
            directives[:] = []
            logger.info("No changes in schema detected.")

    options = dict(current_app.extensions["migrate"].configure_args)
    options.setdefault("process_revision_directives", skip_empty)
    options.setdefault("render_item", render_item)
    with one_upgrade_at_a_time(target_db.engine) as connection:
        context.configure(connection=connection, target_metadata=target_db.metadata, **options)
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
