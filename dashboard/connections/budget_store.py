"""OneLogin's API budget where every process sees it, and how each OneLogin client spends it.

The figures OneLogin last announced are kept in `api_limits` (the ONELOGIN row): each process
keeps its own Budget per account (budget.py), starts from the row when it builds a client, and
saves what it learns at most every budget.PERSIST_EVERY seconds, when the budget reaches the
reserve, after a 429, and when a client is closed. Pages and `sync status` read the row
(`shown`, `onelogin_budget_json`), never OneLogin.

Who waits for the reset and who refuses at once (`patience`):
- A web request refuses at once: a page must answer in seconds, not in up to an hour. The
  message says how many calls are left and when the budget resets.
- A command run in the foreground (`flask roles import`, `flask sync user`, `flask audit
  import`, `flask sync run`'s Apply, ...) waits in its own thread, at most until the reset
  (OneLogin's budget is hourly), saying on standard error until when: someone chose to run it
  and sees it wait, and Ctrl-C ends the wait there.
- Calls a command makes from helper threads refuse at once (a plan reads OneLogin and Workato
  at the same time, the checklist its services): Ctrl-C could not end a wait there. A plan
  checks before it reads that its calls fit (sync.readiness.require_budget_for_plan).
- Background work refuses at once: the web process's run threads and `flask sync worker`. Their
  only OneLogin calls are the event import after a run, which starts where the last one
  stopped, so the next import catches up; and a worker must stay free for queued runs and stop
  promptly on SIGTERM.
Whichever it is, no call that would cross the reserve goes out: no 429 comes of it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

import click
from flask import Flask, current_app, has_request_context
from sqlalchemy import Engine, insert, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from dashboard.connections.budget import (
    Budget,
    BudgetPace,
    Figures,
    in_minutes,
    share_text,
    utcnow,
)
from dashboard.connections.models import ONELOGIN, ApiLimit, Connection
from dashboard.extensions import db

log = logging.getLogger(__name__)

WAIT_AT_MOST = 3660.0  # seconds: a whole hour's budget, and a minute for the clocks
WORKER_COMMAND = "worker"  # `flask sync worker`: background work, though a command
KEY = "dashboard.onelogin_budgets"
limits = ApiLimit.__table__


@dataclass
class Budgets:
    """Every OneLogin account's Budget in this app's process (one, in practice), with the
    clock and sleep they use (tests give their own: install)."""

    now: Callable[[], datetime] = utcnow
    sleep: Callable[[float], None] = time.sleep
    by_url: dict[str, Budget] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


_install_lock = threading.Lock()


def install(app: Flask, **options) -> Budgets:
    """The app's Budgets, made now (with `options`: now, sleep) if not yet."""
    with _install_lock:
        if KEY not in app.extensions or options:
            app.extensions[KEY] = Budgets(**options)
        return app.extensions[KEY]


def _budgets() -> Budgets:
    return app_budgets(current_app)


def app_budgets(app: Flask) -> Budgets:
    found = app.extensions.get(KEY)
    return found if found is not None else install(app)


def _reserve() -> float:
    return current_app.extensions["dashboard.settings"].DASHBOARD_ONELOGIN_RESERVE


def budget_for(base_url: str) -> Budget:
    """This process's Budget for the account at `base_url`, brought up to date with what
    other processes saved."""
    budgets = _budgets()
    with budgets.lock:
        budget = budgets.by_url.get(base_url)
        if budget is None:
            budget = Budget(
                base_url, _reserve(), now=budgets.now, persist=_saver(db.engine, base_url)
            )
            budgets.by_url[base_url] = budget
    stored = _stored(base_url)
    if stored is not None:
        budget.adopt(stored)
    return budget


def pace_for(connection: Connection) -> BudgetPace:
    """The pacing a OneLogin client built now, in this thread, gets: it may wait only in a
    foreground command's own thread (see the module docstring)."""
    return BudgetPace(
        budget_for(connection.base_url),
        patience(),
        only_in=threading.main_thread(),
        sleep=_budgets().sleep,
    )


def patience() -> float:
    """How long a client built here may wait for the reset: up to the hour in a command run
    in the foreground (not the worker), not at all in a request or a background thread."""
    if has_request_context():
        return 0.0
    command = click.get_current_context(silent=True)
    foreground = threading.current_thread() is threading.main_thread()
    if command is None or not foreground or command.info_name == WORKER_COMMAND:
        return 0.0
    return WAIT_AT_MOST


# --- api_limits ----------------------------------------------------------------------------


def _stored(base_url: str) -> Figures | None:
    row = db.session.execute(select(limits).where(limits.c.api == ONELOGIN)).one_or_none()
    if row is None or row.base_url != base_url or row.limit is None:
        return None
    if row.remaining is None or row.resets_at is None:
        return None
    return Figures(row.limit, row.remaining, row.resets_at, row.updated_at)


def _saver(engine: Engine, base_url: str) -> Callable[[Figures], None]:
    """Saves figures with a connection of its own (any thread, no app context needed), never
    waiting for a lock: if the row or the database is busy, the next save carries the
    figures. Figures older than the row's are not written over it."""

    def save(figures: Figures) -> None:
        values = {
            "base_url": base_url,
            "limit": figures.limit,
            "remaining": figures.remaining,
            "resets_at": figures.resets_at,
            "updated_at": figures.seen_at,
        }
        try:
            with engine.connect() as connection, _not_waiting(connection):
                older = (limits.c.updated_at <= figures.seen_at) | (limits.c.base_url != base_url)
                changed = connection.execute(
                    update(limits).where(limits.c.api == ONELOGIN, older).values(values)
                )
                if not changed.rowcount:
                    exists = select(limits.c.api).where(limits.c.api == ONELOGIN)
                    if connection.execute(exists).first() is None:
                        connection.execute(insert(limits).values(api=ONELOGIN, **values))
                connection.commit()
        except IntegrityError:
            pass  # another process saved its figures at the same moment: they stand
        except SQLAlchemyError as exc:
            log.info("OneLogin's API budget not saved this time (%s)", type(exc).__name__)

    return save


class _not_waiting:
    """Within it, a write that meets a lock fails at once instead of waiting: SQLite's busy
    timeout 0 (restored after), PostgreSQL's lock_timeout for the transaction."""

    def __init__(self, connection) -> None:
        self.connection, self.before = connection, None

    def __enter__(self):
        dialect = self.connection.dialect.name
        if dialect == "sqlite":
            self.before = self.connection.exec_driver_sql("PRAGMA busy_timeout").scalar()
            self.connection.exec_driver_sql("PRAGMA busy_timeout = 0")
        elif dialect == "postgresql":
            self.connection.exec_driver_sql("SET LOCAL lock_timeout = '1s'")
        return self

    def __exit__(self, *exc: object) -> None:
        if exc[0] is not None:
            self.connection.rollback()
        if self.before is not None:
            self.connection.exec_driver_sql(f"PRAGMA busy_timeout = {int(self.before)}")


# --- what the pages and commands show ------------------------------------------------------


@dataclass(frozen=True)
class Shown:
    """OneLogin's API budget as last seen, for the Sync page and `sync status`."""

    limit: int
    remaining: int
    reserve: int  # calls kept for the other integrations
    reserve_share: str  # "10%"
    left: int  # calls the dashboard may still make before the reset
    resets_at: datetime
    seen_at: datetime
    has_reset: bool  # the reset time has passed: full again, as far as anyone can tell
    resets_in: str  # "in 23 min", from now

    def as_json(self) -> dict:
        return {
            "limit": self.limit,
            "remaining": self.remaining,
            "reserve": self.reserve,
            "left": self.left,
            "resets_at": self.resets_at.isoformat(),
            "seen_at": self.seen_at.isoformat(),
            "has_reset": self.has_reset,
        }


def shown() -> Shown | None:
    """The budget of the saved OneLogin connection's account as last seen by any process
    (this one's own figures when newer than the row); None before any call was answered."""
    connection = db.session.scalar(select(Connection).filter_by(kind=ONELOGIN))
    if connection is None:
        return None
    figures = _stored(connection.base_url)
    budgets = _budgets()
    budget = budgets.by_url.get(connection.base_url)
    mine = budget.figures if budget is not None else None
    if mine is not None and (figures is None or mine.seen_at > figures.seen_at):
        figures = mine
    if figures is None:
        return None
    share, now = _reserve(), budgets.now()
    reset = figures.has_reset(now)
    return Shown(
        figures.limit,
        figures.limit if reset else figures.remaining,
        figures.reserve(share),
        share_text(share),
        figures.limit - figures.reserve(share) if reset else figures.left(share),
        figures.resets_at,
        figures.seen_at,
        reset,
        in_minutes((figures.resets_at - now).total_seconds()),
    )


def onelogin_budget_json() -> dict:
    """For `flask sync status --json`: `{"seen": false}` before any OneLogin answer, else
    `{"seen": true, "limit", "remaining", "reserve", "left", "resets_at", "seen_at",
    "has_reset"}` (times in ISO 8601, UTC)."""
    found = shown()
    return {"seen": False} if found is None else {"seen": True, **found.as_json()}
