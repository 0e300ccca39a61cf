"""One installation as several machines run it, on this machine: gunicorn instances serving
`app:app` and `flask sync worker` processes, each with its own instance folder, sharing only
what an operator shares between machines (the PostgreSQL database, SECRET_KEY,
DASHBOARD_ENCRYPTION_KEY, the audit signing key file, the Redis of the sign-in limits and
SAML_SP_BASE_URL: the load balancer's address), and a browser that speaks HTTP to any of them.

    shared = Shared.make(folder, redis_url)          # the keys, made once
    app = make_app(**shared.app_settings())          # the test's own app: same database, keys
    with Cluster(app, shared, folder) as cluster:    # every process group stopped on exit
        a, b = cluster.webs("a", "b")                # gunicorn --workers 2, answering /healthz
        w1 = cluster.worker("w1")                    # waiting for runs
        cluster.kill(w1, signal.SIGKILL)
    browser = Browser(idp, saml)                     # requests, cookies per host as a browser
    browser.sign_in(a.url, ADMIN_EMAIL, [ADMINS])    # the real SP-initiated SAML flow

Each process writes its output to a log file beside its instance folder (an undrained pipe
would block it); a failure message quotes the tail. Nobody sleeps: `until` polls a condition
with a deadline, failing as soon as a process it relies on has exited.
"""

from __future__ import annotations

import contextlib
import copy
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TypeVar
from urllib.parse import parse_qs, urljoin, urlsplit

import requests
from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import select

from dashboard.audit.models import AuditEntry
from dashboard.auth.saml import SamlConfig
from dashboard.extensions import db
from tests.support.pysaml_idp import SSO_URL, PysamlIdp, post_binding
from tests.support.scim_server import free_port
from tests.support.signin import ADMINS, VIEWERS
from tests.support.workers import ROOT, worker_env

START_SECONDS = 60.0  # a process's start, on a loaded machine
STOP_SECONDS = 30.0  # SIGTERM's grace before SIGKILL when a test ends
HTTP_SECONDS = 30.0
SESSION_COOKIE = "dashboard_session"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
WAITING = re.compile(r"Sync worker (\S+) waiting for runs\.")

T = TypeVar("T")


# --- what the machines share -----------------------------------------------------------


@dataclass(frozen=True)
class Shared:
    """The settings every process of the installation gets the same, as an operator sets
    them on each machine (nothing read from a shared instance folder)."""

    encryption_key: str
    signing_key_file: Path
    ratelimit_url: str

    @classmethod
    def make(cls, folder: Path, ratelimit_url: str) -> Shared:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        key_file = folder / "audit-signing-key.pem"
        key_file.write_bytes(
            Ed25519PrivateKey.generate().private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        key_file.chmod(0o600)
        return cls(Fernet.generate_key().decode(), key_file, ratelimit_url)

    def app_settings(self) -> dict[str, object]:
        """For the test's own app (make_app), which saves the connections the processes read."""
        return {
            "DASHBOARD_ENCRYPTION_KEY": self.encryption_key,
            "DASHBOARD_AUDIT_SIGNING_KEY_FILE": self.signing_key_file,
        }

    def environment(self) -> dict[str, str]:
        return {
            "DASHBOARD_ENCRYPTION_KEY": self.encryption_key,
            "DASHBOARD_AUDIT_SIGNING_KEY_FILE": str(self.signing_key_file),
            "DASHBOARD_RATELIMIT_STORAGE_URL": self.ratelimit_url,
        }


# --- the processes ---------------------------------------------------------------------


@dataclass
class Process:
    """One process group: a gunicorn master and its workers, or a sync worker."""

    name: str
    popen: subprocess.Popen
    log: Path
    env: dict[str, str]
    url: str = ""  # a web instance's http://127.0.0.1:port
    owner: str = ""  # a sync worker's owner id, as sync_runs.owner holds it
    workers: int = 0  # a web instance's gunicorn workers

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def holds(self, pid: int) -> bool:
        """Whether `pid` is this process or one of its group (a gunicorn worker)."""
        try:
            return pid == self.pid or os.getpgid(pid) == self.pid
        except ProcessLookupError:
            return False

    def said(self, lines: int = 40) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return f"--- {self.name} ({self.log}) ---\n" + "\n".join(text.splitlines()[-lines:])


class Cluster:
    """The processes a test starts; on exit every group still running gets SIGTERM, then
    SIGKILL after STOP_SECONDS, whatever the test's outcome."""

    def __init__(self, app, shared: Shared, folder: Path) -> None:
        self.app, self.shared, self.folder = app, shared, folder
        self.processes: list[Process] = []

    def __enter__(self) -> Cluster:
        self.folder.mkdir(parents=True, exist_ok=True)
        return self

    def __exit__(self, *exc: object) -> None:
        for process in self.processes:
            if process.alive():
                _signal_group(process, signal.SIGTERM)
        deadline = time.monotonic() + STOP_SECONDS
        for process in self.processes:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.popen.wait(max(0.1, deadline - time.monotonic()))
            _signal_group(process, signal.SIGKILL)  # what is left of the group, if anything
            if process.popen.poll() is None:
                process.popen.wait(10)

    def environment(self, name: str, **settings: str) -> dict[str, str]:
        """A machine's environment: its own instance folder, the shared settings, the test
        app's database and SAML settings, and the test's `settings` on top."""
        instance = self.folder / name
        return worker_env(
            self.app,
            DASHBOARD_INSTANCE_PATH=str(instance),
            SAML_ROLE_ATTRIBUTE="roles",
            SAML_ADMIN_VALUES=ADMINS,
            SAML_VIEWER_VALUES=VIEWERS,
            PYTHONUNBUFFERED="1",
            **self.shared.environment(),
            **settings,
        )

    def _start(self, name: str, args: list[str], env: dict[str, str]) -> Process:
        log, started = self.folder / f"{name}.log", 1
        while log.exists():  # a restart: a log of its own
            started += 1
            log = self.folder / f"{name}-{started}.log"
        with log.open("wb") as output:
            popen = subprocess.Popen(
                args,
                cwd=ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, signalled as one
            )
        process = Process(name, popen, log, env)
        self.processes.append(process)
        return process

    # --- web instances -------------------------------------------------------------------

    def web(self, name: str, *, workers: int = 2, **settings: str) -> Process:
        """One gunicorn instance on a free port, answering /healthz."""
        return self.webs(name, workers=workers, **settings)[0]

    def webs(self, *names: str, workers: int = 2, **settings: str) -> list[Process]:
        """Several instances started together (their starts overlap), each answering."""
        started = [self._start_web(n, workers, self.environment(n, **settings)) for n in names]
        return [self._until_serving(process) for process in started]

    def restart(self, process: Process) -> Process:
        """The same machine started again after its process stopped: same instance folder,
        same settings (a web instance also keeps its address)."""
        assert not process.alive(), f"{process.name} is still running"
        if process.url:
            port = int(process.url.rsplit(":", 1)[1])
            again = self._start_web(process.name, process.workers, process.env, port=port)
            return self._until_serving(again)
        return self._until_waiting(self._start_worker(process.name, process.env))

    def _start_web(
        self, name: str, workers: int, env: dict[str, str], *, port: int | None = None
    ) -> Process:
        port = port or free_port()
        # The README's command line (Running in production), on a port of its own.
        args = [
            sys.executable,
            "-m",
            "gunicorn",
            "app:app",
            *("--bind", f"127.0.0.1:{port}", "--workers", str(workers), "--threads", "8"),
            *("--timeout", "30", "--graceful-timeout", "30"),
            *("--forwarded-allow-ips", "127.0.0.1,::1", "--no-control-socket"),
        ]
        process = self._start(name, args, env)
        process.url, process.workers = f"http://127.0.0.1:{port}", workers
        return process

    def _until_serving(self, process: Process) -> Process:
        until(f"{process.name} to serve", lambda: _answers(process.url + "/healthz"), [process])
        return process

    # --- sync workers --------------------------------------------------------------------

    def worker(self, name: str, **settings: str) -> Process:
        return self.workers(name, **settings)[0]

    def workers(self, *names: str, **settings: str) -> list[Process]:
        started = [self._start_worker(n, self.environment(n, **settings)) for n in names]
        return [self._until_waiting(process) for process in started]

    def _start_worker(self, name: str, env: dict[str, str]) -> Process:
        args = [sys.executable, "-m", "flask", "--app", "app", "sync", "worker"]
        return self._start(name, args, env)

    def _until_waiting(self, process: Process) -> Process:
        found = until(
            f"{process.name} to wait for runs",
            lambda: WAITING.findall(process.said(10_000)),
            [process],
        )
        process.owner = found[-1]
        return process

    # --- signals -------------------------------------------------------------------------

    def kill(self, process: Process, sig: int) -> float:
        """Send `sig` to the process's whole group; when it was sent (time.time())."""
        sent = time.time()
        _signal_group(process, sig)
        return sent

    def owning(self, owner: str) -> Process:
        """The process (group) that a run's owner id names: host:pid:random."""
        pid = int(owner.rsplit(":", 2)[1])
        found = [p for p in self.processes if p.alive() and p.holds(pid)]
        assert len(found) == 1, f"no single process of ours is {owner}: {self.processes}"
        return found[0]

    def said(self) -> str:
        return "\n".join(p.said() for p in self.processes)

    def run_flask(self, name: str, *args: str, **settings: str) -> subprocess.CompletedProcess:
        """A one-off command (flask db upgrade) on a machine of this installation."""
        return subprocess.run(
            [sys.executable, "-m", "flask", "--app", "app", *args],
            cwd=ROOT,
            env=self.environment(name, **settings),
            capture_output=True,
            text=True,
            timeout=START_SECONDS,
        )


def _signal_group(process: Process, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # the whole group has exited
        os.killpg(process.pid, sig)


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=5).status_code == 200
    except (requests.ConnectionError, requests.Timeout):  # not listening, or still loading
        return False


def until(
    what: str,
    check: Callable[[], T],
    processes: Iterable[Process] = (),
    timeout: float = START_SECONDS,
    every: float = 0.05,
) -> T:
    """check()'s first truthy answer, asked every `every` seconds until the deadline; fails
    at once, quoting its log, when one of `processes` exits meanwhile."""
    processes = list(processes)
    deadline, pause = time.monotonic() + timeout, threading.Event()
    while True:
        found = check()
        if found:
            return found
        for process in processes:
            if not process.alive():
                raise AssertionError(
                    f"{process.name} exited ({process.popen.returncode}) while waiting for "
                    f"{what}\n{process.said()}"
                )
        if time.monotonic() > deadline:
            raise AssertionError(
                f"gave up waiting for {what} after {timeout:.0f} s\n"
                + "\n".join(p.said() for p in processes)
            )
        pause.wait(every)


# --- a browser -------------------------------------------------------------------------


class Browser:
    """One person's browser, over real HTTP: it keeps cookies per host (not per port, as
    browsers do), follows no redirect by itself, and signs in through the pysaml2 IdP as a
    browser would, redirect and POST."""

    def __init__(self, idp: PysamlIdp, saml: SamlConfig) -> None:
        self.idp, self.saml = idp, saml
        self.http = requests.Session()

    def holding_session_of(self, other: Browser) -> Browser:
        """Another browser holding only `other`'s session cookie (copied to another
        machine, or a load balancer sending the next request elsewhere)."""
        browser = Browser(self.idp, self.saml)
        for cookie in other.http.cookies:
            if cookie.name == SESSION_COOKIE:
                browser.http.cookies.set_cookie(copy.copy(cookie))
        assert browser.http.cookies.get(SESSION_COOKIE), "that browser holds no session"
        return browser

    def get(self, url: str) -> requests.Response:
        return self.http.get(url, allow_redirects=False, timeout=HTTP_SECONDS)

    def page(self, url: str) -> str:
        answer = self.get(url)
        assert answer.status_code == 200, (url, answer.status_code, answer.headers)
        return answer.text

    def post(self, url: str, page: str, *, htmx: bool = False, **form: str) -> requests.Response:
        """Submit a form of `page` (its CSRF token) to `url`; as htmx does when `htmx`."""
        token = CSRF.search(page)
        assert token, "the page carries no CSRF token"
        headers = {"HX-Request": "true"} if htmx else {}
        return self.http.post(
            url,
            data={"csrf_token": token[1], **form},
            headers=headers,
            allow_redirects=False,
            timeout=HTTP_SECONDS,
        )

    def sign_in(self, site: str, email: str, roles: list[str]) -> requests.Response:
        """Open `site`, go to the IdP with its AuthnRequest, come back with the signed
        answer; the ACS's answer (302 to the page first asked for, when signed in)."""
        first = self.get(site + "/")
        assert first.status_code == 302, first.status_code
        login = self.get(urljoin(site + "/", first.headers["Location"]))
        assert login.status_code == 302, login.status_code
        to_idp = urlsplit(login.headers["Location"])
        assert f"{to_idp.scheme}://{to_idp.netloc}{to_idp.path}" == SSO_URL
        query = parse_qs(to_idp.query)
        request = self.idp.read_authn_request(query["SAMLRequest"][0])
        xml = self.idp.response_xml(
            in_response_to=request.id,
            email=email,
            roles=roles,
            destination=self.saml.acs_url,
            sp_entity_id=self.saml.entity_id,
        )
        self._cross_site()
        data = {"SAMLResponse": post_binding(xml), "RelayState": query["RelayState"][0]}
        return self.http.post(
            site + "/saml/acs", data=data, allow_redirects=False, timeout=HTTP_SECONDS
        )

    def _cross_site(self) -> None:
        """What the IdP's cross-site POST carries: only SameSite=None cookies, and the
        sign-in binding cookie's Secure flag cleared (browsers send it to 127.0.0.1 over
        http, a secure context; requests does not unless told)."""
        for cookie in list(self.http.cookies):
            same_site = (cookie.get_nonstandard_attr("SameSite") or "").lower()
            if same_site != "none":
                self.http.cookies.clear(cookie.domain, cookie.path, cookie.name)
            else:
                cookie.secure = False


# --- reading the database ---------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    action: str
    actor: str
    outcome: str
    details: dict
    at: datetime


def entries(app, action: str, run_id: int) -> list[Entry]:
    """The audit entries of `action` about run `run_id`, oldest first."""
    with app.app_context():
        rows = db.session.scalars(
            select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)
        ).all()
        found = [
            Entry(e.action, e.actor, e.outcome, dict(e.details or {}), e.occurred_at)
            for e in rows
            if (e.details or {}).get("run") == run_id
        ]
        db.session.remove()
        return found


def claims_after(app, run_id: int, first_owner: str) -> list[Entry]:
    """The run's `sync.run.started` entries by an owner other than `first_owner`."""
    started = entries(app, "sync.run.started", run_id)
    return [e for e in started if e.details["owner"] != first_owner]
