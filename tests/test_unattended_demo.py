"""Issue 15's "done when", in the demo as `make run` serves it (a real `flask run` process,
its embedded executor and background loop): with a short DASHBOARD_RECONCILE_EVERY and
DASHBOARD_RECONCILE_APPLY=safe, a role changed in the sandbox OneLogin console reaches
Workato with nobody clicking; a broken SCIM token sends an alert to a real webhook receiver;
the Overview shows both."""

from __future__ import annotations

import html
import json
import os
import re
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests

from tests.support.webhook_receiver import WebhookReceiver

ROOT = Path(__file__).resolve().parent.parent
EVERY = "10s"  # the shortest allowed; the README's demo uses 30s
DEADLINE = 90.0  # seconds for anything the background loop does (a few intervals)


def fields(markup: str) -> dict[str, str]:
    return {k: html.unescape(v) for k, v in re.findall(r'name="([^"]+)" value="([^"]*)"', markup)}


def until(what: str, check: Callable[[], object], timeout: float = DEADLINE):
    """check()'s first truthy answer, asked every half second until the deadline."""
    deadline, pause = time.monotonic() + timeout, threading.Event()
    while True:
        found = check()
        if found:
            return found
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        pause.wait(0.5)


class Demo:
    def __init__(self, base_url: str, instance: Path) -> None:
        self.base_url, self.instance = base_url, instance
        self.http = requests.Session()

    def url(self, action: str) -> str:
        action = html.unescape(action)
        return action if action.startswith("http") else self.base_url + action

    def get(self, path: str) -> str:
        answer = self.http.get(self.base_url + path, timeout=30)
        answer.raise_for_status()
        return answer.text

    def post(self, path: str, page: str, **form: str) -> requests.Response:
        token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
        return self.http.post(self.base_url + path, data={"csrf_token": token, **form}, timeout=30)

    def sign_in_as_admin(self) -> None:
        idp_page = self.get("/")  # redirected through /saml/login to the demo IdP
        for cookie in self.http.cookies:
            # The sign-in binding cookie is Secure; browsers send it to http://127.0.0.1
            # (a secure context), requests does not unless told.
            cookie.secure = False
        forms = re.findall(r'<form method="post" action="([^"]+)">(.*?)</form>', idp_page, re.S)
        action, body = next((a, b) for a, b in forms if 'value="ada"' in b)
        autopost = self.http.post(self.url(action), data=fields(body), timeout=30).text
        acs = re.search(r'<form method="post" action="([^"]+)" data-autopost>', autopost)[1]
        signed_in = self.http.post(self.url(acs), data=fields(autopost), timeout=30)
        assert "Overview" in signed_in.text

    def query(self, sql: str, *args) -> list[tuple]:
        with sqlite3.connect(self.instance / "dashboard.db") as database:
            return database.execute(sql, args).fetchall()

    def workato_role(self, email: str) -> str | None:
        credentials = json.loads((self.instance / "sandbox-credentials.json").read_text())
        answer = self.http.get(
            f"{self.base_url}/sandbox/workato/scim/v2/Users",
            params={"filter": f'userName eq "{email}"'},
            headers={"Authorization": f"Bearer {credentials['scim_token']}"},
            timeout=30,
        ).json()
        for user in answer.get("Resources", []):
            extension = next((v for k, v in user.items() if k.endswith(":WorkatoRole")), {})
            return extension.get("workato_role")
        return None


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[tuple[Demo, WebhookReceiver]]:
    from tests.test_browser import free_port

    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    instance = tmp_path / "instance"
    with WebhookReceiver() as hook:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SAML_", "DASHBOARD_"))}
        env.pop("DATABASE_URL", None)
        env.update(
            DASHBOARD_DEMO="1",
            DASHBOARD_INSTANCE_PATH=str(instance),
            SAML_SP_BASE_URL=base_url,
            DASHBOARD_RECONCILE_EVERY=EVERY,
            DASHBOARD_RECONCILE_APPLY="safe",
            DASHBOARD_ALERT_WEBHOOK_URL=hook.url,
        )
        flask = [sys.executable, "-m", "flask", "--app", "app"]
        subprocess.run(
            [*flask, "db", "upgrade"], cwd=ROOT, env=env, check=True, capture_output=True
        )
        server = subprocess.Popen(
            [*flask, "run", "--host", "127.0.0.1", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            until("the demo to answer", lambda: _answers(base_url + "/healthz"), 60)
            yield Demo(base_url, instance), hook
        finally:
            server.terminate()
            server.wait(timeout=30)


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.ConnectionError:
        return False


def test_left_running_the_demo_keeps_workato_in_line_and_alerts_on_a_broken_token(demo):
    site, hook = demo
    site.sign_in_as_admin()
    site.post("/sandbox/connect", site.get("/connections"))

    # The schedule applies its first plan with nobody clicking.
    first = until(
        "the first scheduled reconcile",
        lambda: site.query(
            "SELECT outcome, run_id FROM scheduled_reconciles WHERE outcome != 'running'"
        ),
    )
    assert first[0][0] in ("applied", "in_sync"), first

    # An admin changes a role in the sandbox OneLogin console, and only there.
    console = site.get("/sandbox/console")
    user_id, email = re.search(r'id="user-(\d+)".*?([\w.]+@example\.com)', console, re.S).groups()
    wanted = "Operator" if site.workato_role(email) != "Operator" else "Analyst"
    row = dict(re.findall(rf'form="user-form-{user_id}" name="(\w+)" value="([^"]*)"', console))
    site.post(f"/sandbox/console/users/{user_id}", console, **{**row, "workato_role": wanted})
    until(f"{email}'s new role in Workato", lambda: site.workato_role(email) == wanted)
    by_schedule = site.query(
        "SELECT r.created_by, r.started_by FROM sync_items i JOIN sync_runs r ON r.id = i.run_id "
        "WHERE i.key = ? AND i.action = 'update' AND i.status = 'succeeded'",
        email.lower(),
    )
    assert ("schedule", "schedule") in by_schedule

    # Someone saves a wrong SCIM token: the next reconcile is refused, and the alert goes out.
    connections = site.get("/connections")
    scim_url = re.search(r'id="scim-base_url"[^>]*value="([^"]+)"', connections)[1]
    site.post("/connections/scim", connections, base_url=scim_url, secret="w" * 32)
    alert = until(
        "the broken token's alert",
        lambda: next((b for b in hook.bodies() if b.get("kind") == "connection:scim"), None),
    )
    assert alert["status"] == "firing" and "token" in alert["text"].lower()
    assert "w" * 32 not in json.dumps(hook.bodies())

    overview = site.get("/")
    assert "Failing" in overview and "Open alerts" in overview
    assert "None: nothing needs you now." not in overview
    assert "Workato SCIM API" in overview and "<code>sync.schedule</code>" in overview
