"""Alerts (issue 15): each condition, read from the database, opens one alert, stays quiet
while it holds, and sends one "resolved" when it clears; the webhook is a real local HTTP
receiver. Time is given to the watch (`watch(now)`), so the rate limit and the hourly audit
verification are crossed without waiting."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta

import pytest
from sqlalchemy import event, update

from dashboard import audit
from dashboard.alerts import service
from dashboard.alerts.models import AlertMessage
from dashboard.alerts.watch import watch
from dashboard.audit.models import AuditEntry
from dashboard.connections.models import Connection
from dashboard.extensions import db
from dashboard.person import Person
from dashboard.schedule.models import ScheduledReconcile
from dashboard.setup.models import CheckResult
from dashboard.sync.models import Item, Run
from dashboard.timeutil import utcnow
from tests.support.rows import audit_rows
from tests.support.webhook_receiver import WebhookReceiver

T0 = utcnow().replace(microsecond=0)


def at(minutes: float):
    return T0 + timedelta(minutes=minutes)


@pytest.fixture
def hook():
    with WebhookReceiver() as receiver:
        yield receiver


@pytest.fixture
def app(make_app, hook):
    return make_app(DASHBOARD_ALERT_WEBHOOK_URL=hook.url)


def watch_at(app, minutes: float) -> None:
    with app.app_context():
        watch(at(minutes))


def add(app, *rows) -> None:
    with app.app_context():
        db.session.add_all(rows)
        db.session.commit()


def change(app, model, where, **values) -> None:
    with app.app_context():
        db.session.execute(update(model).where(where).values(**values))
        db.session.commit()


def alert_entries(app) -> list[dict]:
    return [row for row in audit_rows(app) if row["action"].startswith("alert.")]


# --- the world each condition reads --------------------------------------------------------


def add_run(app, status: str, minutes: float, failed: int = 0, succeeded: int = 0) -> None:
    """A finished sync run, `minutes` after T0, with its items."""
    with app.app_context():
        run = Run(
            kind="sync",
            status=status,
            created_by="ada.admin@example.com",
            created_at=at(minutes - 1),
            finished_at=at(minutes),
            total=failed + succeeded,
            counts={"create": failed + succeeded},
            message="More than 25% of its finished items failed." if status == "stopped" else None,
        )
        db.session.add(run)
        db.session.flush()
        db.session.add_all(
            Item(
                run_id=run.id,
                key=f"user{n}@example.com",
                user_name=f"user{n}@example.com",
                action="create",
                status="failed" if n < failed else "succeeded",
            )
            for n in range(failed + succeeded)
        )
        db.session.commit()


def a_reconcile(outcome: str, minutes: float, **counts) -> ScheduledReconcile:
    return ScheduledReconcile(
        due_at=at(minutes),
        every=3600,
        apply="off" if outcome == "planned" else "safe",
        claimed_by="test",
        started_at=at(minutes),
        finished_at=at(minutes),
        outcome=outcome,
        counts={"create": 0, "update": 0, "suspend": 0, "reactivate": 0, "noop": 0, "orphan": 0}
        | counts,
        message=f"The plan ended {outcome}.",
    )


def a_person(key: str, state="orphaned", orphan_kind="known") -> Person:
    return Person(
        key=key,
        user_name=key,
        state=state,
        action="orphan" if state == "orphaned" else "noop",
        orphan_kind=orphan_kind,
        seen_at=T0,
    )


def a_connection(kind: str, ok: bool | None, message: str) -> Connection:
    return Connection(
        kind=kind,
        base_url="https://workato.example/scim/v2",
        saved_by="ada.admin@example.com",
        saved_at=T0,
        last_test_at=T0,
        last_test_ok=ok,
        last_test_message=message,
    )


def tamper(app) -> tuple[int, dict]:
    """Change the first audit entry behind the dashboard's back: (its id, what it said)."""
    with app.app_context():
        entry = db.session.scalar(db.select(AuditEntry).order_by(AuditEntry.seq).limit(1))
        was = (entry.id, dict(entry.details))
    change(app, AuditEntry, AuditEntry.id == was[0], details={"changed": "behind its back"})
    return was


def an_audit_entry(app) -> None:
    with app.app_context():
        audit.record("test.thing", actor="tester", outcome="success", details={})
        db.session.commit()


# Each condition: (key, what opens it, what clears it, words of the alert, its page).
Step = Callable[[object], None]
CONDITIONS: dict[str, tuple[Step, Step, str, str]] = {
    "run": (
        lambda app: add_run(app, "stopped", 100),
        lambda app: add_run(app, "succeeded", 200),
        "Sync run 1 stopped",
        "/sync/runs/1",
    ),
    "items": (
        lambda app: add_run(app, "succeeded", 100, failed=2, succeeded=3),
        lambda app: add_run(app, "succeeded", 200, succeeded=1),
        "2 failed in sync run 1",
        "/sync/runs/1?status=failed",
    ),
    "drift": (
        lambda app: add(app, a_reconcile("planned", 100, update=3, create=1)),
        lambda app: add(app, a_reconcile("in_sync", 200)),
        "Workato differs from OneLogin",
        "/sync",
    ),
    "orphans": (
        lambda app: add(app, a_person("leaver@example.com")),
        lambda app: change(app, Person, Person.key == "leaver@example.com", state="suspended"),
        "1 possible leavers",
        "/users?state=orphaned",
    ),
    "connection:scim": (
        lambda app: add(app, a_connection("scim", False, "Workato refused the SCIM token.")),
        lambda app: change(app, Connection, Connection.kind == "scim", last_test_ok=True),
        "Workato SCIM API does not work",
        "/connections#scim",
    ),
    "checklist": (
        lambda app: add(
            app, CheckResult(item_id="app_saml", state="failing", message="The app is OIDC.")
        ),
        lambda app: change(app, CheckResult, CheckResult.item_id == "app_saml", state="verified"),
        "A setup step fails",
        "/setup",
    ),
    "guard": (
        lambda app: add(app, a_reconcile("guard", 100, suspend=40)),
        lambda app: add(app, a_reconcile("applied", 200, update=1)),
        "The suspension guard tripped",
        "/sync",
    ),
}


@pytest.mark.parametrize("key", CONDITIONS)
def test_each_condition_opens_once_stays_quiet_and_resolves_once(app, hook, key):
    opens, clears, title, path = CONDITIONS[key]
    watch_at(app, 0)
    assert hook.bodies() == []

    opens(app)
    watch_at(app, 100)
    [firing] = hook.wait_for(1)
    assert (firing["kind"], firing["status"]) == (key, "firing")
    assert title in firing["text"]
    assert firing["links"] == {"dashboard": f"http://localhost{path}"}
    assert firing["links"]["dashboard"] in firing["text"]
    with app.app_context():
        assert [(a.key, a.title, a.link) for a in service.open_alerts()] == [(key, title, path)]

    for minutes in (101, 110, 150):
        watch_at(app, minutes)
    assert len(hook.bodies()) == 1  # nothing more while it stays open

    clears(app)
    watch_at(app, 200)
    resolved = hook.wait_for(2)[1]
    assert (resolved["kind"], resolved["status"]) == (key, "resolved")
    assert f"Resolved: {title}" in resolved["text"]
    for minutes in (201, 260):
        watch_at(app, minutes)
    assert len(hook.bodies()) == 2
    with app.app_context():
        assert service.open_alerts() == []
    assert [(e["action"], e["actor"], e["outcome"]) for e in alert_entries(app)] == [
        ("alert.sent", "alerts", "success"),
        ("alert.resolved", "alerts", "success"),
    ]
    assert alert_entries(app)[0]["details"]["channels"] == {"webhook": "sent"}
    assert alert_entries(app)[0]["details"]["condition"] == key


def test_the_audit_chain_is_verified_at_most_hourly_and_its_alert_opens_and_resolves(
    app, hook, monkeypatch
):
    from dashboard.audit import digests

    verified = []
    real = digests.verify_all
    monkeypatch.setattr(digests, "verify_all", lambda: verified.append(1) or real())
    an_audit_entry(app)
    watch_at(app, 0)
    watch_at(app, 30)
    assert len(verified) == 1  # once in the hour, whoever watches
    entry_id, details = tamper(app)
    watch_at(app, 59)
    assert hook.bodies() == [] and len(verified) == 1
    watch_at(app, 61)
    [firing] = hook.wait_for(1)
    assert (firing["kind"], firing["status"]) == ("audit_chain", "firing")
    assert f"Entry {entry_id}" in firing["text"]
    assert firing["links"]["dashboard"] == "http://localhost/audit"
    watch_at(app, 90)
    assert len(hook.bodies()) == 1 and len(verified) == 2

    change(app, AuditEntry, AuditEntry.id == entry_id, details=details)
    watch_at(app, 125)
    assert hook.wait_for(2)[1]["status"] == "resolved"
    assert len(verified) == 3


def test_a_cancelled_run_neither_opens_nor_clears_the_run_alert(app, hook):
    add_run(app, "cancelled", 10)
    watch_at(app, 10)
    assert hook.bodies() == []
    add_run(app, "failed", 20)
    watch_at(app, 20)
    add_run(app, "cancelled", 30)
    watch_at(app, 30)
    assert [(b["kind"], b["status"]) for b in hook.wait_for(1)] == [("run", "firing")]
    add_run(app, "succeeded", 40)
    watch_at(app, 40)
    assert [b["status"] for b in hook.wait_for(2)] == ["firing", "resolved"]


def test_a_later_failure_keeps_one_alert_and_the_overview_shows_the_newest(app, hook):
    add_run(app, "failed", 10)
    watch_at(app, 10)
    add_run(app, "interrupted", 20)
    watch_at(app, 20)
    assert len(hook.wait_for(1)) == 1
    with app.app_context():
        [shown] = service.open_alerts()
    assert (shown.title, shown.link) == ("Sync run 2 interrupted", "/sync/runs/2")
    assert shown.opened_at == at(10)  # open since the first failure


def test_a_new_possible_leaver_is_told_with_only_the_new_names(app, hook):
    add(app, a_person("first@example.com"), a_person("owner@example.com", orphan_kind="unknown"))
    watch_at(app, 10)
    add(app, a_person("second@example.com"))
    watch_at(app, 20)
    first, more = hook.wait_for(2)
    assert "first@example.com" in first["text"] and "owner@example.com" not in first["text"]
    assert more["status"] == "firing"
    assert more["text"].startswith("Alert: 1 new possible leaver\nNew since the last alert: second")
    assert more["facts"]["new"] == ["second@example.com"]
    # One leaves; the other is no news; then none is left.
    change(app, Person, Person.key == "first@example.com", state="suspended")
    watch_at(app, 30)
    assert len(hook.bodies()) == 2
    change(app, Person, Person.key == "second@example.com", state="suspended")
    watch_at(app, 40)
    assert hook.wait_for(3)[2]["status"] == "resolved"


def test_without_a_channel_nothing_is_queued_but_the_overview_still_shows_it(make_app):
    app = make_app()
    add_run(app, "failed", 10)
    watch_at(app, 10)
    with app.app_context():
        assert [a.key for a in service.open_alerts()] == ["run"]
        assert db.session.scalar(db.select(db.func.count()).select_from(AlertMessage)) == 0
    assert alert_entries(app) == []


# --- the rate limit ---------------------------------------------------------------------


def test_a_flapping_condition_is_held_back_and_the_next_message_says_so(app, hook):
    connection = Connection.kind == "scim"
    add(app, a_connection("scim", False, "Workato did not answer."))
    watch_at(app, 0)
    for minutes, ok in ((0.2, True), (0.4, False), (0.6, True), (0.8, False)):
        change(app, Connection, connection, last_test_ok=ok)
        watch_at(app, minutes)
    assert len(hook.wait_for(1)) == 1  # the rest waits for the gap
    watch_at(app, 5.1)
    folded = hook.wait_for(2)[1]
    assert folded["status"] == "firing"
    assert "Held back by the rate limit: 3 earlier changes of this alert" in folded["text"]
    assert [h["status"] for h in folded["facts"]["held_back"]] == ["resolved", "firing", "resolved"]
    sent = alert_entries(app)[-1]
    assert sent["details"]["held_back"] == folded["facts"]["held_back"]
    watch_at(app, 20)
    assert len(hook.bodies()) == 2


def test_the_hourly_cap_delays_what_is_over_it_and_says_so(app, hook, monkeypatch):
    from dashboard.alerts import delivery

    monkeypatch.setattr(delivery, "MAX_PER_HOUR", 2)
    add(
        app,
        a_connection("scim", False, "down"),
        a_connection("onelogin", False, "down"),
        a_connection("workato_api", False, "down"),
    )
    watch_at(app, 0)
    assert len(hook.wait_for(2)) == 2
    watch_at(app, 30)
    assert len(hook.bodies()) == 2
    watch_at(app, 60.1)
    third = hook.wait_for(3)[2]
    assert (
        f"Delayed from {at(0):%Y-%m-%d %H:%M} UTC by the limit of 2 alerts an hour"
        in (third["text"])
    )
    assert alert_entries(app)[-1]["details"]["delayed_since"] == at(0).isoformat()


# --- delivery failures ---------------------------------------------------------------------


def test_a_down_webhook_is_audited_without_its_url_and_retried_with_backoff(app, hook, caplog):
    caplog.set_level(logging.DEBUG)
    hook.status = 503
    add_run(app, "failed", 0)
    watch_at(app, 0)
    assert len(hook.wait_for(1)) == 1
    [failed] = alert_entries(app)
    assert failed["outcome"] == "failed"
    assert failed["details"]["channels"] == {"webhook": "failed: the webhook answered HTTP 503"}
    watch_at(app, 0.25)  # before the first backoff (30 s)
    assert len(hook.bodies()) == 1
    hook.status = 200
    watch_at(app, 0.6)
    assert len(hook.wait_for(2)) == 2
    assert [e["outcome"] for e in alert_entries(app)] == ["failed", "success"]
    assert alert_entries(app)[1]["details"]["attempt"] == 2
    watch_at(app, 10)
    assert len(hook.bodies()) == 2
    everything = caplog.text + repr(audit_rows(app))
    assert WebhookReceiver.PATH not in everything and "127.0.0.1" not in everything


def test_an_unreachable_webhook_never_breaks_the_watch_and_is_given_up_after_a_day(
    make_app, caplog
):
    caplog.set_level(logging.DEBUG)
    with WebhookReceiver() as gone:
        url = gone.url
    app = make_app(DASHBOARD_ALERT_WEBHOOK_URL=url)  # nothing listens there any more
    add_run(app, "failed", 0)
    # Tried at once, then 30 s, 1, 2, 4... minutes after each try; after a day, given up.
    for minutes in (0, 0.4, 1, 1.9, 3, 7, 24 * 60 + 1, 24 * 60 + 100):
        watch_at(app, minutes)
    entries = alert_entries(app)
    assert {e["details"]["channels"]["webhook"] for e in entries} == {
        "failed: could not connect to the webhook's server"
    }
    assert [e["details"]["attempt"] for e in entries] == [1, 2, 3, 4, 5]
    assert [e["details"].get("gave_up") for e in entries] == [None, None, None, None, True]
    assert url not in caplog.text + repr(entries)


def test_a_condition_that_cannot_be_read_leaves_the_others_working(app, hook, monkeypatch):
    from dashboard.alerts import watch as watching

    def broken():
        raise RuntimeError("this condition is broken")

    monkeypatch.setattr(watching, "READERS", (broken, *watching.READERS))
    add_run(app, "failed", 0)
    watch_at(app, 0)
    assert hook.wait_for(1)[0]["kind"] == "run"


# --- cost --------------------------------------------------------------------------------


def test_a_watch_when_nothing_changed_is_a_few_reads_and_no_write(app, hook):
    add(
        app,
        a_reconcile("planned", 0, update=1),
        a_person("leaver@example.com"),
        a_connection("scim", False, "down"),
    )
    add_run(app, "failed", 0, failed=1)
    an_audit_entry(app)
    watch_at(app, 0)
    assert len(hook.wait_for(5)) == 5
    statements: list[str] = []
    with app.app_context():
        engine = db.engine
    listen = lambda *args: statements.append(args[2])  # noqa: E731
    event.listen(engine, "before_cursor_execute", listen)
    try:
        watch_at(app, 1)
    finally:
        event.remove(engine, "before_cursor_execute", listen)
    writes = [s for s in statements if s.split()[0].upper() in ("INSERT", "UPDATE", "DELETE")]
    assert writes == []
    assert len(statements) <= 16, statements
