"""Reading the Setup checklist as rendered: one item's part of the page."""

from __future__ import annotations


def item_html(page: str, item_id: str) -> str:
    """The HTML of the checklist item `item_id` (its <li>)."""
    return page.split(f'id="item-{item_id}"', 1)[1].split("</li>", 1)[0]
