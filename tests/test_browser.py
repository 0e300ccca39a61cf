"""In a real browser: the README's run command, Debian's Chromium, the demo sign-in."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect, sync_playwright

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

pytestmark = pytest.mark.browser


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def demo_server(tmp_path: Path) -> Iterator[str]:
    """`flask db upgrade` and `flask run` in demo mode, as `make run` does, on a free port."""
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SAML_", "DASHBOARD_"))}
    env.pop("DATABASE_URL", None)
    env.update(
        DASHBOARD_DEMO="1",
        DASHBOARD_INSTANCE_PATH=str(tmp_path / "instance"),
        SAML_SP_BASE_URL=base_url,
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


def wait_for_line(process: subprocess.Popen, needle: str, timeout: float) -> threading.Thread:
    """Block until the server logs `needle` (it is then accepting connections)."""
    seen: list[str] = []
    ready = threading.Event()

    def read() -> None:
        for line in process.stderr:
            seen.append(line)
            if needle in line:
                ready.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    if not ready.wait(timeout):
        raise AssertionError(f"server did not start: {''.join(seen)}")
    return reader


@pytest.fixture
def page() -> Iterator[Page]:
    """A Chromium page; the test fails if any script error or CSP violation shows up."""
    problems: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.on("console", lambda m: m.type == "error" and problems.append(m.text))
            page.on("pageerror", lambda e: problems.append(str(e)))
            yield page
        finally:
            browser.close()
    assert problems == []


def test_admin_signs_in_through_the_demo_idp_and_lands_on_the_overview(demo_server, page, tmp_path):
    """Open the dashboard, get sent to the demo IdP, pick the admin, land on the overview."""
    page.goto(demo_server + "/")
    expect(page).to_have_url(re.compile(r"/sandbox/idp/sso\?SAMLRequest="))
    expect(page.get_by_role("heading", name="Demo identity provider")).to_be_visible()
    page.get_by_role("button", name=re.compile("Ada Admin")).click()
    expect(page).to_have_url(demo_server + "/")
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    expect(page.get_by_text("Signed in as Ada Admin (admin)")).to_be_visible()
    expect(page.get_by_role("link", name="Overview")).to_have_attribute("aria-current", "page")
    page.screenshot(path=str(tmp_path / "overview.png"), full_page=True)


def test_demo_admin_connects_the_sandbox_and_fixes_the_seeded_problems(demo_server, page, tmp_path):
    """The demo's story: store credentials, see the checklist go red for the seeded reasons,
    follow the page's own instructions, see it go green."""
    page.goto(demo_server + "/connections")
    page.get_by_role("button", name=re.compile("Ada Admin")).click()
    page.get_by_role("button", name="Use the demo sandbox").click()
    expect(page.get_by_text("now point at the demo sandbox")).to_be_visible()
    for kind in ("onelogin", "scim", "workato_api"):
        page.locator(f"#{kind}").get_by_role("button", name="Test connection").click()
        expect(page.locator(f"#{kind} .state")).to_have_text("Working")

    page.goto(demo_server + "/setup")
    page.get_by_role("button", name="Re-check all").click()
    parameters = page.locator("#item-app_parameters")
    expect(parameters).to_contain_text("Failing")
    expect(parameters).to_contain_text(
        "tick “Include in SAML assertion” on parameter “workato_role_prod”"
    )
    expect(page.locator("#item-role_values")).to_contain_text("did you mean “Admin”?")
    expect(page.locator("#item-role_values")).to_contain_text("“Developer”: rui.costa@example.com")
    expect(page.locator("#item-scim_template")).to_contain_text('Map "workato_role_prod"')
    page.screenshot(path=str(tmp_path / "setup-red.png"), full_page=True)

    # Follow the instructions: in (sandbox) OneLogin, then paste the template here.
    page.goto(demo_server + "/sandbox/console")
    page.get_by_label("Include workato_role_prod in the SAML assertion").check()
    page.get_by_role("button", name="Save app").click()
    for email, role in (
        ("jonas.weber@example.com", "Admin"),
        ("rui.costa@example.com", "Analyst"),
    ):
        page.get_by_label(f"workato_role of {email}").fill(role)
        page.locator("tr", has_text=email).get_by_role("button", name="Save").click()
        expect(page.get_by_text(f"{email} was saved")).to_be_visible()
    page.goto(demo_server + "/setup")
    page.get_by_text("Show the full SCIM JSON template").click()
    page.get_by_label("Paste the template").fill(page.locator("#paste-template").inner_text())
    page.get_by_role("button", name="Save template").click()
    expect(page.get_by_text("it maps every role field")).to_be_visible()
    page.get_by_role("button", name="Re-check all").click()
    for item in ("app_parameters", "role_values", "scim_template", "scim_role_schema"):
        expect(page.locator(f"#item-{item} .state")).to_have_text("Verified")
    page.screenshot(path=str(tmp_path / "setup-green.png"), full_page=True)


def test_demo_admin_previews_applies_and_watches_the_sync_reach_100_percent(
    demo_server, page, tmp_path
):
    """Issue 4's story: one click brings every seeded user to the right state in Workato."""
    page.goto(demo_server + "/connections")
    page.get_by_role("button", name=re.compile("Ada Admin")).click()
    page.get_by_role("button", name="Use the demo sandbox").click()
    expect(page.get_by_text("now point at the demo sandbox")).to_be_visible()

    page.get_by_role("link", name="Sync", exact=True).click()
    expect(page.get_by_text("No sync runs yet")).to_be_visible()
    page.get_by_role("button", name="Preview", exact=True).click()
    expect(page.get_by_role("heading", name="Preview: what a sync would do")).to_be_visible()
    expect(page.get_by_role("heading", name=re.compile(r"^Orphans: "))).to_be_visible()
    page.screenshot(path=str(tmp_path / "sync-preview.png"), full_page=True)

    page.get_by_role("button", name=re.compile(r"^Apply \d+ changes?$")).click()
    card = page.locator(".run-progress")
    # The run's own page, opened while the run goes on, in a second tab.
    run_url = card.get_by_role("link", name=re.compile(r"^Run \d+$")).get_attribute("href")
    run_page, run_page_problems = second_page(page)
    run_page.goto(demo_server + run_url)
    run_items = run_page.locator("#run-items")
    expect(run_items).to_have_attribute("hx-trigger", "run-finished from:body")  # mid-run

    expect(card.locator(".percent")).to_have_text("100%", timeout=60_000)
    expect(card.locator(".run-state")).to_have_text("Succeeded")
    expect(card.get_by_role("progressbar")).to_be_visible()
    # The status line beside the card says how it ended, in words.
    expect(page.locator("[role=status][id^='run-']")).to_have_text(
        re.compile(r"^Run \d+ succeeded: (\d+) of \1 done\.$")
    )
    # Without a reload, the finished card offers the next preview, and the history has it.
    expect(card.get_by_role("button", name="Preview", exact=True)).to_be_visible()
    newest = page.locator(".history-table tbody tr").first
    expect(newest.locator(".run-state")).to_have_text("Succeeded")
    page.screenshot(path=str(tmp_path / "sync-done.png"), full_page=True)

    # The run page's items reloaded when its card reported the end: every one sent.
    expect(run_page.locator(".run-progress .run-state")).to_have_text("Succeeded")
    expect(run_items.locator(".status-pending, .status-running")).to_have_count(0)
    expect(run_items.locator(".status-succeeded")).to_have_count(
        run_items.locator(".sync-item").count()
    )
    run_page.screenshot(path=str(tmp_path / "run-done.png"), full_page=True)
    run_page.context.close()
    assert run_page_problems == []

    page.get_by_role("link", name="Users", exact=True).click()
    expect(page.get_by_role("heading", name="People per state")).to_be_visible()
    expect(
        page.get_by_text(re.compile(r"as of \d\d:\d\d UTC, from the last preview or run"))
    ).to_be_visible()
    not_provisioned = page.locator(".counts li", has_text="Not provisioned")
    expect(not_provisioned.locator(".count")).to_have_text("0")
    page.get_by_label("State", exact=True).select_option("not_provisioned")
    expect(page).to_have_url(re.compile(r"state=not_provisioned"))
    expect(page.get_by_text("No user matches")).to_be_visible()
    page.get_by_label("State", exact=True).select_option("orphaned")
    expect(page.locator(".people-table .attention").first).to_contain_text("Attention:")
    page.screenshot(path=str(tmp_path / "users.png"), full_page=True)

    # On a phone: every section reachable, users as blocks, no chart.
    page.set_viewport_size({"width": 375, "height": 800})
    expect(page.get_by_role("link", name="Audit", exact=True)).to_be_in_viewport()
    expect(page.get_by_role("link", name="Sync", exact=True)).to_be_in_viewport()
    expect(page.locator(".state-counts .chart")).to_be_hidden()
    expect(page.locator(".people-table tbody tr").first).to_have_css("display", "block")
    page.screenshot(path=str(tmp_path / "users-narrow.png"), full_page=True)
    page.set_viewport_size({"width": 1280, "height": 800})


def second_page(page: Page) -> tuple[Page, list[str]]:
    """Another window signed in as the same admin, with its own list of script errors."""
    problems: list[str] = []
    context = page.context.browser.new_context(storage_state=page.context.storage_state())
    other = context.new_page()
    other.on("console", lambda m: m.type == "error" and problems.append(m.text))
    other.on("pageerror", lambda e: problems.append(str(e)))
    return other, problems


def test_provision_now_takes_the_focus_and_suspending_an_orphan_stays_on_the_person(
    demo_server, page, tmp_path
):
    """After Provision now a screen reader reads its steps next (focus moves there, with no
    inline script); suspending an orphan comes back to the person with a link to its run."""
    page.goto(demo_server + "/connections")
    page.get_by_role("button", name=re.compile("Ada Admin")).click()
    page.get_by_role("button", name="Use the demo sandbox").click()
    expect(page.get_by_text("now point at the demo sandbox")).to_be_visible()
    page.get_by_role("link", name="Sync", exact=True).click()
    page.get_by_role("button", name="Preview", exact=True).click()
    orphans = page.locator(".orphans-table").first
    expect(page.locator(".orphans .attention")).to_have_count(1)
    orphans.get_by_role("link").first.click()

    heading = page.get_by_role("heading", level=1)
    expect(heading).to_contain_text("Orphaned")
    page.get_by_role("button", name="Provision now").click()
    result = page.locator(".provision-result")
    expect(result).to_be_focused()
    expect(result.get_by_role("heading")).to_have_text(re.compile(r"^Provision now: "))
    assert page.evaluate(
        "document.querySelector('h1').nextElementSibling.classList.contains('provision-result')"
    )
    page.screenshot(path=str(tmp_path / "person-provisioned.png"), full_page=True)

    person_url = page.url
    page.get_by_label(re.compile("I understand")).check()
    page.get_by_role("button", name="Suspend in Workato").click()
    expect(page).to_have_url(person_url)
    message = page.locator(".flash-success")
    expect(message).to_contain_text("in Workato: run")
    message.get_by_role("link", name=re.compile(r"^run \d+$")).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Suspend chosen orphans")
