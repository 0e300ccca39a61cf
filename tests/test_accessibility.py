"""Every page passes axe-core's WCAG 2.1 A and AA rules, with data in it (issue 15).

One demo server and one Chromium walk the dashboard as `make run` serves it: signing in, as an
admin through every section and the states htmx swaps in (a preview, a run's progress, an
inline edit refused, a user read live...), as a viewer, refused, signed out, rate-limited and
lost (404). axe runs on each page as it stands, at a desktop's width and a phone's; each page
is a test of its own, so a failure names the page, then each rule broken with its impact, the
width and the first elements breaking it.

Every GET route of the app is either checked on that walk (an HTML answer the browser got
before a check) or listed in NOT_PAGES with the reason: a new page fails
`test_every_page_route_is_checked` until the walk visits it.
"""

from __future__ import annotations

import re
from urllib.parse import urlencode

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.support.axe import report
from tests.support.axe_walk import Walk, demo_routes, demo_server
from tests.test_browser import CHROMIUM, CHROMIUM_ARGS

pytestmark = pytest.mark.browser

SIGN_IN_LIMIT = 40  # per hour: the walk signs in a few times, then uses up the rest on purpose

# GET routes that answer no HTML page of their own, and why.
NOT_PAGES = {
    "static": "stylesheets, scripts and the icon",
    "pages.healthz": "liveness for a load balancer, not a page",
    "pages.readyz": "readiness for a load balancer (JSON: database and schema), not a page",
    "auth.login": "a redirect to the identity provider",
    "auth.metadata": "SAML metadata (XML)",
    "auth.sls": "the identity provider's logout answer: a redirect to the signed-out page",
    "sandbox.metadata": "the demo identity provider's SAML metadata (XML)",
    "sandbox.single_logout": "the demo identity provider's logout: a redirect back",
    "metrics.metrics": "Prometheus text format",
    "audit.export_csv": "a download (CSV)",
    "audit.export_jsonl": "a download (JSON lines)",
    "audit.export_digests": "a download (JSON lines)",
    "audit.public_key": "a download (PEM)",
    "roles.export": "a download (CSV)",
}

# The pages the walk checks, in its order.
PAGES = (
    "demo sign-in page",
    "signing-in page (its auto-post held back)",
    "overview, nothing connected",
    "connections, nothing connected",
    "connections, each tested",
    "setup, not checked yet",
    "setup, re-checked with the seeded problems",
    "sandbox OneLogin console",
    "sync, no runs yet",
    "sync, a preview shown",
    "sync, a run finished",
    "run page",
    "overview, after a run",
    "users",
    "users, filtered to orphans in place",
    "users, an inline role edit refused",
    "users, the inline edit cancelled",
    "users, a bulk change to confirm",
    "users, a bulk change done",
    "user page",
    "user page, read live",
    "user page, provisioned now",
    "role import",
    "role import, a file previewed",
    "role import, applied",
    "give access",
    "give access, OneLogin users found",
    "give access, done",
    "audit",
    "not found (404)",
    "signed out",
    "overview, as a viewer",
    "connections, as a viewer",
    "setup, as a viewer",
    "users, as a viewer",
    "user page, as a viewer",
    "sync, as a viewer",
    "run page, as a viewer",
    "audit, as a viewer",
    "sign-in refused",
    "too many sign-in attempts",
)


@pytest.fixture(scope="module")
def walk(tmp_path_factory: pytest.TempPathFactory) -> Walk:
    """The whole walk, once for the module. When it stops early, the pages it did not reach
    fail with where and why."""
    url_map = demo_routes(tmp_path_factory.mktemp("routes"))
    settings = {
        "DASHBOARD_SIGNIN_RATE_LIMIT": f"{SIGN_IN_LIMIT}/hour",
        # No scheduled plan racing the walk's own clicks: each page is in the state it expects.
        "DASHBOARD_RECONCILE_EVERY": "0",
    }
    instance = tmp_path_factory.mktemp("demo")
    with demo_server(instance, **settings) as base_url, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        result = Walk(PAGES, url_map, base_url)
        try:
            walk_the_dashboard(result, browser, base_url)
        except Exception as exc:  # every page it did not reach fails with this
            result.stop(exc, tmp_path_factory.mktemp("stopped"))
        finally:
            browser.close()
    return result


@pytest.mark.parametrize("label", PAGES)
def test_page_passes_axe_wcag_21_a_and_aa(walk: Walk, label: str) -> None:
    """Nothing on the page breaks a WCAG 2.1 A or AA rule axe knows."""
    if label not in walk.found:
        pytest.fail(f"the walk did not reach {label!r}; it stopped at:\n{walk.stopped}")
    if walk.found[label]:
        pytest.fail(report(label, walk.found[label]), pytrace=False)


def test_every_page_route_is_checked(walk: Walk) -> None:
    """A GET route added to the app is either a page the walk checks or a NOT_PAGES entry."""
    unchecked = sorted(walk.get_routes - walk.checked - set(NOT_PAGES))
    assert not unchecked, (
        f"GET routes no axe check covered: {unchecked}. Visit each in walk_the_dashboard "
        "(with data on it) or, if it answers no HTML page, add it to NOT_PAGES with the reason."
        + (f"\nThe walk stopped early:\n{walk.stopped}" if walk.stopped else "")
    )
    gone = sorted(set(NOT_PAGES) - walk.get_routes)
    assert gone == [], f"NOT_PAGES names routes the app no longer has: {gone}"


# --- the walk ------------------------------------------------------------------------------


def walk_the_dashboard(walk: Walk, browser: Browser, base: str) -> None:
    admin = walk.new_page(browser)
    sign_in_as_admin(walk, admin, base)
    connections_and_setup(walk, admin, base)
    run_url = sync(walk, admin, base)
    users(walk, admin, base)
    one_user(walk, admin, base)
    role_import(walk, admin, base)
    give_access(walk, admin, base)
    admin.goto(base + "/audit")
    walk.check(admin, "audit")
    admin.goto(base + "/no-such-page")
    expect(admin.get_by_role("heading", level=1)).to_have_text("Not Found")
    walk.check(admin, "not found (404)")
    admin.goto(base + "/")
    admin.get_by_role("button", name="Sign out").click()
    expect(admin).to_have_url(re.compile(r"/signed-out"))
    walk.check(admin, "signed out")
    admin.context.close()

    viewer = walk.new_page(browser)
    as_a_viewer(walk, viewer, base, run_url)
    viewer.context.close()

    outsider = walk.new_page(browser)
    outsider.goto(base + "/")
    outsider.get_by_role("button", name=re.compile("Nora Outsider")).click()
    expect(outsider.get_by_role("heading", level=1)).to_contain_text("not allowed")
    walk.check(outsider, "sign-in refused")
    too_many_sign_ins(walk, outsider, base)
    outsider.context.close()


def signed_in(page: Page) -> None:
    expect(page.get_by_role("navigation", name="Sections")).to_be_visible()


def sign_in_as_admin(walk: Walk, page: Page, base: str) -> None:
    """The demo IdP's page, the page that posts its answer (held still), the first Overview."""
    page.goto(base + "/")
    expect(page.get_by_role("heading", name="Demo identity provider")).to_be_visible()
    walk.check(page, "demo sign-in page")
    autopost = "**/static/js/autopost.js"
    page.route(autopost, lambda route: route.abort())
    page.get_by_role("button", name=re.compile("Ada Admin")).click()
    expect(page.get_by_role("heading", name="Signing in…")).to_be_visible()
    walk.check(page, "signing-in page (its auto-post held back)")
    page.unroute(autopost)
    page.get_by_role("button", name="continue to the dashboard").click()
    expect(page).to_have_url(base + "/")
    signed_in(page)
    walk.check(page, "overview, nothing connected")


def connections_and_setup(walk: Walk, page: Page, base: str) -> None:
    page.goto(base + "/connections")
    walk.check(page, "connections, nothing connected")
    page.get_by_role("button", name="Use the demo sandbox").click()
    expect(page.get_by_text("now point at the demo sandbox")).to_be_visible()
    for kind in ("onelogin", "scim", "workato_api"):
        page.locator(f"#{kind}").get_by_role("button", name="Test connection").click()
        expect(page.locator(f"#{kind} .state")).to_have_text("Working")
    walk.check(page, "connections, each tested")

    page.goto(base + "/setup")
    walk.check(page, "setup, not checked yet")
    page.get_by_role("button", name="Re-check all").click()
    expect(page.locator("#item-app_parameters .state")).to_have_text("Failing")
    page.get_by_text("Show the full SCIM JSON template").click()
    walk.check(page, "setup, re-checked with the seeded problems")

    page.goto(base + "/sandbox/console")
    walk.check(page, "sandbox OneLogin console")


def sync(walk: Walk, page: Page, base: str) -> str:
    """Preview, apply, watch the run end; the run page. Returns the run page's path."""
    page.goto(base + "/sync")
    walk.check(page, "sync, no runs yet")
    page.get_by_role("button", name="Preview", exact=True).click()
    expect(page.get_by_role("heading", name="Preview: what a sync would do")).to_be_visible()
    walk.check(page, "sync, a preview shown")
    page.get_by_role("button", name=re.compile(r"^Apply \d+ changes?$")).click()
    card = page.locator(".run-progress")
    expect(card.locator(".run-state")).to_have_text("Succeeded", timeout=60_000)
    walk.check(page, "sync, a run finished")
    run_url = card.get_by_role("link", name=re.compile(r"^Run \d+$")).get_attribute("href")
    page.goto(base + run_url)
    expect(page.locator(".run-progress .run-state")).to_have_text("Succeeded")
    for exchange in ("Request", "Response"):
        page.locator("#run-items details", has_text=exchange).first.locator("summary").click()
    walk.check(page, "run page")
    page.goto(base + "/")
    walk.check(page, "overview, after a run")
    return run_url


def user_row(page: Page, base: str, name: str):
    page.goto(f"{base}/users?{urlencode({'q': name})}")
    row = page.locator(".people-table tbody tr", has=page.get_by_role("link", name=name))
    expect(row).to_have_count(1)
    return row


def users(walk: Walk, page: Page, base: str) -> None:
    page.goto(base + "/users")
    walk.check(page, "users")
    page.get_by_label("State", exact=True).select_option("orphaned")
    expect(page).to_have_url(re.compile(r"state=orphaned"))
    expect(page.locator(".people-table .attention").first).to_be_visible()
    walk.check(page, "users, filtered to orphans in place")

    jonas = user_row(page, base, "Jonas Weber")
    jonas.get_by_role("button", name="Edit the role fields of Jonas Weber").click()
    role = jonas.get_by_label("workato_role", exact=True)
    role.fill("ADMIN")
    jonas.get_by_role("button", name="Save", exact=True).click()
    expect(role).to_have_attribute("aria-invalid", "true")
    walk.check(page, "users, an inline role edit refused")
    jonas.get_by_role("button", name="Cancel").click()
    expect(jonas.get_by_role("button", name="Edit the role fields of Jonas Weber")).to_be_focused()
    walk.check(page, "users, the inline edit cancelled")

    page.get_by_label("Select Jonas Weber").check()
    page.get_by_label("Set role field").select_option("workato_role_test")
    page.get_by_label("to", exact=True).fill("Operator")
    page.get_by_role("button", name="Review the change").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("for 1 user?")
    walk.check(page, "users, a bulk change to confirm")
    page.get_by_role("button", name="Set workato_role_test for 1 user").click()
    expect(page.get_by_role("heading", level=1)).not_to_contain_text("?")
    walk.check(page, "users, a bulk change done")


def one_user(walk: Walk, page: Page, base: str) -> None:
    user_row(page, base, "Kwame Mensah").get_by_role("link", name="Kwame Mensah").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Kwame Mensah")
    walk.check(page, "user page")
    page.get_by_role("button", name="Read live").click()
    expect(page.get_by_role("button", name="Read again")).to_be_visible()
    walk.check(page, "user page, read live")
    page.get_by_role("button", name="Provision now").click()
    expect(page.locator(".provision-result")).to_be_focused()
    walk.check(page, "user page, provisioned now")


def role_import(walk: Walk, page: Page, base: str) -> None:
    page.goto(base + "/users/roles/import")
    walk.check(page, "role import")
    rows = [
        "email,workato_role,workato_role_test,workato_role_prod",
        "rui.costa@example.com,Operator,,",  # a change
        "maya.chen@example.com,Admin,,",  # as it is
        "rui.costa@example.com,Developer,,",  # no Workato role, and a second row for Rui
        "nobody@example.com,Admin,,",  # nobody known
    ]
    page.get_by_label("CSV file (UTF-8)").set_input_files(
        files=[{"name": "roles.csv", "mimeType": "text/csv", "buffer": "\n".join(rows).encode()}]
    )
    page.get_by_role("button", name="Preview", exact=True).click()
    expect(page.get_by_role("heading", name="Preview: nothing is written yet")).to_be_visible()
    walk.check(page, "role import, a file previewed")
    page.get_by_role("button", name=re.compile(r"^Apply \d+ rows?")).click()
    expect(page.locator("#import-result")).to_be_visible()
    walk.check(page, "role import, applied")


def give_access(walk: Walk, page: Page, base: str) -> None:
    page.goto(base + "/users/grant")
    walk.check(page, "give access")
    page.get_by_label("Find in OneLogin").fill("Hannah")
    candidate = page.locator("#candidates tbody tr", has_text="Hannah Schmidt")
    expect(candidate).to_have_count(1)
    walk.check(page, "give access, OneLogin users found")
    candidate.get_by_label("OneLogin role for Hannah Schmidt").select_option(label="Workato Users")
    candidate.get_by_role("button", name="Give access and provision").click()
    expect(page.locator(".provision-result")).to_be_visible()
    walk.check(page, "give access, done")


def as_a_viewer(walk: Walk, page: Page, base: str, run_url: str) -> None:
    page.goto(base + "/")
    page.get_by_role("button", name=re.compile("Victor Viewer")).click()
    signed_in(page)
    walk.check(page, "overview, as a viewer")
    for path, label in (
        ("/connections", "connections, as a viewer"),
        ("/setup", "setup, as a viewer"),
        ("/users", "users, as a viewer"),
    ):
        page.goto(base + path)
        walk.check(page, label)
    user_row(page, base, "Jonas Weber").get_by_role("link", name="Jonas Weber").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Jonas Weber")
    walk.check(page, "user page, as a viewer")
    for path, label in (
        ("/sync", "sync, as a viewer"),
        (run_url, "run page, as a viewer"),
        ("/audit", "audit, as a viewer"),
    ):
        page.goto(base + path)
        walk.check(page, label)


def too_many_sign_ins(walk: Walk, page: Page, base: str) -> None:
    """Use up the sign-in limit (without loading the IdP's page each time), then ask once
    more in the browser."""
    for _ in range(SIGN_IN_LIMIT + 1):
        if page.request.get(base + "/saml/login", max_redirects=0).status == 429:
            break
    page.goto(base + "/saml/login")
    expect(page.get_by_role("heading", name="Too many sign-in attempts")).to_be_visible()
    walk.check(page, "too many sign-in attempts")
