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
from urllib.parse import urlencode

import pytest
from playwright.sync_api import Locator, Page, expect, sync_playwright

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
        # Nothing plans behind the clicks these tests make (tests/test_schedule.py does).
        DASHBOARD_RECONCILE_EVERY="0",
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
def expected_errors() -> list[str]:
    """Console errors a test expects, as parts of their text. A refused form answers 422 on
    purpose, and Chromium and htmx both log that answer as an error."""
    return []


@pytest.fixture
def page(expected_errors: list[str]) -> Iterator[Page]:
    """A Chromium page; the test fails if any script error or CSP violation shows up (other
    than those the test said it expects)."""
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
    assert [p for p in problems if not any(e in p for e in expected_errors)] == []


def screenshot(page: Page, path: Path) -> None:
    """The whole page, the text caret left as it is: hiding it puts an empty `style` on every
    input, which htmx copies onto swapped-in content at its next swap, which the CSP refuses."""
    page.screenshot(path=str(path), full_page=True, caret="initial")


def sign_in_and_connect_the_sandbox(page: Page, base_url: str) -> None:
    """Sign in as the demo admin, on Connections, and press "Use the demo sandbox"."""
    page.goto(base_url + "/connections")
    page.get_by_role("button", name=re.compile("Ada Admin")).click()
    page.get_by_role("button", name="Use the demo sandbox").click()
    expect(page.get_by_text("now point at the demo sandbox")).to_be_visible()


def preview_a_sync(page: Page) -> None:
    """Sync → Preview: reads both sides, so the Users page lists everyone."""
    page.get_by_role("link", name="Sync", exact=True).click()
    page.get_by_role("button", name="Preview", exact=True).click()
    expect(page.get_by_role("heading", name="Preview: what a sync would do")).to_be_visible()


def user_row(page: Page, base_url: str, name: str) -> Locator:
    """The Users page searched for `name` (as its search box does, by URL), and that person's
    row. By URL: typing in the box and clicking at once races the box's own reload."""
    page.goto(f"{base_url}/users?{urlencode({'q': name})}")
    row = page.locator(".people-table tbody tr", has=page.get_by_role("link", name=name))
    expect(row).to_have_count(1)
    return row


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
    screenshot(page, tmp_path / "person-provisioned.png")

    person_url = page.url
    page.get_by_label(re.compile("I understand")).check()
    page.get_by_role("button", name="Suspend in Workato").click()
    # Its steps come in place of Provision now's, on the same person, and take the focus.
    expect(result.get_by_role("heading")).to_have_text("Suspend in Workato: done")
    expect(result).to_be_focused()
    expect(heading).to_contain_text("Suspended")
    expect(page).to_have_url(person_url)
    result.get_by_role("link", name=re.compile(r"^Run \d+: ")).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(re.compile(r"^Run \d+"))


# What Chromium and htmx log when a role edit is refused (422, the form back with the error).
REFUSED_EDIT = (
    "the server responded with a status of 422",
    "Response Status Error Code 422 from /users/roles/",
)


def expect_change(scope: Locator, field: str, old: str, new: str) -> None:
    """`scope` lists the change of `field` from `old` to `new` (struck out → in bold)."""
    change = scope.locator(".changes li", has_text=f"{field}:")
    expect(change.locator(".old")).to_have_text(old)
    expect(change.locator(".new")).to_have_text(new)


def test_admin_fixes_every_seeded_role_problem_inline_and_the_checklist_turns_green(
    demo_server, page, expected_errors, tmp_path
):
    """The issue's "edits a role inline and sees the state change": the three seeded role
    problems (wrong case, unknown name, none at all) fixed from the Users page and the user
    page, and Setup's role_values check no longer names anyone."""
    expected_errors.extend(REFUSED_EDIT)
    sign_in_and_connect_the_sandbox(page, demo_server)
    page.goto(demo_server + "/setup")
    page.get_by_role("button", name="Re-check all").click()
    role_values = page.locator("#item-role_values")
    expect(role_values.locator(".state")).to_have_text("Failing")
    expect(role_values).to_contain_text("jonas.weber@example.com (workato_role)")
    expect(role_values).to_contain_text("rui.costa@example.com (workato_role)")
    preview_a_sync(page)

    # Jonas Weber (now "admin"): "ADMIN" is refused by the field, with the right spelling offered.
    jonas = user_row(page, demo_server, "Jonas Weber")
    jonas.get_by_role("button", name="Edit the role fields of Jonas Weber").click()
    role = jonas.get_by_label("workato_role", exact=True)
    role.fill("ADMIN")
    jonas.get_by_role("button", name="Save", exact=True).click()
    expect(role).to_have_attribute("aria-invalid", "true")
    expect(role).to_have_accessible_description(re.compile(r"Did you mean Admin\?$"))
    screenshot(page, tmp_path / "users-inline-refused.png")
    role.fill("Admin")
    jonas.get_by_role("button", name="Save", exact=True).click()
    # Saved in OneLogin; Workato still holds "admin" until the next sync: drift.
    expect(jonas.get_by_role("status")).to_contain_text("Saved in OneLogin.")
    expect(jonas.locator(".role-values")).to_contain_text("role Admin")
    expect(jonas.locator(".state")).to_have_text("Drift")
    expect_change(jonas.locator(".details"), "workato_role", "admin", "Admin")

    # Rui Costa: "Developer" is no Workato role; set Operator and push it at once.
    rui = user_row(page, demo_server, "Rui Costa")
    expect(rui.locator(".role-values")).to_contain_text("role Developer")
    rui.get_by_role("button", name="Edit the role fields of Rui Costa").click()
    rui.get_by_label("workato_role", exact=True).fill("Operator")
    rui.get_by_label("Also push to Workato now").check()
    rui.get_by_role("button", name="Save", exact=True).click()
    expect(rui.get_by_role("status")).to_contain_text("Saved in OneLogin and sent to Workato.")
    expect(rui.locator(".role-values")).to_contain_text("role Operator")
    expect(rui.locator(".state")).to_have_text("In sync")

    # Kwame Mensah has no workato_role: set one on his own page, in the roles card.
    user_row(page, demo_server, "Kwame Mensah").get_by_role("link", name="Kwame Mensah").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Kwame Mensah")
    card = page.locator("#roles-card")
    card.get_by_label("workato_role", exact=True).fill("Analyst")
    card.get_by_role("button", name="Save to OneLogin").click()
    expect(card.get_by_role("status")).to_contain_text("Saved in OneLogin.")
    expect_change(card.get_by_role("status"), "workato_role", "(not set)", "Analyst")
    expect(card.get_by_role("heading", name="Drift: Workato has → OneLogin says")).to_be_visible()
    expect(card.get_by_label("workato_role", exact=True)).to_have_value("Analyst")
    screenshot(page, tmp_path / "person-roles-saved.png")
    page.reload()
    expect(page.get_by_role("heading", level=1).locator(".state")).to_have_text("Drift")
    timeline = page.locator("section", has=page.get_by_role("heading", name="Timeline"))
    expect(timeline.locator("tr", has_text="roles.edit")).to_contain_text(
        "workato_role: — → Analyst"
    )

    page.get_by_role("link", name="Setup", exact=True).click()
    page.get_by_role("button", name="Re-check all").click()
    expect(role_values.locator(".state")).to_have_text("Verified")
    expect(role_values).to_contain_text(
        re.compile(r"All \d+ assigned users' role values are in Workato's list of roles")
    )
    expect(role_values).not_to_contain_text("jonas.weber@example.com")
    expect(role_values).not_to_contain_text("rui.costa@example.com")


def expect_removal_in_the_timeline(page: Page) -> None:
    timeline = page.locator("section", has=page.get_by_role("heading", name="Timeline"))
    what = timeline.locator("tbody tr td:nth-child(3)")
    expect(what).to_have_text(["sync.user", "sync.suspend", "access.remove_app"])
    expect(timeline.locator("tr", has_text="access.remove_app")).to_contain_text(
        "roles: Workato Users"
    )
    expect(timeline.locator("tr", has_text="sync.user")).to_contain_text("action: suspend")


def test_admin_removes_a_leavers_access_in_three_clicks_and_the_audit_shows_it(
    demo_server, page, tmp_path
):
    """The issue's "remove a leaver's access in three clicks": open the user from the Users
    page, tick "I understand", press Remove app access. OneLogin drops the role, Workato
    suspends the account, and the Timeline and the Audit page say exactly that."""
    sign_in_and_connect_the_sandbox(page, demo_server)
    preview_a_sync(page)
    liam = user_row(page, demo_server, "Liam O'Connor")
    expect(liam.locator(".state")).to_have_text("In sync")

    liam.get_by_role("link", name="Liam O'Connor").click()  # click 1
    remove = page.locator("form", has=page.get_by_role("button", name="Remove app access"))
    remove.get_by_label(re.compile("I understand")).check()  # click 2
    remove.get_by_role("button", name="Remove app access").click()  # click 3

    result = page.locator(".provision-result")
    expect(result.get_by_role("heading")).to_have_text("Remove app access: done")
    expect(result).to_be_focused()
    expect(result).to_contain_text("OneLogin: Removed from the OneLogin role Workato Users.")
    steps = result.locator(".steps li")
    expect(steps).to_have_count(5)
    expect(steps.filter(has_text="Act:")).to_contain_text("suspend: PATCH /Users/")
    expect(result.locator(".step-failed")).to_have_count(0)
    heading = page.get_by_role("heading", level=1)
    expect(heading.locator(".state")).to_have_text("Suspended")
    screenshot(page, tmp_path / "person-access-removed.png")

    # The Timeline says what happened, newest first, in the page that came back and after a
    # reload (the person as stored, not only as the answer showed it).
    expect_removal_in_the_timeline(page)
    page.reload()
    expect(heading.locator(".state")).to_have_text("Suspended")
    expect(page.locator(".facts", has_text="Workato app")).to_contain_text("Removed")
    expect_removal_in_the_timeline(page)

    page.get_by_role("link", name="Audit", exact=True).click()
    entries = page.locator(".audit-table tbody tr")
    removed = entries.filter(has_text="access.remove_app")
    expect(removed).to_have_count(1)
    expect(removed).to_contain_text("ada.admin@example.com")
    expect(removed.locator(".outcome")).to_have_text("success")
    expect(removed).to_contain_text("roles: Workato Users")
    expect(entries.filter(has_text="sync.user").first).to_contain_text("action: suspend")
    screenshot(page, tmp_path / "audit.png")

    # Back on Users, the leaver's row says the same.
    expect(user_row(page, demo_server, "Liam O'Connor").locator(".state")).to_have_text("Suspended")


def edit_inline(page, server: str, name: str, role: str):
    """Set a user's workato_role in their Users row; the row comes back in Drift."""
    row = user_row(page, server, name)
    row.get_by_role("button", name=f"Edit the role fields of {name}").click()
    row.get_by_label("workato_role", exact=True).fill(role)
    row.get_by_role("button", name="Save", exact=True).click()
    expect(row.locator(".state")).to_have_text("Drift")
    return row


def test_an_inline_edit_leaves_the_role_fields_it_did_not_touch(demo_server, page):
    sign_in_and_connect_the_sandbox(page, demo_server)
    preview_a_sync(page)
    edit_inline(page, demo_server, "Jonas Weber", "Admin")
    page.goto(demo_server + "/sandbox/console")  # what OneLogin now holds
    expect(page.get_by_label("workato_role of jonas.weber@example.com")).to_have_value("Admin")
    expect(page.get_by_label("workato_role_prod of jonas.weber@example.com")).to_have_value(
        "Analyst"
    )


def test_the_audit_page_names_the_user_an_entry_is_about(demo_server, page):
    sign_in_and_connect_the_sandbox(page, demo_server)
    preview_a_sync(page)
    edit_inline(page, demo_server, "Rui Costa", "Operator")
    page.get_by_role("link", name="Audit", exact=True).click()
    edit = page.locator(".audit-table tbody tr", has_text="roles.edit")
    expect(edit).to_contain_text("workato_role: Developer → Operator")
    expect(edit).to_contain_text("rui.costa@example.com")
