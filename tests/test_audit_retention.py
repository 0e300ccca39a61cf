"""Retention goes by when the dashboard recorded an entry: a prune after an import of
OneLogin's old events keeps everything recorded today, never removes an entry recorded
inside the window (not even one a changed clock or a changed row would let it), and the
entries already here when recorded_at arrived (migration 0008) are dated so that holds."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import pytest
import sqlalchemy as sa
from flask_migrate import downgrade, upgrade
from sqlalchemy import select, update

from dashboard import audit
from dashboard.audit import chain, retention
from dashboard.audit.models import AuditEntry
from dashboard.extensions import db
from dashboard.history import imports
from dashboard.sync import service
from dashboard.timeutil import UTCDateTime, utcnow
from tests.support.sync_world import World

ADMIN = "ada.admin@example.com"


@pytest.fixture
def app(make_app):
    return make_app(DASHBOARD_SYNC_EXECUTOR="worker", DASHBOARD_SYNC_RATE=0)


def write(app, count: int, action: str, **fields) -> None:
    with app.app_context():
        for n in range(count):
            audit.record(action, actor=ADMIN, outcome="success", details={"n": n}, **fields)
        db.session.commit()


@contextmanager
def recorded_days_ago(monkeypatch, days: int) -> Iterator[None]:
    """The write path's clock set `days` back, as when an installation recorded them."""
    then = utcnow() - timedelta(days=days)
    with monkeypatch.context() as clock:
        clock.setattr(chain, "utcnow", lambda: then)
        yield


def entries(app) -> list[AuditEntry]:
    with app.app_context():
        found = list(db.session.scalars(select(AuditEntry).order_by(AuditEntry.seq)))
        db.session.expunge_all()
        return found


def prune(app, days: int):
    return app.test_cli_runner().invoke(
        args=["audit", "prune", "--older-than-days", str(days), "--yes", "--json"]
    )


def test_a_prune_after_an_import_of_old_events_keeps_everything_recorded_today(app, monkeypatch):
    """The reported case: sign-ins and a sync today, then OneLogin's history imported
    (events of 2025, chained after today's entries), then a 30-day prune."""
    with recorded_days_ago(monkeypatch, 40):
        write(app, 3, "auth.sign_in")  # last month's: these go
    write(app, 5, "auth.sign_in")  # today's
    with World.demo(app), app.app_context():
        service.make_plan(ADMIN)  # a sync plan today, audited
        report = imports.import_all(ADMIN)
    assert report.ok and report.sources[0].added > 100
    before = entries(app)
    today = [e for e in before if e.recorded_at > utcnow() - timedelta(days=1)]
    imported = [e for e in today if e.source == "onelogin"]
    assert imported and all(e.occurred_at.year == 2025 for e in imported)
    assert len(today) == len(before) - 3

    done = prune(app, 30)

    assert done.exit_code == 0, done.output
    assert json.loads(done.output)["pruned"] == 3
    after = entries(app)
    assert [e.id for e in after[:-1]] == [e.id for e in today]  # nothing recorded today went
    assert after[-1].action == "audit.prune" and after[-1].details["pruned"] == 3
    with app.app_context():
        assert chain.verify().ok


def test_an_entry_recorded_inside_the_window_stays_even_behind_an_older_one(app, monkeypatch):
    """A clock set back after a recent entry: the chain's prefix stops at the recent one."""
    with recorded_days_ago(monkeypatch, 40):
        write(app, 2, "test.old")
    write(app, 1, "test.recent")
    with recorded_days_ago(monkeypatch, 40):
        write(app, 2, "test.clock_set_back")
    with app.app_context():
        assert retention.preview(retention.cutoff(30)).count == 2
    assert json.loads(prune(app, 30).output)["pruned"] == 2
    assert [e.action for e in entries(app)] == [
        "test.recent",
        "test.clock_set_back",
        "test.clock_set_back",
        "audit.prune",
    ]


@pytest.mark.parametrize("pass_off_as_imported", [False, True])
def test_recorded_at_set_back_in_the_database_does_not_let_a_prune_take_recent_entries(
    app, pass_off_as_imported
):
    """recorded_at is outside the hash; our own entries are kept by their hashed time too,
    and which are our own is read from their hashed source (an external_id written in by
    someone with the database does not pass them off as imported)."""
    write(app, 4, "auth.sign_in")
    with app.app_context():
        long_ago = utcnow() - timedelta(days=400)
        forged = {"recorded_at": long_ago}
        if pass_off_as_imported:
            forged["external_id"] = AuditEntry.__table__.c.id.cast(sa.String)
        db.session.execute(update(AuditEntry.__table__).values(**forged))
        db.session.commit()
        assert chain.verify().ok  # not a link of the chain: nothing says it changed
    assert json.loads(prune(app, 30).output)["pruned"] == 0
    assert [e.action for e in entries(app)] == ["auth.sign_in"] * 4


def test_entries_and_imports_are_recorded_now_and_in_chain_order(app):
    start = utcnow()
    write(app, 2, "test.ours")
    write(app, 2, "test.imported", occurred_at=start - timedelta(days=300), source="onelogin")
    found = entries(app)
    assert all(start <= e.recorded_at <= utcnow() for e in found)
    assert [e.recorded_at for e in found] == sorted(e.recorded_at for e in found)
    assert [e.occurred_at == e.recorded_at for e in found] == [True, True, False, False]


# --- migration 0008: the entries already here ---------------------------------------------

OLD_AUDIT = sa.table(  # the audit table as migration 0007 left it
    "audit",
    sa.column("occurred_at", UTCDateTime()),
    sa.column("actor", sa.String()),
    sa.column("source", sa.String()),
    sa.column("action", sa.String()),
    sa.column("outcome", sa.String()),
    sa.column("details", sa.JSON()),
    sa.column("external_id", sa.String()),
    sa.column("seq", sa.Integer()),
    sa.column("prev_hash", sa.String()),
    sa.column("hash", sa.String()),
)


@pytest.fixture
def at_0007(app) -> Iterator[None]:
    """The schema as it was before recorded_at; back at head afterwards, whatever happens."""
    with app.app_context():
        downgrade(revision="0007")
        db.session.remove()
    try:
        yield
    finally:
        with app.app_context():
            db.session.remove()
            upgrade()


def test_the_migration_dates_existing_entries_never_older_than_they_were_recorded(app, at_0007):
    t0 = utcnow() - timedelta(days=60)
    hour = timedelta(hours=1)
    rows = [  # (external id or None for our own, occurred_at), in chain order
        (None, t0),
        (None, t0 + hour),
        ("e1", t0 - timedelta(days=300)),  # an import of old events...
        ("e2", t0 - timedelta(days=200)),
        (None, t0 + 2 * hour),  # ...and its audit.import entry
        (None, t0 + 3 * hour),
        (None, t0 + 3 * hour - timedelta(milliseconds=2)),  # a racing writer, a moment behind
        ("e3", t0 - timedelta(days=100)),  # imported after the last entry of ours
    ]
    with app.app_context():
        for seq, (external_id, when) in enumerate(rows, start=1):
            db.session.execute(
                sa.insert(OLD_AUDIT).values(
                    occurred_at=when,
                    actor=ADMIN,
                    source="onelogin" if external_id else "dashboard",
                    action="test.before_0008",
                    outcome="success",
                    details={},
                    external_id=external_id,
                    seq=seq,
                    prev_hash="0" * 64,
                    hash="0" * 64,
                )
            )
        db.session.commit()
        migrated_from = utcnow()
        upgrade()
        db.session.remove()
    recorded = [e.recorded_at for e in entries(app)]
    behind = t0 + 3 * hour - timedelta(milliseconds=2)
    assert recorded[:7] == [t0, t0 + hour, *[t0 + 2 * hour] * 3, behind, behind]
    assert recorded[7] >= migrated_from  # recorded before the migration, not known when
    assert recorded == sorted(recorded)
