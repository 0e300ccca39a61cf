"""`flask db upgrade` run by two deploys at the same moment (issue 16): both exit 0 and the
schema is built once, at head, on PostgreSQL and on SQLite.

Two real `flask db upgrade` processes on a fresh database. So that both are inside their
upgrade at once, whatever the machine's speed, the test holds the door: it keeps the
database busy (PostgreSQL: an uncommitted `alembic_version` table; SQLite: an exclusive
lock) until both processes are seen waiting on it, then lets them go together.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect, text

from dashboard import MIGRATIONS
from dashboard.extensions import db
from tests.support.fresh_database import fresh_database

ROOT = Path(__file__).resolve().parents[1]
DEADLINE = 60.0  # seconds for both processes to start, wait, and build the schema
HEAD = ScriptDirectory(str(MIGRATIONS)).get_current_head()


@pytest.fixture
def fresh_url(database, tmp_path: Path) -> Iterator[str]:
    with fresh_database(database.kind, tmp_path) as url:
        yield url


def start_upgrade(url: str, instance: Path) -> subprocess.Popen:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DASHBOARD_", "SAML_", "DATABASE_", "SECRET_"))
    }
    env.update(DATABASE_URL=url, DASHBOARD_INSTANCE_PATH=str(instance), SECRET_KEY="test")
    return subprocess.Popen(
        [sys.executable, "-m", "flask", "--app", "app", "db", "upgrade"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_until(condition: Callable[[], bool], processes: list[subprocess.Popen]) -> None:
    deadline, pause = time.monotonic() + DEADLINE, threading.Event()
    while not condition():
        for process in processes:
            if process.poll() is not None:
                pytest.fail(f"an upgrade exited before the door opened:\n{process.stderr.read()}")
        assert time.monotonic() < deadline, "the upgrades never both reached the database"
        pause.wait(0.05)


@contextmanager
def door_held_on_postgresql(url: str) -> Iterator[Callable[[], bool]]:
    """An alembic_version table created in a transaction left open: an upgrade that creates
    its own waits for this one to end. Yields whether two other sessions wait on a lock."""
    name = url.rsplit("/", 1)[1]
    with psycopg.connect(url) as door, psycopg.connect(url, autocommit=True) as watch:
        door.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)")

        def both_waiting() -> bool:
            waiting = watch.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = %s "
                "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()",
                (name,),
            ).fetchone()[0]
            return waiting >= 2

        yield both_waiting
        door.rollback()


@contextmanager
def door_held_on_sqlite(url: str, processes: list[subprocess.Popen]) -> Iterator[Callable]:
    """An exclusive lock on the database file: the upgrade holding the upgrade lock (a flock
    on the file's folder, taken before it connects) has opened the file and waits for it
    (its busy timeout is 30 s); the other waits for the upgrade lock. Yields whether both
    are there: each has the folder open, and one the file."""
    path = Path(url.removeprefix("sqlite:///"))
    door = sqlite3.connect(path, isolation_level=None)
    door.execute("BEGIN EXCLUSIVE")

    def has_open(pid: int, wanted: Path) -> bool:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
            return any(os.readlink(f"/proc/{pid}/fd/{fd}") == str(wanted) for fd in fds)
        except OSError:  # an fd closed while we looked: look again next time
            return False

    def both_there() -> bool:
        pids = [p.pid for p in processes]
        return all(has_open(pid, path.parent) for pid in pids) and any(
            has_open(pid, path) for pid in pids
        )

    try:
        yield both_there
    finally:
        door.execute("ROLLBACK")
        door.close()


def test_two_upgrades_at_the_same_moment_both_succeed_and_build_the_schema_once(
    database, fresh_url, tmp_path
):
    processes: list[subprocess.Popen] = []
    if database.kind == "postgresql":
        door = door_held_on_postgresql(fresh_url)
    else:
        Path(fresh_url.removeprefix("sqlite:///")).touch(mode=0o600)
        door = door_held_on_sqlite(fresh_url, processes)
    try:
        with door as both_waiting:
            processes += [start_upgrade(fresh_url, tmp_path / "instance") for _ in range(2)]
            wait_until(both_waiting, processes)
        said = [p.communicate(timeout=DEADLINE)[1] for p in processes]
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()

    assert [p.returncode for p in processes] == [0, 0], said
    if database.kind == "postgresql":
        # Both were seen waiting: one for the door, the other for the first's upgrade.
        assert sum("Waiting for another flask db upgrade" in s for s in said) == 1, said
    engine = create_engine(fresh_url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with engine.connect() as connection:
            versions = connection.execute(text("SELECT version_num FROM alembic_version"))
            assert versions.scalars().all() == [HEAD]
            tables = set(inspect(connection).get_table_names())
            assert tables == {t.name for t in db.metadata.sorted_tables} | {"alembic_version"}
            # The one row a migration writes (the audit chain's head), written once.
            assert connection.execute(text("SELECT count(*) FROM audit_chain")).scalar() == 1
    finally:
        engine.dispose()
