"""Audit benchmark (issues 6, 14 and 15): N audit entries spread over a year, then the Audit
page's query (named cases, then every combination of its filters, on the first page and a
deep one), whole pages through the Flask test client, and the full CSV and JSON Lines
exports, timed: median and p95 of --repeat runs, and p95 over the 100 ms a page may take.

    .venv/bin/python bench/audit_bench.py --count 1000000
    .venv/bin/python bench/audit_bench.py --count 200000 --no-postgres --repeat 5 --no-exports

Runs on SQLite in a temporary folder, then on a fresh PostgreSQL database (dropped after)
when one answers at --postgres, each in its own process so each peak RSS is its own. The
schema is the app's, built by its migrations; the entries are written straight into the
table in chunks (the hash chain filled in when the schema has one), not through record().
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402
from flask_migrate import upgrade  # noqa: E402
from sqlalchemy import inspect, select, text  # noqa: E402

from bench.databases import page_bench_app, postgres_reachable, scratch_database  # noqa: E402
from bench.pages import signed_in_client, timed_get  # noqa: E402
from bench.timing import LIMIT_MS, Timing, groups, summary, table, timed  # noqa: E402
from dashboard.audit import export, search, walks  # noqa: E402
from dashboard.audit.models import AuditEntry  # noqa: E402
from dashboard.extensions import db  # noqa: E402

POSTGRES = "postgresql://127.0.0.1:5432/postgres"
CHUNK = 10_000  # entries written per executemany (or COPY batch)
DAYS = 365
NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)  # fixed, so every run seeds the same entries

USERS = [f"user.{n:05d}@example.com" for n in range(10_000)]
ADMINS = [f"admin{n:02d}@example.com" for n in range(12)]
ONELOGIN_ADMINS = [f"ol.admin{n}@example.com" for n in range(5)]
WORKATO_MEMBERS = [f"builder{n:02d}@example.com" for n in range(40)]
ROLES = ("Admin", "Analyst", "Operator")

# What happens, by share of all entries: (source, actor, actions, with a target user).
KINDS = [
    (0.62, "sync", ["sync"], ["sync.update"] * 5 + ["sync.create", "sync.suspend",
                                                    "sync.reactivate", "sync.orphan"], True),
    (0.03, "sync", ADMINS, ["sync.plan", "sync.run.started", "sync.run.finished"], False),
    (0.10, "dashboard", [*ADMINS, "anonymous"],
     ["auth.sign_in"] * 4 + ["auth.sign_out"] * 3 + ["auth.refused", "auth.forbidden"], False),
    (0.08, "dashboard", ADMINS,
     ["roles.edit"] * 6 + ["access.grant", "access.remove_app", "access.deactivate",
                           "workato.suspend", "workato.reactivate", "sync.user"], True),
    (0.02, "dashboard", ADMINS,
     ["connection.saved", "connection.tested", "setup.confirmed", "setup.template_saved",
      "connection.keys_rotated"], False),
    (0.10, "onelogin", [*ONELOGIN_ADMINS, "onelogin"],
     ["onelogin.user_updated", "onelogin.app_assigned", "onelogin.app_removed",
      "onelogin.provisioning_succeeded", "onelogin.provisioning_failed"], True),
    (0.05, "workato", WORKATO_MEMBERS,
     ["workato.member_role_changed", "workato.member_added", "workato.member_removed"], True),
]  # fmt: skip


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=1_000_000, help="entries to seed (N)")
    parser.add_argument("--repeat", type=int, default=20, help="timings per query (p95)")
    parser.add_argument("--no-exports", action="store_true", help="time no export")
    parser.add_argument("--tmp", help="folder for the SQLite database (default: the system's)")
    parser.add_argument("--postgres", default=POSTGRES, help="admin URL for PostgreSQL")
    parser.add_argument("--no-postgres", action="store_true", help="SQLite only")
    parser.add_argument("--no-sqlite", action="store_true", help="PostgreSQL only")
    parser.add_argument("--only", choices=["sqlite", "postgresql"], help=argparse.SUPPRESS)
    return parser.parse_args()


# --- the database --------------------------------------------------------------------------


# --- seeding -------------------------------------------------------------------------------


def entries(n: int) -> Iterator[tuple]:
    """N entries, oldest first, evenly spread over the year before NOW, deterministic."""
    rng = random.Random(6)  # noqa: S311  (test data)
    weights = [kind[0] for kind in KINDS]
    start, step = NOW - timedelta(days=DAYS), timedelta(days=DAYS) / n
    for i in range(n):
        _, source, actors, actions, targeted = rng.choices(KINDS, weights)[0]
        action = rng.choice(actions)
        # A few users are much busier than most, as in a real directory.
        user = USERS[int(len(USERS) * rng.random() ** 2)] if targeted else None
        details: dict = {"run": i // 5000 + 1, "item": i} if source == "sync" else {}
        if action in ("roles.edit", "sync.update", "workato.member_role_changed"):
            details["workato_role"] = rng.sample(ROLES, 2)
        if action.endswith(("refused", "failed")):
            details["error"] = "OneLogin answered 429 Too Many Requests; try again later."
        ip = f"10.0.{rng.randrange(256)}.{rng.randrange(1, 255)}" if source == "dashboard" else None
        outcome = "failed" if action.endswith("failed") else "success"
        outcome = "refused" if action in ("auth.refused", "auth.forbidden") else outcome
        yield start + step * i, rng.choice(actors), source, action, outcome, user, ip, details


def seed(app, n: int) -> float:
    """Write N entries in chunks; the seconds it took."""
    columns = ["occurred_at", "actor", "source", "action", "outcome", "target_user",
               "source_ip", "details"]  # fmt: skip
    present = {c["name"] for c in inspect(db.engine).get_columns("audit")}
    chained = {"seq", "prev_hash", "hash"} <= present
    if chained:
        columns += ["seq", "prev_hash", "hash"]
    started = time.perf_counter()
    rows = _chain(entries(n)) if chained else (entry for entry in entries(n))
    if db.engine.dialect.name == "postgresql":
        _copy(columns, rows)
    else:
        _executemany(columns, rows)
    if chained:
        _set_chain_head(n)
    return time.perf_counter() - started


def _chain(rows: Iterator[tuple]) -> Iterator[tuple]:
    """Each entry with its place in the hash chain, so `flask audit verify` passes."""
    from dashboard.audit.chain import GENESIS, entry_hash

    prev = GENESIS
    for seq, row in enumerate(rows, start=1):
        occurred_at, actor, source, action, outcome, user, ip, details = row
        digest = entry_hash(seq, prev, occurred_at, actor, source, action, outcome, user, ip,
                            details)  # fmt: skip
        yield (*row, seq, prev, digest)
        prev = digest
    _chain.last = prev  # type: ignore[attr-defined]


def _set_chain_head(n: int) -> None:
    from dashboard.audit.chain import HEAD

    with db.engine.begin() as connection:
        connection.execute(
            text("UPDATE audit_chain SET seq = :seq, last_hash = :hash WHERE id = :id"),
            {"seq": n, "hash": _chain.last, "id": HEAD},  # type: ignore[attr-defined]
        )


def _executemany(columns: list[str], rows: Iterator[tuple]) -> None:
    # The values as the app stores them (SQLite keeps times as text, in SQLAlchemy's format:
    # the column type's own processor would leave them to sqlite3, which writes another).
    column_type = AuditEntry.__table__.c.occurred_at.type
    stored = column_type.dialect_impl(db.engine.dialect).bind_processor(db.engine.dialect)
    marks = ", ".join("?" * len(columns))
    sql = f"INSERT INTO audit ({', '.join(columns)}) VALUES ({marks})"  # noqa: S608  (ours)
    connection = db.engine.raw_connection()
    try:
        batch: list[tuple] = []
        for row in rows:
            batch.append((stored(row[0]), *row[1:7], json.dumps(row[7]), *row[8:]))
            if len(batch) == CHUNK:
                connection.cursor().executemany(sql, batch)
                connection.commit()
                batch.clear()
        if batch:
            connection.cursor().executemany(sql, batch)
        connection.commit()
    finally:
        connection.close()


def _copy(columns: list[str], rows: Iterator[tuple]) -> None:
    connection = db.engine.raw_connection()
    try:
        cursor = connection.cursor()
        with cursor.copy(f"COPY audit ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row((*row[:7], json.dumps(row[7]), *row[8:]))
        connection.commit()
    finally:
        connection.close()
    # What autovacuum does after a bulk load: statistics and the visibility map.
    url = db.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE audit")


# --- measuring -----------------------------------------------------------------------------


def deep_key(n: int) -> walks.Key:
    """The keyset of a deep page: 90% of the way down, only the oldest tenth is older."""
    table = AuditEntry.__table__
    ident = max(2, n // 10)
    at = db.session.scalar(select(table.c.occurred_at).where(table.c.id == ident))
    return walks.Key(at, ident)


def cases(deep: walks.Key) -> list[tuple[str, search.Filters]]:
    """What the Audit page is asked, by name. NOW is the newest entry's time."""

    def ago(days: int) -> str:
        return (NOW - timedelta(days=days)).date().isoformat()

    old_month = {"since": ago(330), "until": ago(301)}
    busy, typical, admin = USERS[0], USERS[5000], ADMINS[3]
    f = search.Filters
    return [
        ("first page, no filter", f()),
        ("deep keyset page (oldest 10%)", f(before=deep)),
        ("user (busy)", f(user=busy)),
        ("user (typical)", f(user=typical)),
        ("user (none such)", f(user="nobody@example.com")),
        ("actor (an admin)", f(actor=admin)),
        ("actor (sync)", f(actor="sync")),
        ("action roles.edit", f(action="roles.edit")),
        ("action prefix access.", f(action="access.")),
        ("source workato", f(source="workato")),
        ("source onelogin, deep page", f(source="onelogin", before=deep)),
        ("since last week", f(since=ago(7))),
        ("one month, a year ago", f(**old_month)),
        ("until half a year ago (broad, old)", f(until=ago(DAYS // 2))),
        ("combined: user+action sync.+since", f(user=busy, action="sync.", since=ago(90))),
        ("combined: actor+source+action", f(actor=admin, source="dashboard", action="roles.edit")),
        ("combined: source onelogin+old month", f(source="onelogin", **old_month)),
        ("combined: onelogin+until half a year", f(source="onelogin", until=ago(DAYS // 2))),
        # Filters that each match much but never meet: the slow case (see bench/README.md).
        ("never met: actor sync+roles.edit", f(actor="sync", action="roles.edit")),
        ("never met: actor sync+source dashboard", f(actor="sync", source="dashboard")),
        ("never met: source sync+action auth.", f(source="sync", action="auth.")),
    ]


def combinations(deep: walks.Key) -> list[tuple[str, search.Filters]]:
    """Every combination of the Audit page's filters (user, actor, action, source, time
    range), each with no value, a broad value or a narrow one, on the first page and on a
    deep one: many of them never meet (actor sync with source dashboard)."""

    def ago(days: int) -> str:
        return (NOW - timedelta(days=days)).date().isoformat()

    values = {
        "user": {"busy": USERS[0], "typical": USERS[5000]},
        "actor": {"sync": "sync", "admin": ADMINS[3]},
        "action": {"sync.update": "sync.update", "roles.edit": "roles.edit",
                   "access.": "access."},
        "source": {"dashboard": "dashboard", "sync": "sync", "onelogin": "onelogin"},
        "time": {"last-week": {"since": ago(7)},
                 "old-month": {"since": ago(330), "until": ago(301)},
                 "until-half-year": {"until": ago(DAYS // 2)}},
        "page": {"deep": {"before": deep}},
    }  # fmt: skip
    dimensions = [[("", None), *values[name].items()] for name in values]
    found = []
    for choice in itertools.product(*dimensions):
        asked: dict = {}
        parts = []
        for name, (label, value) in zip(values, choice, strict=True):
            if value is None:
                continue
            parts.append(label if name == "page" else f"{name}={label}")
            asked.update(value if isinstance(value, dict) else {name: value})
        found.append((" ".join(parts) or "no filter", search.Filters(**asked)))
    return found


def measure(kind: str, args: argparse.Namespace) -> tuple[list[tuple], dict]:
    logging.disable(logging.INFO)  # alembic's lines
    facts: dict = {}
    with (
        tempfile.TemporaryDirectory(dir=args.tmp) as tmp,
        scratch_database(args.postgres if kind == "postgresql" else None, Path(tmp)) as url,
    ):
        app = page_bench_app(url, Path(tmp), "audit-bench")
        with app.app_context():
            upgrade()
            facts["seed_s"] = seed(app, args.count)
            if kind == "sqlite":
                facts["db_mb"] = os.path.getsize(Path(tmp) / "dashboard.db") / 2**20
            facts["rss_before_mb"] = rss_mb()
            deep = deep_key(args.count)
            rows = [(name, *page_timing(filters, args.repeat)) for name, filters in cases(deep)]
            facts["combinations"] = [
                (name, filters, *page_timing(filters, args.repeat))
                for name, filters in combinations(deep)
            ]
            db.session.remove()
        client = signed_in_client(app)
        slowest = max(facts["combinations"], key=lambda r: r[2].p95)
        worst = "/audit?" + urlencode(slowest[1].args())
        facts["pages"] = [
            ("full page, no filter", timed_get(client, "/audit", args.repeat)),
            (f"full page, {slowest[0]}", timed_get(client, worst, args.repeat)),
            ("htmx results, source=onelogin", timed_get(client, "/audit?source=onelogin",
                                                        args.repeat, htmx=True)),
        ]  # fmt: skip
        with app.app_context():
            everything, onelogin = search.Filters(), search.Filters(source="onelogin")
            typical = search.Filters(user=USERS[5000])
            facts["exports"] = []
            if not args.no_exports:
                facts["exports"] = [
                    run_export("CSV", export.csv_lines, everything),
                    run_export("JSON Lines", export.jsonl_lines, everything),
                    run_export("CSV, source onelogin", export.csv_lines, onelogin),
                    run_export("CSV, user (typical)", export.csv_lines, typical),
                ]
            db.session.remove()
            db.engine.dispose()
    facts["peak_mb"] = peak_mb()
    return rows, facts


def filters_given(name: str) -> str:
    """A combination's group: how many filters it gives (the keyset page is none)."""
    given = sum(1 for part in name.split() if "=" in part)
    return f"{given} filter{'s' if given != 1 else ''}{', deep page' if 'deep' in name else ''}"


def page_timing(filters: search.Filters, repeat: int) -> tuple[Timing, int]:
    """search.page timed, each run in a fresh transaction as each request has; how many
    entries it gave (only that is kept: a thousand pages of entries kept alive would make
    Python's collector slow every run down)."""
    timing = timed(lambda: len(search.page(filters).entries), repeat, db.session.rollback)
    return timing, timing.result  # type: ignore[return-value]


def run_export(label: str, lines: Callable, filters: search.Filters) -> tuple:
    """(label, entries, seconds, bytes, peak RSS after) of one export, written to nowhere."""
    started = time.perf_counter()
    size = entries = 0

    def counted(rows):
        nonlocal entries
        for row in rows:
            entries += 1
            yield row

    with open(os.devnull, "w", encoding="utf-8") as sink:
        for chunk in lines(counted(search.rows(filters))):
            sink.write(chunk)
            size += len(chunk)
    seconds = time.perf_counter() - started
    db.session.rollback()
    return label, entries, seconds, size, peak_mb()


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        return int(next(line for line in status if line.startswith("VmRSS:")).split()[1]) / 1024


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


# --- output --------------------------------------------------------------------------------


def show(kind: str, args: argparse.Namespace, rows: list[tuple], facts: dict, took: float):
    where = "SQLite" if kind == "sqlite" else "PostgreSQL"
    size = f", file {facts['db_mb']:,.0f} MB" if "db_mb" in facts else ""
    print(
        f"\nN = {args.count:,} entries over {DAYS} days   {where}{size}   seeded in "
        f"{facts['seed_s']:.1f} s   {args.repeat} runs each   (benchmark took {took:.0f} s)"
    )
    table("page of 50 (search.page), ms", rows)
    combos = [(name, timing, found) for name, _, timing, found in facts["combinations"]]
    print()
    table("every combination (search.page), ms", combos)
    print()
    pages = [(name, t, t.result) for name, t in facts["pages"]]
    table("whole page (Flask test client), ms; found = bytes", pages)
    print(f"ratio = p95 / {LIMIT_MS:.0f} ms; the first run of each includes a cold cache.\n")
    summary("combinations", combos, slowest=10)
    print()
    groups("filters given (ms)", combos, filters_given)
    if facts["exports"]:
        print(f"\n{'export (all entries, to /dev/null)':<40}{'entries':>10}{'s':>8}"
              f"{'rows/s':>10}{'MB':>7}{'peak RSS':>10}")  # fmt: skip
    for label, entries, seconds, size, peak in facts["exports"]:
        print(
            f"{label:<40}{entries:>10,}{seconds:>8.1f}{entries / seconds:>10,.0f}"
            f"{size / 2**20:>7.0f}{peak:>9.0f}M"
        )
    print(
        f"RSS once seeded {facts['rss_before_mb']:.0f} MB; peak RSS of the whole process "
        f"{facts['peak_mb']:.0f} MB (seeding included)."
    )


def main() -> None:
    args = arguments()
    if args.only is None:
        kinds = [] if args.no_sqlite else ["sqlite"]
        if not args.no_postgres:
            if postgres_reachable(args.postgres):
                kinds.append("postgresql")
            else:
                print(f"PostgreSQL does not answer at {args.postgres}: SQLite only.")
        for kind in kinds:  # one fresh process each, so each peak is its own
            command = [sys.executable, __file__, *sys.argv[1:], "--only", kind]
            subprocess.run(command, check=True)  # noqa: S603
        return
    started = time.perf_counter()
    rows, facts = measure(args.only, args)
    show(args.only, args, rows, facts, time.perf_counter() - started)


if __name__ == "__main__":
    main()
