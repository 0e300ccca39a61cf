"""What every `flask` command of ours shares: exit codes, --json output, the actor.

Exit codes (README, "Operations"): 0 done and fine; 1 something failed; 2 wrong usage
(click's own); 3 refused pending a decision.
"""

from __future__ import annotations

import getpass
import json
import sys
from typing import Any

import click

OK, FAILED, USAGE, REFUSED = 0, 1, 2, 3

json_option = click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")


def actor() -> str:
    return f"cli:{getpass.getuser()}"


def finish(code: int, document: Any, human: str, as_json: bool) -> None:
    """Print the JSON document or the human summary, then exit with `code`."""
    if as_json:
        click.echo(json.dumps(document, indent=2, sort_keys=True, default=str))
    else:
        click.echo(human, err=code != OK)
    sys.exit(code)


def read_secret(handle) -> str:
    """A secret from a file or standard input ('-'): never from the command line, where
    other users see it in the process list and shells keep it in history."""
    secret = handle.read().strip()
    if not secret:
        raise click.BadParameter("the file is empty", param_hint=getattr(handle, "name", None))
    return secret
