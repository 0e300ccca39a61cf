"""Every web process and worker watches (issue 15): two watchers at once, each in its own
thread with its own app context and database session (SQLite and PostgreSQL), still send
each transition exactly once and audit it once."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import update

from dashboard.alerts.models import AlertMessage
from dashboard.alerts.watch import watch
from dashboard.connections.models import Connection
from dashboard.extensions import db
from dashboard.sync.models import Run
from dashboard.timeutil import utcnow
from tests.support.rows import audit_rows
from tests.support.webhook_receiver import WebhookReceiver

T0 = utcnow().replace(microsecond=0)
WATCHES_PER_STEP = 3
BARRIER_SECONDS = 60


@pytest.fixture
def hook():
    with WebhookReceiver() as receiver:
        yield receiver


@pytest.fixture
def app(make_app, hook):
    return make_app(DASHBOARD_ALERT_WEBHOOK_URL=hook.url)


def _run(status: str, minutes: int) -> Run:
    return Run(
        kind="sync",
        status=status,
        created_by="ada.admin@example.com",
        created_at=T0 + timedelta(minutes=minutes),
        finished_at=T0 + timedelta(minutes=minutes),
        counts={},
    )


def _scim(ok: bool) -> Connection:
    return Connection(
        kind="scim",
        base_url="https://workato.example/scim/v2",
        saved_by="ada.admin@example.com",
        saved_at=T0,
        last_test_at=T0,
        last_test_ok=ok,
        last_test_message="Workato refused the SCIM token.",
    )


@pytest.fixture
def in_step(monkeypatch):
    """Both watchers read the alerts' states before either reads a condition and claims:
    every transition is seen by both, and raced for."""
    from dashboard.alerts import watch as watching

    both = threading.Barrier(2)

    def rendezvous() -> None:
        both.wait(BARRIER_SECONDS)

    monkeypatch.setattr(watching, "READERS", (rendezvous, *watching.READERS))


def test_two_watchers_at_once_send_each_transition_once(app, hook, in_step):
    scim = Connection.kind == "scim"

    def add(*rows):
        db.session.add_all(rows)

    def scim_ok(ok):
        db.session.execute(update(Connection).where(scim).values(last_test_ok=ok))

    # Each step changes the world, then both watchers watch it at once, several times. The
    # steps are ten minutes apart, past the rate limit's gap, so each transition is sent.
    steps = [
        lambda: add(_run("failed", 0), _scim(False)),  # run and connection:scim open
        lambda: scim_ok(True),  # connection:scim resolves
        lambda: add(_run("succeeded", 20)),  # run resolves
        lambda: scim_ok(False),  # connection:scim opens again
        lambda: add(_run("stopped", 40)),  # run opens again
        lambda: None,  # nothing changes
    ]
    expected = [
        ("run", "firing"),
        ("connection:scim", "firing"),
        ("connection:scim", "resolved"),
        ("run", "resolved"),
        ("connection:scim", "firing"),
        ("run", "firing"),
    ]
    start, done = threading.Barrier(3), threading.Barrier(3)
    problems: list[BaseException] = []

    def watcher() -> None:
        try:
            with app.app_context():
                for step in range(len(steps)):
                    start.wait(BARRIER_SECONDS)
                    now = T0 + timedelta(minutes=10 * step)
                    for n in range(WATCHES_PER_STEP):
                        watch(now + timedelta(seconds=n))
                    done.wait(BARRIER_SECONDS)
        except BaseException as exc:  # reported by the test below, not lost in the thread
            problems.append(exc)
            start.abort()
            done.abort()

    threads = [threading.Thread(target=watcher) for _ in range(2)]
    for thread in threads:
        thread.start()
    for change in steps:
        with app.app_context():
            change()
            db.session.commit()
        start.wait(BARRIER_SECONDS)
        done.wait(BARRIER_SECONDS)
    for thread in threads:
        thread.join(BARRIER_SECONDS)
    assert problems == []

    sent = [(body["kind"], body["status"]) for body in hook.wait_for(len(expected))]
    assert sorted(sent) == sorted(expected)
    # In order per condition.
    for key in ("run", "connection:scim"):
        assert [s for k, s in sent if k == key] == [s for k, s in expected if k == key]
    entries = [e for e in audit_rows(app) if e["action"].startswith("alert.")]
    assert len(entries) == len(expected)
    assert {e["outcome"] for e in entries} == {"success"}
    # Claimed once each: not queued twice and folded into one by the rate limit.
    with app.app_context():
        queued = db.session.scalars(db.select(AlertMessage.state)).all()
    assert queued == ["sent"] * len(expected)
