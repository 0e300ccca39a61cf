"""The package's shape holds (issue 12): features import one way, with no cycle through any
import, also one made inside a function; shared root modules import no feature; and no
module grows past what a newcomer can hold in their head."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "dashboard"
FACTORY = PACKAGE / "__init__.py"  # wires every feature into the app: above them all
MAX_LINES = 500
FEATURES = sorted(
    p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists() and p.name != "migrations"
)


def _unit(module: str) -> str | None:
    """The feature (package) or shared root module an import names; None for the factory."""
    parts = module.split(".")
    if parts[0] != "dashboard" or len(parts) == 1:
        return None
    return parts[1]


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("dashboard"):
            if node.module == "dashboard":  # `from dashboard import audit`
                found.update(n.name for n in node.names)
            elif (unit := _unit(node.module)) is not None:
                found.add(unit)
        elif isinstance(node, ast.Import):
            found.update(u for n in node.names if (u := _unit(n.name)) is not None)
    return found


def graph() -> dict[str, set[str]]:
    """Unit -> the other units it imports (features by package, root modules by name)."""
    edges: dict[str, set[str]] = defaultdict(set)
    for path in PACKAGE.rglob("*.py"):
        relative = path.relative_to(PACKAGE)
        if path == FACTORY or relative.parts[0] == "migrations":
            continue
        unit = relative.parts[0] if len(relative.parts) > 1 else relative.stem
        edges[unit] |= _imports(path) - {unit}
    return edges


def _cycle(edges: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, str] = {}
    trail: list[str] = []

    def visit(unit: str) -> list[str] | None:
        state[unit] = "open"
        trail.append(unit)
        for after in sorted(edges.get(unit, ())):
            if state.get(after) == "open":
                return [*trail[trail.index(after) :], after]
            if after not in state and (found := visit(after)):
                return found
        state[unit] = "done"
        trail.pop()
        return None

    for unit in sorted(edges):
        if unit not in state and (found := visit(unit)):
            return found
    return None


def test_features_import_one_way_with_no_cycle():
    assert _cycle(graph()) is None, " -> ".join(_cycle(graph()) or [])


def test_a_cycle_is_found_when_there_is_one():
    """The check itself can fail."""
    assert _cycle({"sync": {"users"}, "users": {"audit", "sync"}}) == ["sync", "users", "sync"]


def test_the_audit_trail_and_shared_root_modules_import_no_feature():
    edges = graph()
    for leaf in ["audit", *(u for u in edges if u not in FEATURES)]:
        assert not edges[leaf] & set(FEATURES), f"{leaf} imports {edges[leaf] & set(FEATURES)}"


def test_no_module_is_over_500_lines():
    long = {
        str(p.relative_to(PACKAGE)): n
        for p in PACKAGE.rglob("*.py")
        if (n := len(p.read_text().splitlines())) > MAX_LINES
    }
    assert long == {}
