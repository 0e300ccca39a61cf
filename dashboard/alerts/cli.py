"""`flask alerts ...`."""

from __future__ import annotations

import click


@click.group("alerts")
def group() -> None:
    """Alerts by webhook and e-mail."""
