"""Users page benchmark (issue 14): N people written straight into the `people` table, then
the Users page's list query for every combination of its filters (search, state, role, the
first page and a deep one), and the page rendered through the Flask test client, timed.

    .venv/bin/python bench/users_bench.py --count 100000
    .venv/bin/python bench/users_bench.py --count 20000 --no-postgres --repeat 10

Runs on SQLite in a temporary folder, then on a fresh PostgreSQL database (dropped after)
when one answers at --postgres, each in its own process. The schema is the app's, built by
its migrations; the people are deterministic, with a realistic spread of states and roles.
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import random
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402
from flask_migrate import upgrade  # noqa: E402

from bench.databases import page_bench_app, postgres_reachable, scratch_database  # noqa: E402
from bench.pages import signed_in_client, timed_get  # noqa: E402
from bench.timing import LIMIT_MS, groups, summary, table, timed  # noqa: E402
from dashboard.extensions import db  # noqa: E402
from dashboard.person import Person  # noqa: E402
from dashboard.users import service  # noqa: E402

POSTGRES = "postgresql://127.0.0.1:5432/postgres"
CHUNK = 5_000  # people written per executemany (or COPY batch)
NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)  # fixed, so every run seeds the same people


def words(text: str) -> list[str]:
    return text.split()


FIRST = words("""ada alan grace hedy katherine margaret barbara frances radia shafi john mary linus
guido ken dennis bjarne james anders brendan tim vint bob leslie donald edsger tony niklaus
barbara fran jean sophie lucas emma noah olivia liam ava mia amelia harper evelyn abigail
ella elizabeth camila luna sofia avery mila aria scarlett penelope layla chloe victoria
madison eleanor grace nora riley zoey hannah hazel lily ellie violet lillian zoe stella
aurora natalie emilia everly leah aubrey willow addison lucy audrey bella nova brooklyn
paisley savannah claire skylar isla genesis naomi elena caroline eliana anna maya valentina
ruby kennedy ivy ariana aaliyah cora madelyn alice kinsley hailey gabriella allison gianna
serenity samantha sarah autumn quinn eva piper sophie sadie delilah josephine nevaeh adeline
arya emery lydia clara vivian madeline peyton julia rylee""")
LAST = words("""lovelace turing hopper lamarr johnson hamilton liskov allen perlman goldwasser
backus mccarthy torvalds rossum thompson ritchie stroustrup gosling hejlsberg eich
berners-lee cerf kahn lamport knuth dijkstra hoare wirth smith jones williams brown taylor
davies evans wilson thomas roberts johnson lewis walker robinson wood thompson white watson
jackson wright green harris cooper king lee martin clarke james morgan hughes edwards hill
moore clark harrison scott young morris hall ward turner carter phillips mitchell patel
adams campbell anderson allen cook bailey parker miller davis murphy price bell baker
griffiths kelly simpson marshall collins bennett cox richardson fox gray rose chapman hunt
robertson shaw reynolds lloyd ellis richards russell wilkinson khan graham stewart reid
murray powell palmer holmes rogers stevens walsh hunter thomson matthews ross owen mason
knight kennedy butler saunders cole pearce dean foster harvey hudson gibson mills berry
barnes pearson kaur booth dixon grant gordon lane harper ali hart mcdonald brooks carr
macdonald hamilton ryan reid""")
# (state, share, action, reason) as the planner writes them (dashboard/sync/planner.py).
STATES = [
    ("in_sync", 0.82, "noop", "In sync."),
    ("drift", 0.06, "update", "Workato holds other values than OneLogin."),
    ("not_provisioned", 0.04, "create", "Has the app in OneLogin; not in Workato yet."),
    ("suspended", 0.04, "noop", "Suspended on both sides."),
    ("pending", 0.005, "update", "Workato holds other values than OneLogin."),
    ("failed", 0.005, "update", "Workato answered 400: invalid value for workato_role."),
    ("orphaned", 0.03, "noop", "Not known to OneLogin (for example the workspace owner)."),
]  # fmt: skip
# workato_role values and their shares; the rest (5%) have none.
ROLES = [
    ("Analyst", 0.40), ("Operator", 0.22), ("Builder", 0.10), ("Viewer", 0.08),
    ("Auditor", 0.04), ("Admin", 0.03), ("Finance Ops", 0.02), ("HR Automation", 0.02),
    ("Support Lead", 0.015), ("Data Steward", 0.01), ("Release Manager", 0.004),
    ("Security Reviewer", 0.001),
]  # fmt: skip
DRIFT_PATH = "urn:ietf:params:scim:schemas:workato:1.0:WorkatoRole:workato_role"
# Whole requests through the Flask test client, signed in as an admin: (name, path, htmx).
PAGES = [
    ("full page, no filter", "/users", False),
    ("full page, q=zzq, in_sync, Analyst", "/users?q=zzq&state=in_sync&role=Analyst", False),
    ("htmx results, q=son, deep page", "/users?q=son&after=william", True),
]


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=100_000, help="people to seed (N)")
    parser.add_argument("--repeat", type=int, default=20, help="timings per combination")
    parser.add_argument("--tmp", help="folder for the SQLite database (default: the system's)")
    parser.add_argument("--postgres", default=POSTGRES, help="admin URL for PostgreSQL")
    parser.add_argument("--no-postgres", action="store_true", help="SQLite only")
    parser.add_argument("--no-sqlite", action="store_true", help="PostgreSQL only")
    parser.add_argument("--only", choices=["sqlite", "postgresql"], help=argparse.SUPPRESS)
    return parser.parse_args()


# --- seeding -------------------------------------------------------------------------------


def people(n: int) -> Iterator[dict]:
    """N people as a plan records them, deterministic; user names as a directory has them
    (first.last, a number after the first one taken)."""
    rng = random.Random(14)  # noqa: S311  (test data)
    taken: Counter[str] = Counter()
    state_weights = [s[1] for s in STATES]
    role_names = [r[0] for r in ROLES] + [None]
    role_weights = [r[1] for r in ROLES] + [1 - sum(r[1] for r in ROLES)]
    for i in range(n):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        base = f"{first}.{last}"
        taken[base] += 1
        user_name = f"{base}{taken[base] if taken[base] > 1 else ''}@example.com"
        state, _, action, reason = rng.choices(STATES, state_weights)[0]
        role = rng.choices(role_names, role_weights)[0]
        roles = {"workato_role": role} if role else {}
        if role and rng.random() < 0.2:
            roles["workato_role_prod"] = rng.choice(role_names[:4])
        unknown = state == "orphaned" and rng.random() < 0.3  # e.g. the workspace owner
        email = user_name
        if rng.random() < 0.03:
            email = f"{first[0]}{last}{i}@corp.example.com"  # an alias
        danger = changes = None
        if state == "drift":
            other = rng.choice(role_names[:4])
            changes = {DRIFT_PATH: [other, role]}
            if rng.random() < 0.05:
                danger = "Active in Workato although suspended in OneLogin."
        if state == "orphaned" and not unknown:
            reason = "Known to OneLogin; not granted the Workato app."
            danger = "Active in Workato without the app in OneLogin: possibly a leaver."
        yield {
            "key": user_name.casefold(),
            "user_name": user_name,
            "display_name": f"{first.title()} {last.title()}",
            "email": None if unknown else email,
            "onelogin_id": None if unknown else 10_000 + i,
            "onelogin_status": None if unknown else (2 if state == "suspended" else 1),
            "has_app": state not in ("orphaned", "suspended"),
            "had_app": not unknown,
            "scim_id": None if state == "not_provisioned" else f"{i:08x}-scim",
            "workato_active": {"not_provisioned": None, "suspended": False}.get(state, True),
            "role": role,
            "roles": {} if unknown else roles,
            "state": state,
            "action": action,
            "reason": reason,
            "changes": changes or {},
            "danger": danger,
            "orphan_kind": ("unknown" if unknown else "known") if state == "orphaned" else None,
            "last_error": reason if state == "failed" else None,
            # Most rows as the last plan saw them; a few refreshed since by Provision now.
            "seen_at": NOW - timedelta(minutes=rng.choice([0] * 50 + [5, 30, 90])),
        }


def seed(n: int) -> tuple[float, dict[str, str]]:
    """Write N people in chunks; the seconds it took, and a few of them to search for."""
    table = Person.__table__
    columns = [c.name for c in table.columns if c.name != "id"]
    started = time.perf_counter()
    connection = db.engine.raw_connection()
    known: dict[str, str] = {}
    try:
        cursor = connection.cursor()
        rows = people(n)
        if db.engine.dialect.name == "postgresql":
            with cursor.copy(f"COPY people ({', '.join(columns)}) FROM STDIN") as copy:
                for i, person in enumerate(rows):
                    copy.write_row([_stored(person[c]) for c in columns])
                    _remember(known, i, n, person)
        else:
            # As the app stores times (the column type's own processor leaves them to
            # sqlite3, which writes another format).
            dialect = db.engine.dialect
            stored_at = table.c.seen_at.type.dialect_impl(dialect).bind_processor(dialect)
            marks = ", ".join("?" * len(columns))
            sql = f"INSERT INTO people ({', '.join(columns)}) VALUES ({marks})"  # noqa: S608
            numbered = enumerate(rows)
            while batch := list(itertools.islice(numbered, CHUNK)):
                values = []
                for i, person in batch:
                    _remember(known, i, n, person)
                    person["seen_at"] = stored_at(person["seen_at"])
                    values.append(tuple(_stored(person[c]) for c in columns))
                cursor.executemany(sql, values)
        connection.commit()
    finally:
        connection.close()
    if db.engine.dialect.name == "postgresql":
        # What autovacuum does after a bulk load: statistics and the visibility map.
        url = db.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE people")
    return time.perf_counter() - started, known


def _stored(value: object) -> object:
    return json.dumps(value) if isinstance(value, dict) else value


def _remember(known: dict[str, str], i: int, n: int, person: dict) -> None:
    """One person two thirds of the way down, searched for by an exact part of their name."""
    if i == 2 * n // 3:
        known["one"] = person["user_name"].split("@")[0]


# --- measuring -----------------------------------------------------------------------------


def cases(known: dict[str, str], keys: list[str]) -> list[tuple[str, service.Filters]]:
    """Every combination of the Users page's filters, each with a broad and a narrow value,
    on the first page and on a deep one (the keyset 90% of the way down)."""
    searches = {
        "": "",
        "common 'son'": "son",
        "one person": known["one"],
        "none 'zzq'": "zzq",
        "two letters, none 'qz'": "qz",
    }
    states = {"": "", "in_sync (82%)": "in_sync", "failed (0.5%)": "failed"}
    roles = {"": "", "Analyst (40%)": "Analyst", "Security Reviewer (0.1%)": "Security Reviewer",
             "no role (5%)": service.NO_ROLE}  # fmt: skip
    deep = keys[len(keys) * 9 // 10]
    found = []
    for (q_name, q), (s_name, state), (r_name, role), after in itertools.product(
        searches.items(), states.items(), roles.items(), ["", deep]
    ):
        parts = [f"q={q_name}" if q else "", f"state={s_name}" if state else "",
                 f"role={r_name}" if role else "", "deep page" if after else ""]  # fmt: skip
        name = ", ".join(p for p in parts if p) or "no filter"
        found.append((name, service.Filters(q=q, state=state, role=role, after=after)))
    return found


def measure(kind: str, args: argparse.Namespace) -> tuple[list, dict]:
    logging.disable(logging.INFO)  # alembic's lines
    facts: dict = {}
    with (
        tempfile.TemporaryDirectory(dir=args.tmp) as tmp,
        scratch_database(args.postgres if kind == "postgresql" else None, Path(tmp)) as url,
    ):
        app = page_bench_app(url, Path(tmp), "users-bench")
        with app.app_context():
            upgrade()
            facts["seed_s"], known = seed(args.count)
            keys = [p["key"] for p in sorted(people(args.count), key=lambda p: p["key"])]
            rows = []
            for name, filters in cases(known, keys):
                # Only how many it found is kept (see audit_bench.page_timing).
                timing = timed(
                    lambda f=filters: len(service.page(f).people), args.repeat, db.session.rollback
                )
                rows.append((name, timing, timing.result))
            db.session.remove()
        client = signed_in_client(app)
        facts["pages"] = [
            (name, timed_get(client, path, args.repeat, htmx=htmx)) for name, path, htmx in PAGES
        ]
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
    return rows, facts


# --- output --------------------------------------------------------------------------------


def show(kind: str, args: argparse.Namespace, rows: list, facts: dict, took: float) -> None:
    where = "SQLite" if kind == "sqlite" else "PostgreSQL"
    print(
        f"\nN = {args.count:,} people   {where}   seeded in {facts['seed_s']:.1f} s   "
        f"{args.repeat} runs each   (benchmark took {took:.0f} s)"
    )
    table("every combination (users.service.page), ms", rows, width=76)
    print()
    pages = [(name, t, t.result) for name, t in facts["pages"]]
    table("whole page (Flask test client), ms; found = bytes", pages, width=76)
    print(f"ratio = p95 / {LIMIT_MS:.0f} ms; the first run of each includes a cold cache.\n")
    summary("combinations", rows, slowest=10)
    print()
    groups("search (ms)", rows, lambda name: name.split(", ")[0] if "q=" in name else "no search")


def main() -> None:
    args = arguments()
    if args.only is None:
        kinds = [] if args.no_sqlite else ["sqlite"]
        if not args.no_postgres:
            if postgres_reachable(args.postgres):
                kinds.append("postgresql")
            else:
                print(f"PostgreSQL does not answer at {args.postgres}: SQLite only.")
        for kind in kinds:  # one fresh process each
            command = [sys.executable, __file__, *sys.argv[1:], "--only", kind]
            subprocess.run(command, check=True)  # noqa: S603
        return
    started = time.perf_counter()
    rows, facts = measure(args.only, args)
    show(args.only, args, rows, facts, time.perf_counter() - started)


if __name__ == "__main__":
    main()
