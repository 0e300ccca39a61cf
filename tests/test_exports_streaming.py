"""Streamed downloads (the Audit page's CSV and JSON Lines, the roles CSV) hold no database
transaction while they travel: part of the file read, the download paused as a slow client
would, and PostgreSQL shows no connection idle in a transaction, SQLite's write-ahead log
checkpoints to its end after a write made meanwhile; read to its end, the file holds every
row once, in order."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import closing
from typing import Any

import psycopg
import pytest
from sqlalchemy import insert, select

from dashboard import audit
from dashboard.audit import export, search
from dashboard.extensions import db
from dashboard.person import Person
from dashboard.timeutil import utcnow
from dashboard.users import role_csv

ADMIN = "ada.admin@example.com"
ENTRIES = 40


@pytest.fixture
def small_pages(monkeypatch) -> None:
    """Pages of a few rows, so that a few dozen make a download of many pages."""
    monkeypatch.setattr(search, "EXPORT_CHUNK", 7)
    monkeypatch.setattr(export, "ENTRIES_PER_CHUNK", 5)
    monkeypatch.setattr(role_csv, "EXPORT_PAGE", 100, raising=False)


def in_thread(work: Callable[[], Any]) -> Any:
    """Run `work` in a thread of its own (its own app context and connection), as another
    request would, and give back what it returned."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = work()
        except BaseException as exc:  # re-raised below, in the test
            outcome["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def assert_no_transaction_held(app, database) -> None:
    """While the download is paused: nothing of the app's is idle in a transaction
    (PostgreSQL), or a sign-in recorded meanwhile can be checkpointed out of the write-ahead
    log, which is then empty (SQLite: a reader's snapshot would hold it)."""
    if database.kind == "postgresql":
        with psycopg.connect(database.url, autocommit=True) as conn:
            states = [
                state
                for (state,) in conn.execute(
                    "SELECT state FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            ]
        assert states  # the app's pooled connections are there...
        assert "idle in transaction" not in states  # ...and none holds a transaction open
        return

    def sign_in_then_checkpoint() -> tuple[int, int, int]:
        with app.app_context():
            audit.record("auth.sign_in", actor=ADMIN, outcome="success")
            db.session.commit()
        path = app.config["SQLALCHEMY_DATABASE_URI"].removeprefix("sqlite:///")
        with closing(sqlite3.connect(path, timeout=0)) as conn:
            return conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()

    busy, wal_pages, _checkpointed = in_thread(sign_in_then_checkpoint)
    assert (busy, wal_pages) == (0, 0)


def paused(response) -> tuple[Iterator[bytes], list[bytes]]:
    """The response's body iterator, and its first chunks read (the rest not yet)."""
    body = iter(response.response)
    return body, [next(body) for _ in range(2)]


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_an_audit_export_paused_midway_holds_no_transaction(
    app, admin_client, database, small_pages, fmt
):
    with app.app_context():
        for n in range(ENTRIES):
            audit.record("test.thing", actor=ADMIN, outcome="success", details={"n": n})
        db.session.commit()
        table = search.AUDIT
        ids = list(
            db.session.scalars(
                select(table.c.id).where(table.c.action == "test.thing").order_by(table.c.id)
            )
        )
    with closing(admin_client.get(f"/audit/export.{fmt}?action=test.thing", buffered=False)) as r:
        assert r.status_code == 200
        body, first = paused(r)

        assert_no_transaction_held(app, database)

        text = b"".join([*first, *body]).decode()
    if fmt == "csv":
        exported = [int(row["id"]) for row in csv.DictReader(io.StringIO(text))]
    else:
        exported = [json.loads(line)["id"] for line in text.splitlines()]
    assert exported == ids  # every entry once, oldest first, across the pages


PEOPLE = 1010  # more than a page as the old export fetched them (1,000)


def add_people(app) -> list[str]:
    """OneLogin users (by email in mixed case, or by userName alone) and a Workato-only
    account the export leaves out; the export's first column, in its order."""
    rows = []
    for n in range(PEOPLE):
        name = f"user{n:04d}@example.com"
        email = None if n % 10 == 0 else (name.upper() if n % 3 == 0 else name)
        rows.append({"key": name, "user_name": name, "email": email, "onelogin_id": 5000 + n})
    rows.append({"key": "orphan@example.com", "user_name": "orphan@example.com"})
    with app.app_context():
        db.session.execute(
            insert(Person),
            [{**row, "state": "in_sync", "action": "noop", "seen_at": utcnow()} for row in rows],
        )
        db.session.commit()
    listed = [row["email"] or row["user_name"] for row in rows if row.get("onelogin_id")]
    return sorted(listed, key=str.lower)


def test_the_roles_export_paused_midway_holds_no_transaction(
    app, admin_client, database, small_pages
):
    expected = add_people(app)
    with closing(admin_client.get("/users/roles/export.csv", buffered=False)) as response:
        assert response.status_code == 200
        body, first = paused(response)  # the header and the first person

        assert_no_transaction_held(app, database)

        text = b"".join([*first, *body]).decode()
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0][0] == "email"
    assert [row[0] for row in rows[1:]] == expected  # everyone once, in order, across pages
