"""Exactly one scheduled reconcile per interval across processes (issue 15): two real
`flask sync worker` processes on one database, each with its background loop, reconcile on
a 10-second schedule with DASHBOARD_RECONCILE_APPLY=safe. Each interval is planned once, by
one of them, and each user is created in Workato once."""

from __future__ import annotations

import signal
import threading
import time

from sqlalchemy import func, select

from dashboard.audit.models import AuditEntry
from dashboard.extensions import db
from dashboard.schedule.models import ScheduledReconcile
from dashboard.sync.models import Item
from tests.support.sync_world import World
from tests.support.workers import start_worker

SCHEDULE = {"DASHBOARD_RECONCILE_EVERY": "10s", "DASHBOARD_RECONCILE_APPLY": "safe"}
INTERVALS = 3
DEADLINE = 90.0  # seconds: three intervals of 10 s, the workers' start, the machine's load


def finished_reconciles(app) -> list[ScheduledReconcile]:
    with app.app_context():
        rows = db.session.scalars(
            select(ScheduledReconcile)
            .where(ScheduledReconcile.outcome != "running")
            .order_by(ScheduledReconcile.due_at)
        ).all()
        db.session.expunge_all()
        return rows


def test_two_workers_reconcile_each_interval_once(make_app):
    app = make_app(DASHBOARD_SYNC_EXECUTOR="worker", DASHBOARD_SYNC_RATE=0)
    with World.small(app) as world:
        for first, last in (("Ada", "Lovelace"), ("Alan", "Turing"), ("Grace", "Hopper")):
            world.person(first, last, workato_role="Analyst")
        workers = [start_worker(app, **SCHEDULE) for _ in range(2)]
        try:
            deadline, pause = time.monotonic() + DEADLINE, threading.Event()
            while len(finished_reconciles(app)) < INTERVALS:
                assert time.monotonic() < deadline, finished_reconciles(app)
                assert all(w.poll() is None for w in workers), "a worker exited"
                pause.wait(0.5)
        finally:
            for worker in workers:
                worker.send_signal(signal.SIGTERM)
            said = [worker.communicate(timeout=60)[1] for worker in workers]

        rows = finished_reconciles(app)
        assert all(w.returncode == 0 for w in workers), said
        # One row per interval (the claim), each a multiple of 10 s, each planned once.
        starts = [r.due_at.timestamp() for r in rows]
        assert len(set(starts)) == len(starts) and all(s % 10 == 0 for s in starts)
        with app.app_context():
            plans = db.session.scalar(
                select(func.count())
                .select_from(AuditEntry)
                .where(AuditEntry.actor == "schedule", AuditEntry.action == "sync.plan")
            )
            creates = db.session.scalars(
                select(Item.key).where(Item.action == "create", Item.status == "succeeded")
            ).all()
        assert plans == len(rows)
        assert rows[0].outcome == "applied" and rows[0].counts["create"] == 3, rows[0].message
        assert {r.outcome for r in rows[1:]} <= {"in_sync", "applied"}
        assert sorted(creates) == sorted(set(creates)) and len(creates) == 3
        assert len(world.workato_users()) == 3
