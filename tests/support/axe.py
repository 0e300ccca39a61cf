"""axe-core in a Playwright page: run its WCAG 2.1 A and AA rules and say, readably, what
failed and where.

axe-core is the npm package package.json pins (`make test` runs `npm ci`); nothing is
downloaded at run time. The script is served to the page from its own origin by a Playwright
route, so the page keeps its Content-Security-Policy (`script-src 'self'`) and axe judges the
page exactly as people see it (an inline style the CSP refuses stays refused).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from playwright.sync_api import BrowserContext, Page

ROOT = Path(__file__).resolve().parent.parent.parent
AXE_FILE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
# Where pages fetch it from: a path the dashboard does not serve, answered by the route.
AXE_PATH = "/__tests__/axe-core/axe.min.js"
WCAG_21_AA = ("wcag2a", "wcag2aa", "wcag21a", "wcag21aa")
TARGETS_SHOWN = 3  # the first nodes named per rule: enough to find the markup

RUN_AXE = """tags => axe.run(document, {runOnly: {type: 'tag', values: tags}}).then(results =>
  results.violations.map(v => ({
    rule: v.id,
    impact: v.impact || 'unknown',
    help: v.help,
    count: v.nodes.length,
    targets: v.nodes.map(n => n.target.join(' ')),
  })))"""


@dataclass(frozen=True)
class Violation:
    """One axe rule a page breaks: its id, how bad axe says it is, and where."""

    rule: str
    impact: str
    help: str
    count: int
    targets: tuple[str, ...]
    width: int  # of the viewport, in CSS pixels

    def line(self) -> str:
        shown = ", ".join(self.targets[:TARGETS_SHOWN])
        more = f" (and {self.count - TARGETS_SHOWN} more)" if self.count > TARGETS_SHOWN else ""
        return f"{self.rule} [{self.impact}] at {self.width}px: {self.help}: {shown}{more}"


def serve_axe(context: BrowserContext) -> None:
    """Answer AXE_PATH on any origin with the pinned axe.min.js."""
    if not AXE_FILE.is_file():
        raise AssertionError(
            f"{AXE_FILE.relative_to(ROOT)} is missing: run `npm ci` (`make test` does it)"
        )
    context.route(
        "**" + AXE_PATH,
        lambda route: route.fulfill(path=AXE_FILE, content_type="text/javascript"),
    )


def violations(page: Page) -> list[Violation]:
    """The WCAG 2.1 A and AA violations axe finds in the page as it is now."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.add_script_tag(url=AXE_PATH)
    found = page.evaluate(RUN_AXE, list(WCAG_21_AA))
    width = page.viewport_size["width"] if page.viewport_size else 0
    return [Violation(**{**v, "targets": tuple(v["targets"]), "width": width}) for v in found]


def report(where: str, found: list[Violation]) -> str:
    """`where` and each violation on a line of its own, for an assertion message."""
    return "\n".join([f"{where}: {len(found)} axe violation(s)"] + [f"  {v.line()}" for v in found])
