"""How audit details read on the page: plain words, not Python reprs."""

from __future__ import annotations

from typing import Any


def describe(value: Any) -> str:
    """A details value as text: changes as "old → new", lists and mappings spelled out."""
    if value is None:
        return "—"
    if isinstance(value, dict):
        return "; ".join(f"{key}: {_change(item)}" for key, item in value.items())
    if isinstance(value, list):
        return "; ".join(describe(item) for item in value) or "—"
    return str(value)


def _change(value: Any) -> str:
    if isinstance(value, list) and len(value) == 2:
        return f"{describe(value[0])} → {describe(value[1])}"
    return describe(value)
