"""Plan memory benchmark (issue 14): the peak RSS of a plan of N users, and how much it grows
per user beyond the idle process.

    .venv/bin/python bench/plan_memory.py --users 10000,50000,100000

For each N, the OneLogin simulator (bench/tenant.py) serves N users holding the Workato app
and a real scim2-server stands in for Workato, both in other processes, with the dashboard
on SQLite in a temporary folder (--postgres ADMIN_URL: a fresh PostgreSQL database). Each
measured step runs in a fresh process of its own, so its peak is its own:

1. first plan: Workato empty, so N creates are planned and stored as the preview's items;
   then, with --run-items K, Apply and the run's first K writes (cancelled after them);
2. the first plan's creates are put straight into scim2-server (its /Bulk endpoint, 1,000
   a request: the dashboard's run at this size would take a quarter of an hour);
3. settling plan: everyone found in sync, every person's row updated;
4. no-op plan: nothing changed on either side, nothing written.

Each prints the process's RSS once the app is built (idle), its peak during the step, the
growth per user ((peak - idle) / N) against the 1 KB target, and the step's time.
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import ExitStack
from itertools import pairwise
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import requests  # noqa: E402
from flask_migrate import upgrade  # noqa: E402
from sqlalchemy import func, select  # noqa: E402

from bench.databases import scratch_database  # noqa: E402
from bench.sync_bench import ACTOR, make_app, rss_mb, save_connections  # noqa: E402
from bench.tenant import Simulator  # noqa: E402
from dashboard.extensions import db  # noqa: E402
from dashboard.sync import runner, service  # noqa: E402
from dashboard.sync.models import ITEM_PENDING, Item, Run  # noqa: E402
from tests.support.scim_server import ScimServer  # noqa: E402

TARGET_MB, TARGET_PER_USER = 500, 1024  # issue 14: peak RSS, bytes per user beyond idle
BULK = 1000  # scim2-server's bulk maxOperations


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", action="append", help="N, or N,M,...; may repeat")
    parser.add_argument("--page-size", type=int, default=1000, help="DASHBOARD_SYNC_PAGE_SIZE")
    parser.add_argument("--run-items", type=int, default=0, help="apply, and run K writes")
    parser.add_argument("--first-only", action="store_true", help="only the first plan (1.)")
    parser.add_argument("--tmp", help="folder for the SQLite database (default: the system's)")
    parser.add_argument("--postgres", help="admin URL: run on a fresh database there instead")
    parser.add_argument("--debug", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--step", help=argparse.SUPPRESS)  # one step, in a child process
    parser.add_argument("--world", help=argparse.SUPPRESS)  # the child's URLs, as JSON
    args = parser.parse_args()
    args.sizes = [int(n) for v in args.users or ["10000"] for n in v.split(",") if n.strip()]
    return args


# --- one step, in its own process ----------------------------------------------------------


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def app_for(world: dict, args: argparse.Namespace):
    options = argparse.Namespace(concurrency=8, client_rate="auto", page_size=args.page_size)
    return make_app(world["database"], Path(world["folder"]), options)


def step(args: argparse.Namespace) -> dict:
    logging.disable(logging.INFO)  # alembic's request lines
    world = json.loads(args.world)
    app = app_for(world, args)
    with app.app_context():
        if args.step == "setup":
            upgrade()
            save_connections(world["onelogin"], world["scim"] + "/v2", world["token"])
            return {}
        if args.step == "provision":
            return {"created": provision(world)}
        db.session.execute(select(func.count()).select_from(Run)).scalar()  # warm the engine
        idle = rss_mb()
        started = time.perf_counter()
        run, plan = service.make_plan(ACTOR)
        result = {
            "idle": idle,
            "plan_peak": peak_mb(),
            "plan_seconds": time.perf_counter() - started,
            "counts": plan.counts,
        }
        del plan
        if args.step == "first" and args.run_items and run.total:
            result |= first_writes(app, run.id, args.run_items)
        return result


def first_writes(app, run_id: int, k: int) -> dict:
    """Apply the preview and work its run until k writes are done, then cancel it."""
    started = time.perf_counter()
    service.apply(run_id, ACTOR, start=False)
    applied, apply_peak = time.perf_counter() - started, peak_mb()
    worker = threading.Thread(target=_process, args=(app, run_id))
    worker.start()
    done = 0
    while worker.is_alive() and done < k:
        time.sleep(0.5)  # a benchmark's poll: how far the run got
        done = db.session.scalar(
            select(func.count())
            .select_from(Item)
            .where(Item.run_id == run_id, Item.status != ITEM_PENDING)
        )
        db.session.commit()
    if worker.is_alive():
        service.cancel(run_id, ACTOR)
    worker.join()
    return {
        "apply_seconds": applied,
        "apply_peak": apply_peak,
        "run_items": done,
        "run_seconds": time.perf_counter() - started - applied,
        "run_peak": peak_mb(),
    }


def _process(app, run_id: int) -> None:
    with app.app_context():
        runner.process(run_id)
        db.session.remove()


def provision(world: dict) -> int:
    """The latest preview's creates, put into scim2-server directly through /Bulk."""
    run_id = db.session.scalar(select(func.max(Run.id)))
    query = select(Item.id, Item.request).where(Item.run_id == run_id).order_by(Item.id)
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {world['token']}"
    created, last = 0, 0
    while True:
        rows = db.session.execute(query.where(Item.id > last).limit(BULK)).all()
        if not rows:
            return created
        operations = [
            {"method": "POST", "path": "/Users", "bulkId": str(i), "data": r.request["body"]}
            for i, r in enumerate(rows)
            if r.request and r.request["method"] == "POST"
        ]
        body = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"]}
        body["Operations"] = operations
        answer = session.post(world["scim"] + "/v2/Bulk", json=body, timeout=600)
        answer.raise_for_status()
        statuses = [op["status"] for op in answer.json()["Operations"]]
        created += sum(1 for s in statuses if str(s).startswith("201"))
        last = rows[-1].id


# --- one size: the stand-ins, and each step in a child ---------------------------------


def child(args: argparse.Namespace, name: str, world: dict) -> dict:
    command = [sys.executable, __file__, "--step", name, "--world", json.dumps(world)]
    command += ["--page-size", str(args.page_size), "--run-items", str(args.run_items)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
    if done.returncode or "--debug" in sys.argv:
        print(done.stderr[-5000:])
    if done.returncode:
        sys.exit(f"step {name} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def measure(n: int, args: argparse.Namespace) -> dict[str, dict]:
    logging.disable(logging.INFO)  # the simulator's request lines (it is forked from here)
    with tempfile.TemporaryDirectory(dir=args.tmp) as tmp, ExitStack() as stack:
        simulator = stack.enter_context(Simulator(n))
        scim = stack.enter_context(ScimServer())
        url = stack.enter_context(scratch_database(args.postgres, Path(tmp)))
        world = {
            "onelogin": simulator.url,
            "scim": scim.root_url,
            "token": scim.token,
            "database": url,
            "folder": tmp,
        }
        child(args, "setup", world)
        results = {"first plan (N creates)": child(args, "first", world)}
        if args.first_only:
            return results
        started = time.perf_counter()
        created = child(args, "provision", world)["created"]
        took = time.perf_counter() - started
        print(f"  (put {created:,} users into scim2-server in {took:.0f} s)")
        results["settling plan (all in sync)"] = child(args, "settle", world)
        results["no-op plan"] = child(args, "noop", world)
        return results


def show(n: int, results: dict[str, dict]) -> None:
    print(f"\nN = {n:,} users")
    print(
        f"{'step':<30}{'idle MB':>9}{'peak MB':>9}{'ratio':>7}{'B/user':>8}{'ratio':>7}"
        f"{'time s':>8}"
    )
    for name, r in results.items():
        rows = [(name, r["plan_peak"], r["plan_seconds"])]
        if "run_peak" in r:
            rows.append(("  + apply", r["apply_peak"], r["apply_seconds"]))
            rows.append((f"  + {r['run_items']:,} writes", r["run_peak"], r["run_seconds"]))
        for label, peak, seconds in rows:
            per_user = (peak - r["idle"]) * 2**20 / n
            print(
                f"{label:<30}{r['idle']:>9.0f}{peak:>9.0f}{peak / TARGET_MB:>7.2f}"
                f"{per_user:>8.0f}{per_user / TARGET_PER_USER:>7.2f}{seconds:>8.1f}"
            )
    print(
        f"ratio = peak / {TARGET_MB} MB, and bytes per user beyond idle / {TARGET_PER_USER}. "
        "Each step ran in a fresh process."
    )


def main() -> None:
    args = arguments()
    if args.step:
        print(json.dumps(step(args)))
        return
    measured = {}
    for n in args.sizes:
        measured[n] = measure(n, args)
        show(n, measured[n])
    if len(measured) > 1:
        slopes(measured)


def slopes(measured: dict[int, dict[str, dict]]) -> None:
    """How the peak grows with N: a constant part (a page, a slice) does not count here."""
    sizes = sorted(measured)
    print(f"\npeak growth per added user (B), against {TARGET_PER_USER}")
    for step_name in measured[sizes[0]]:
        cells = []
        for a, b in pairwise(sizes):
            grown = measured[b][step_name]["plan_peak"] - measured[a][step_name]["plan_peak"]
            cells.append(f"{a:,} -> {b:,}: {grown * 2**20 / (b - a):.0f}")
        print(f"  {step_name:<30}" + "   ".join(cells))


if __name__ == "__main__":
    main()
