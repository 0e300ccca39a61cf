"""Sync benchmark (issue 4): N users in the OneLogin simulator (a child process), Workato = a
real scim2-server process, each behind a latency proxy (Workato's also rate-limited), the
dashboard on SQLite in a temporary folder (or on a fresh PostgreSQL database, --postgres).

    .venv/bin/python bench/sync_bench.py --users 1000,10000 --latency 0.05 --rate 100

Measures the first full provision, a no-op reconcile and a reconcile with 1% drift against
their lower bounds (README.md). Several sizes run one after the other, each in a fresh
process, so the peak memory printed for a size is that size's alone.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import resource
import secrets
import signal
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections import Counter
from contextlib import ExitStack, contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import click  # noqa: E402
from flask_migrate import upgrade  # noqa: E402
from sqlalchemy import select  # noqa: E402

from bench.databases import scratch_database  # noqa: E402
from bench.tenant import Simulator  # noqa: E402
from dashboard import create_app  # noqa: E402
from dashboard.connections import service as connections  # noqa: E402
from dashboard.connections.models import ONELOGIN, SCIM, ApiLimit  # noqa: E402
from dashboard.extensions import db  # noqa: E402
from dashboard.sandbox.onelogin_seed import (  # noqa: E402
    DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET,
    ROLE_FIELDS,
    WORKATO_APP_ID,
)
from dashboard.settings import Settings  # noqa: E402
from dashboard.setup import service as setup  # noqa: E402
from dashboard.setup import template  # noqa: E402
from dashboard.sync import rate, runner, service  # noqa: E402
from tests.support.scim_server import ScimServer  # noqa: E402
from tests.support.throttle_proxy import ThrottleProxy  # noqa: E402

ACTOR = "bench@example.com"
ONELOGIN_USERS_PAGE, ONELOGIN_APP_USERS_PAGE = 100, 1000  # the client's page sizes


# The cases of issue 14, each on the product's defaults (nothing configured): Workato's limit
# R (req/s), its latency L (s), N users; "what" is what the case is to show.
CASES = {
    "limit-50": (50, 0.02, 2000, "ratio at least 0.9"),
    "limit-5": (5, 0.02, 300, "ratio at least 0.85, at most 10% of the creates 429"),
    "limit-200": (200, 0.02, 2000, "the ratio, and what limits it"),
    "scale": (200, 0.02, 100_000, "peak RSS, CPU per write, plan time"),
}
# scim2-server's own time for a page grows with the users it holds (about 2 s for a page of
# 1,000 at 100,000): at scale the no-op plan reads pages of 1,000, or it would measure mostly
# the stand-in.
CASE_PAGE_SIZE = {"scale": 1000}


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--case", action="append", choices=[*CASES, "all"], help="a preset")
    parser.add_argument("--users", action="append", help="N, or N,M,...; may repeat")
    parser.add_argument("--latency", type=float, default=0.05, help="seconds per request (L)")
    parser.add_argument("--rate", type=float, default=100, help="Workato's limit, req/s (R)")
    parser.add_argument("--client-rate", help="DASHBOARD_SYNC_RATE (default: the product's)")
    parser.add_argument(
        "--concurrency", type=int, help="DASHBOARD_SYNC_CONCURRENCY (default: the product's)"
    )
    parser.add_argument(
        "--page-size", type=int, help="DASHBOARD_SYNC_PAGE_SIZE (default: the product's)"
    )
    parser.add_argument("--drift", type=float, default=0.01, help="share of roles changed")
    parser.add_argument("--tmp", help="folder for the SQLite database (default: the system's)")
    parser.add_argument("--postgres", help="admin URL: run on a fresh database there instead")
    parser.add_argument("--tracemalloc", action="store_true", help="also trace Python memory")
    parser.add_argument("--trace-rate", action="store_true", help="print the SCIM rate as it moves")
    parser.add_argument("--profile", metavar="FILE", help="py-spy the first provision into FILE")
    parser.add_argument("--only", type=int, help=argparse.SUPPRESS)  # one size, in a child
    parser.add_argument("--only-case", help=argparse.SUPPRESS)  # one case, in a child
    args = parser.parse_args()
    args.cases = list(CASES) if "all" in (args.case or []) else (args.case or [])
    args.sizes = [int(n) for v in args.users or ["1000"] for n in v.split(",") if n.strip()]
    args.sizes = [args.only] if args.only else args.sizes
    return args


# --- the dashboard -----------------------------------------------------------------------


def make_app(url: str, folder: Path, args: argparse.Namespace):
    chosen = {
        name: value
        for name, value in (
            ("DASHBOARD_SYNC_RATE", args.client_rate),
            ("DASHBOARD_SYNC_CONCURRENCY", args.concurrency),
            ("DASHBOARD_SYNC_PAGE_SIZE", args.page_size),
        )
        if value is not None
    }
    settings = Settings(
        **chosen,
        SECRET_KEY=secrets.token_urlsafe(32),
        DATABASE_URL=url,
        DASHBOARD_SYNC_EXECUTOR="worker",
    )
    # Like a `flask sync ...` command, the benchmark serves no pages, so it needs no SAML
    # settings: create_app asks for them only outside a click command (_serves_pages).
    with click.Context(click.Command("sync-bench")):
        return create_app(settings, instance_path=str(folder / "instance"))


def save_connections(onelogin_url: str, scim_url: str, token: str) -> None:
    connections.save(
        ONELOGIN,
        actor=ACTOR,
        base_url=onelogin_url,
        secret=DEMO_CLIENT_SECRET,
        client_id=DEMO_CLIENT_ID,
        app_id=WORKATO_APP_ID,
    )
    connections.save(SCIM, actor=ACTOR, base_url=scim_url, secret=token)
    setup.save_template(template.default_template(list(ROLE_FIELDS)), ACTOR)


# --- measuring ---------------------------------------------------------------------------


class Meter:
    """Wall time of one phase, and what each side received meanwhile."""

    def __init__(self, simulator: Simulator, onelogin: ThrottleProxy, scim: ThrottleProxy):
        self.simulator, self.onelogin_proxy, self.scim_proxy = simulator, onelogin, scim

    def __enter__(self) -> Meter:
        self.calls0 = self.simulator.ask("calls")
        self.ol0, self.scim0 = self.onelogin_proxy.snapshot(), self.scim_proxy.snapshot()
        self.start, self.cpu0 = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self.start
        self.cpu = time.process_time() - self.cpu0  # this process's: the dashboard's
        self.onelogin = self.simulator.ask("calls") - self.calls0  # as the simulator counts
        ol, scim = self.onelogin_proxy.snapshot(), self.scim_proxy.snapshot()
        self.by_method = scim[0] - self.scim0[0]
        self.scim = self.by_method.total()
        self.throttled = scim[1] - self.scim0[1]
        self.ol_served, self.scim_served = ol[2] - self.ol0[2], scim[2] - self.scim0[2]


def reconcile(meter: dict) -> dict:
    """make_plan, then apply and work the run in this process, timed apart."""
    with Meter(**meter) as plan_meter:
        run, plan = service.make_plan(ACTOR)
    with Meter(**meter) as run_meter:
        if run.total:
            service.apply(run.id, ACTOR, start=False)
            run = runner.process(run.id)
    if run.total and run.status != "succeeded":
        print(f"  ! run {run.id} ended {run.status}: {run.message}", file=sys.stderr)
    return {"plan": plan_meter, "run": run_meter, "counts": plan.counts, "writes": run.total}


def trace_rate() -> None:
    """Print the rate finder's rate every half second of sending, and at each 429 it heeds."""
    last = [-1.0]
    sent, throttled = rate.RateFinder.sent, rate.RateFinder.throttled

    def on_sent(self, now):
        sent(self, now)
        if now - last[0] >= 0.5:
            last[0] = now
            print(f"  rate {now:9.2f}  {self.current:7.1f}/s", file=sys.stderr)

    def on_throttled(self, now, sent_at):
        before = self.current
        heeded = throttled(self, now, sent_at)
        if heeded:
            print(f"  429  {now:9.2f}  {before:7.1f} -> {self.current:.1f}/s", file=sys.stderr)
        return heeded

    rate.RateFinder.sent, rate.RateFinder.throttled = on_sent, on_throttled


@contextmanager
def sync_world(n: int, L: float, R: float, args: argparse.Namespace):
    """(app, meter), in the app's context: N users in the OneLogin simulator, scim2-server as
    Workato, each behind a throttling proxy in its own process (so this process's CPU time
    is the dashboard's alone), the dashboard on a scratch database with both connections
    saved."""
    logging.disable(logging.INFO)  # alembic's and the simulator's request lines
    with tempfile.TemporaryDirectory(dir=args.tmp) as tmp, ExitStack() as stack:
        simulator = stack.enter_context(Simulator(n))
        ol_proxy = stack.enter_context(ThrottleProxy.process(simulator.url, latency=L))
        scim = stack.enter_context(ScimServer())
        scim_proxy = stack.enter_context(ThrottleProxy.process(scim.root_url, latency=L, rate=R))
        url = stack.enter_context(scratch_database(args.postgres, Path(tmp)))
        app = make_app(url, Path(tmp), args)
        with app.app_context():
            upgrade()
            save_connections(ol_proxy.root_url, scim_proxy.root_url + "/v2", scim.token)
            try:
                yield app, {"simulator": simulator, "onelogin": ol_proxy, "scim": scim_proxy}
            finally:
                db.session.remove()
                db.engine.dispose()


def measure(n: int, args: argparse.Namespace) -> list[tuple]:
    L, R = args.latency, args.rate
    if args.trace_rate:
        trace_rate()
    with sync_world(n, L, R, args) as (app, meter):
        effective = app.extensions["dashboard.settings"]
        c, page_size = effective.DASHBOARD_SYNC_CONCURRENCY, effective.DASHBOARD_SYNC_PAGE_SIZE
        baseline = rss_mb()
        if args.tracemalloc:
            tracemalloc.start()
        first, noop = reconcile(meter), reconcile(meter)
        changed = meter["simulator"].ask("drift", args.drift)
        drifted = reconcile(meter)
        traced = tracemalloc.get_traced_memory()[1] / 2**20 if args.tracemalloc else None

    # What a reconcile must read: OneLogin's token, app, app-user pages and user pages;
    # Workato's ServiceProviderConfig and user pages (at least one, even when empty).
    ol_pages = 2 + math.ceil(n / ONELOGIN_APP_USERS_PAGE) + math.ceil(n / ONELOGIN_USERS_PAGE)
    scim_pages, empty_scim = 1 + max(1, math.ceil(n / page_size)), 2

    def reads(m: Meter, scim_pages: int) -> tuple[float, float]:
        """(bound, floor): both sides read at once, each page one after the other."""
        return max(ol_pages, scim_pages) * L, max(m.ol_served, m.scim_served)

    def writes(m: Meter, actions: int) -> tuple[float, float]:
        paced = actions / R if R else 0.0  # --rate 0: no limit
        return max(paced, actions * L / c), max(paced, m.scim_served / c)

    def total(a: tuple, b: tuple) -> tuple[float, float]:
        return a[0] + b[0], a[1] + b[1]

    creates, updates = first["counts"]["create"], drifted["writes"]
    p, r, np_, dp, dr = first["plan"], first["run"], noop["plan"], drifted["plan"], drifted["run"]
    fp, fr = reads(p, empty_scim), writes(r, creates)
    dpb, drb = reads(dp, scim_pages), writes(dr, changed)
    memory = peak_mb()
    rows = [
        ("first provision: creates planned", creates, n),
        ("first provision: plan (s)", p.seconds, *fp),
        ("first provision: run (s)", r.seconds, *fr),
        ("first provision: plan + run (s)", p.seconds + r.seconds, *total(fp, fr)),
        ("first provision: SCIM requests", p.scim + r.scim, empty_scim + n),
        ("  of which POST /Users", r.by_method["POST"], n),
        ("  of which answered 429", p.throttled + r.throttled, 0),
        ("first provision: CPU per write (ms)", 1000 * r.cpu / max(1, creates), 2.0),
        ("no-op: writes planned", noop["writes"], 0),
        ("no-op: OneLogin requests", np_.onelogin, ol_pages),
        ("no-op: SCIM requests", np_.scim, scim_pages),
        ("no-op: time (s)", np_.seconds, *reads(np_, scim_pages)),
        (f"drift {args.drift:.0%}: updates planned", updates, changed),
        ("drift: plan (s)", dp.seconds, *dpb),
        ("drift: run (s)", dr.seconds, *drb),
        ("drift: plan + run (s)", dp.seconds + dr.seconds, *total(dpb, drb)),
        ("drift: SCIM requests", dp.scim + dr.scim, scim_pages + changed),
        ("  run: " + ", ".join(f"{v} {k}" for k, v in sorted(dr.by_method.items())), None),
        ("peak RSS, whole process (MB)", memory, 500),
        ("  RSS before the first plan (MB)", baseline),
        ("  peak RSS minus that (MB)", memory - baseline),
    ]
    if traced is not None:
        rows.append(("tracemalloc peak during the sync (MB)", traced))
    return rows


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        return int(next(line for line in status if line.startswith("VmRSS:")).split()[1]) / 1024


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


# --- output ------------------------------------------------------------------------------


def show(n: int, args: argparse.Namespace, rows: list[tuple], took: float) -> None:
    db_kind = "PostgreSQL" if args.postgres else "SQLite"
    print(
        f"\nN = {n:,} users   L = {args.latency:g} s   R = {args.rate:g}/s   client rate = "
        f"{args.client_rate or 'auto'}   concurrency = {args.concurrency or 'default'}   "
        f"SCIM page = {args.page_size or 'default'}   {db_kind}   (benchmark took {took:.0f} s)"
    )
    print(f"{'metric':<40}{'measured':>11}{'bound':>10}{'ratio':>7}{'floor':>10}{'ratio':>7}")
    for name, measured, *bounds in rows:
        line = f"{name:<40}{_fmt(measured):>11}"
        for bound in bounds:
            ratio = f"{measured / bound:.2f}" if bound else "-"
            line += f"{_fmt(bound):>10}{ratio:>7}"
        print(line.rstrip())
    print(
        "ratio = measured / bound. floor = the bound with each request's measured time at the\n"
        "stand-ins (scim2-server, the OneLogin simulator) added to L. Peak RSS is this\n"
        "process's: the dashboard, the bench and its proxies; both stand-ins run apart."
    )


def _fmt(value) -> str:
    if value is None:
        return ""
    return f"{value:,}" if isinstance(value, int) else f"{value:,.2f}"


class Profile:
    """py-spy sampling this process while the run works (`--profile FILE`): which threads
    hold the GIL (`--gil`: Python CPU, not waiting), written as collapsed stacks to FILE,
    then summed up by function."""

    def __init__(self, path: str | None) -> None:
        self.path, self.child = path, None

    def __enter__(self) -> Profile:
        if self.path:
            command = ["py-spy", "record", "--pid", str(os.getpid()), "--gil", "--rate", "250"]
            command += ["--format", "raw", "--output", self.path, "--nonblocking"]
            py_spy = Path(sys.executable).with_name("py-spy")
            command[0] = str(py_spy) if py_spy.exists() else "py-spy"
            self.child = subprocess.Popen(  # noqa: S603
                command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
            )
        return self

    def __exit__(self, *exc: object) -> None:
        if self.child is not None:
            self.child.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
            self.child.wait(timeout=60)

    def top(self, shown: int = 12) -> list[str]:
        if not self.path or not Path(self.path).exists():
            return []
        own, within, total = Counter(), Counter(), 0
        for line in Path(self.path).read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            frames = [_frame(f) for f in stack.split(";")]
            total += int(count)
            own[frames[-1]] += int(count)
            for name in set(frames):
                if "dashboard/" in name:
                    within[name] += int(count)
        lines = [f"    {n / total:6.1%}  {name}" for name, n in own.most_common(shown)]
        lines.append("  dashboard functions, with what they call (share of the samples):")
        lines += [f"    {n / total:6.1%}  {name}" for name, n in within.most_common(shown)]
        return lines


def _frame(frame: str) -> str:
    """'function (path/to/file.py:12)' as 'function (file path from the package)'."""
    name, _, where = frame.partition(" (")
    where = where.rsplit(":", 1)[0]
    for marker in ("site-packages/", str(ROOT) + "/"):
        where = where.split(marker)[-1]
    return f"{name} ({where})"


class ImportClock:
    """The CPU time the event import after a run takes (OneLogin's and Workato's own record,
    read into the audit trail: once, not per write), to take it out of the write path's."""

    def __init__(self) -> None:
        self.cpu = 0.0
        self._import = runner._import_events
        runner._import_events = self._timed

    def _timed(self, run) -> None:
        started = time.process_time()
        try:
            self._import(run)
        finally:
            self.cpu += time.process_time() - started


def measure_case(name: str, args: argparse.Namespace) -> dict:
    """One case of CASES on the product's defaults: the first provision (plan and run), and
    at scale also a no-op plan (both sides full: the plan's peak memory)."""
    R, L, n, _ = CASES[name]
    args.rate, args.latency = R, L
    args.page_size = args.page_size or CASE_PAGE_SIZE.get(name)
    if args.trace_rate:
        trace_rate()
    with sync_world(n, L, R, args) as (app, meter):
        idle = rss_mb()
        imports = ImportClock()
        with Profile(args.profile) as profile:
            first = reconcile(meter)
        import_cpu = imports.cpu
        after_run = peak_mb()
        noop = reconcile(meter) if name == "scale" else None
        learned = db.session.scalar(select(ApiLimit.rate).where(ApiLimit.api == SCIM))
    run, plan, creates = first["run"], first["plan"], first["counts"]["create"]
    bound = creates / R
    # What the writers allow: each holds one request at a time, for L and Workato's own time.
    answered_in = run.scim_served / max(1, run.scim)
    writers = app.extensions["dashboard.settings"].DASHBOARD_SYNC_CONCURRENCY
    return {
        "case": name,
        "users": n,
        "R": R,
        "L": L,
        "run_s": run.seconds,
        "bound_s": bound,
        "ratio": bound / run.seconds,
        "throttled": run.throttled,
        "throttled_share": run.throttled / max(1, creates),
        "learned": learned,
        "cpu_ms": 1000 * (run.cpu - import_cpu) / max(1, creates),
        "import_cpu_s": import_cpu,
        "profile": profile.top(),
        "answered_in_ms": 1000 * answered_in,
        "writers": writers,
        "writers_bound_s": creates * answered_in / writers,
        "plan_s": plan.seconds,
        "noop_plan_s": noop["plan"].seconds if noop else None,
        "idle_mb": idle,
        "peak_mb": peak_mb(),
        "peak_after_run_mb": after_run,
    }


def show_case(row: dict) -> None:
    goal = CASES[row["case"]][3]
    print(
        f"\n{row['case']}: N = {row['users']:,}   R = {row['R']:g}/s   L = {row['L']:g} s   "
        f"(nothing configured; goal: {goal})"
    )
    print(
        f"  first provision run  {row['run_s']:9.2f} s   bound {row['bound_s']:.2f} s "
        f"(writes / R)   ratio {row['ratio']:.2f} (bound / measured)"
    )
    print(
        f"  answered 429         {row['throttled']:9,}     {row['throttled_share']:.1%} of the "
        f"creates;   rate learned {row['learned'] or 0:.1f}/s"
    )
    print(
        f"  dashboard CPU        {row['cpu_ms']:9.2f} ms a write (its own process; limit 2 ms); "
        f"the event import after the run {row['import_cpu_s']:.2f} s"
    )
    print(
        f"  Workato's answer     {row['answered_in_ms']:9.1f} ms a request (L and the stand-in's "
        f"own time): {row['writers']} writers allow no less than {row['writers_bound_s']:.2f} s"
    )
    plan = f"  plan                 {row['plan_s']:9.2f} s (first provision)"
    if row["noop_plan_s"] is not None:
        plan += f";  {row['noop_plan_s']:.2f} s with both sides full (no-op reconcile)"
    print(plan)
    if row["profile"]:
        print("  profile (py-spy --gil, the plan and run): functions where the samples were:")
        print("\n".join(row["profile"]))
    grown = row["peak_mb"] - row["idle_mb"]
    print(
        f"  peak RSS             {row['peak_mb']:9.1f} MB (limit 500);  "
        f"idle {row['idle_mb']:.1f} MB; growth {grown:.1f} MB = "
        f"{1024 * grown / row['users']:.2f} KB a user (limit 1)"
    )


def main() -> None:
    args = arguments()
    if args.only_case:
        show_case(measure_case(args.only_case, args))
        return
    if args.cases:  # one fresh process per case, so each peak is its own
        for name in args.cases:
            command = [sys.executable, __file__, "--only-case", name]
            command += ["--postgres", args.postgres] if args.postgres else []
            command += ["--trace-rate"] if args.trace_rate else []
            command += ["--profile", f"{args.profile}.{name}"] if args.profile else []
            subprocess.run(command, check=True)  # noqa: S603
        return
    if len(args.sizes) > 1:  # one fresh process per size, so each peak is its own
        for n in args.sizes:
            command = [sys.executable, __file__, *sys.argv[1:], "--only", str(n)]
            subprocess.run(command, check=True)  # noqa: S603
        return
    started = time.perf_counter()
    rows = measure(args.sizes[0], args)
    show(args.sizes[0], args, rows, time.perf_counter() - started)


if __name__ == "__main__":
    main()
