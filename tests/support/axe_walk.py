"""The accessibility walk's machinery: one demo server as `make run` starts it, and a record of
what axe found on each page and which routes' HTML answers it checked on the way.

tests/test_accessibility.py says where the walk goes; this module only keeps its account.
"""

from __future__ import annotations

import os
import subprocess
import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

from playwright.sync_api import Browser, Page, Response
from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, RequestRedirect

from dashboard import create_app
from dashboard.settings import Settings
from tests.support.axe import Violation, serve_axe, violations
from tests.test_browser import free_port, wait_for_line

ROOT = Path(__file__).resolve().parent.parent.parent
TESTS = ROOT / "tests"
DESKTOP = {"width": 1280, "height": 720}  # Playwright's default
PHONE = {"width": 375, "height": 800}


class Walk:
    """What the walk found: axe's violations per page (each of `labels` once), and the
    endpoints whose HTML answers arrived before a check (so were checked as part of a page)."""

    def __init__(self, labels: tuple[str, ...], url_map: Map, base_url: str) -> None:
        self.labels = labels
        self.routes = url_map.bind(urlsplit(base_url).netloc)
        self.get_routes = {r.endpoint for r in url_map.iter_rules() if "GET" in (r.methods or ())}
        self.found: dict[str, list[Violation]] = {}
        self.checked: set[str] = set()
        self.arrived: set[str] = set()  # since the last check
        self.stopped: str | None = None
        self.page: Page | None = None  # the one the walk is on

    def new_page(self, browser: Browser) -> Page:
        """A page in a context of its own (its own cookies: who is signed in), watched."""
        context = browser.new_context(viewport=DESKTOP)
        serve_axe(context)
        self.page = context.new_page()
        self.page.on("response", self._answered)
        return self.page

    def _answered(self, response: Response) -> None:
        kind = response.headers.get("content-type", "")
        if 300 <= response.status < 400 or not kind.startswith("text/html"):
            return
        try:
            endpoint, _ = self.routes.match(urlsplit(response.url).path, response.request.method)
        except (HTTPException, RequestRedirect):
            return  # a 404, or a path the app does not route
        self.arrived.add(endpoint)

    def check(self, page: Page, label: str) -> None:
        """axe on the page as it stands, on a desktop and on a phone: what fits the one may
        scroll on the other (a code block, a table), out of a keyboard's reach."""
        assert label in self.labels and label not in self.found, label
        found = violations(page)
        page.set_viewport_size(PHONE)
        found += violations(page)
        page.set_viewport_size(DESKTOP)
        self.found[label] = found
        self.checked |= self.arrived
        self.arrived = set()

    def stop(self, exc: Exception, folder: Path) -> None:
        """Say where the walk stopped: its own line, the error's first line, and the page
        it was on (a screenshot in `folder`)."""
        frames = traceback.extract_tb(exc.__traceback__)
        mine = [f for f in frames if Path(f.filename).is_relative_to(TESTS)]
        said = [
            f"{Path(mine[-1].filename).name}:{mine[-1].lineno}: {mine[-1].line}" if mine else "?"
        ]
        said.append(f"{type(exc).__name__}: {(str(exc).splitlines() or [''])[0]}")
        if self.page is not None and not self.page.is_closed():
            shot = folder / "page.png"
            self.page.screenshot(path=str(shot), full_page=True)
            said.append(f"on {self.page.url}, as {shot}")
        self.stopped = "\n  ".join(said)


def demo_routes(instance: Path) -> Map:
    """The URL map of the app the demo server runs (demo mode adds the sandbox's pages)."""
    settings = Settings(
        DASHBOARD_DEMO=True,
        SAML_SP_BASE_URL="http://127.0.0.1:5000",
        DATABASE_URL=f"sqlite:///{instance / 'routes.db'}",
    )
    return create_app(settings, instance_path=str(instance)).url_map


@contextmanager
def demo_server(instance: Path, **settings: str) -> Iterator[str]:
    """`flask db upgrade` and `flask run` in demo mode, as `make run` does, on a free port,
    with `settings` in its environment."""
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SAML_", "DASHBOARD_"))}
    env.pop("DATABASE_URL", None)
    env.update(
        DASHBOARD_DEMO="1",
        DASHBOARD_INSTANCE_PATH=str(instance),
        SAML_SP_BASE_URL=base_url,
        **settings,
    )
    flask = [sys.executable, "-m", "flask", "--app", "app"]
    subprocess.run([*flask, "db", "upgrade"], cwd=ROOT, env=env, check=True, capture_output=True)
    server = subprocess.Popen(
        [*flask, "run", "--host", "127.0.0.1", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    reader = None
    try:
        reader = wait_for_line(server, "Running on", timeout=60)
        yield base_url
    finally:
        server.terminate()
        server.wait(timeout=30)
        if reader is not None:
            reader.join(timeout=30)  # it ends at the closed pipe's end of file
        server.stderr.close()
