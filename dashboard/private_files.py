"""Files only the dashboard's user may read: generated keys and credentials."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path


def read_or_create(path: Path, make: Callable[[], str]) -> str:
    """The file's text; made once with `make()`, mode 0600, never overwritten.

    Written to a temporary file first and linked into place, so that a second process
    starting at the same moment reads either nothing (and links its own, which fails) or
    the whole file, never a half-written one.
    """
    if not path.exists():
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        try:
            with os.fdopen(fd, "w") as handle:  # mkstemp makes it 0600
                handle.write(make())
            os.link(temporary, path)
        except FileExistsError:
            pass  # another process won; its file is complete
        finally:
            os.unlink(temporary)
    return path.read_text().strip()
