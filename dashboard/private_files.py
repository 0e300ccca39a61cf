"""Files only the dashboard's user may read: generated keys and credentials, the instance
folder that holds them and the SQLite database.

A folder or file made here is private from the start (0700 / 0600), and one that already
exists is made private too: an instance folder created by hand, or by an older version
with the umask's 0755, would otherwise let every local user read the database and keys.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import make_url

FOLDER_MODE = 0o700
FILE_MODE = 0o600


class NotPrivate(Exception):
    """A folder or file could not be made private (it belongs to someone else)."""


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


def private_folder(path: Path) -> None:
    """Make `path` (and any missing parent) a folder only its owner may open: 0700."""
    path.mkdir(mode=FOLDER_MODE, parents=True, exist_ok=True)
    _restrict(path, FOLDER_MODE)


def private_file(path: Path) -> None:
    """Make `path` a file only its owner may read or write, 0600, creating it empty if it
    is missing (so that whoever fills it, SQLite for one, never makes it readable to
    others first). Its folder must exist."""
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE))
    _restrict(path, FILE_MODE)


def sqlite_path(url: str) -> Path | None:
    """The SQLite database file a SQLAlchemy URL names; None for another database, one in
    memory, or a URI filename (SQLite's to interpret)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    if parsed.database.startswith("file:"):
        return None
    return Path(parsed.database)


def _restrict(path: Path, mode: int) -> None:
    if stat.S_IMODE(path.stat().st_mode) == mode:
        return
    try:
        os.chmod(path, mode)
    except PermissionError:
        raise NotPrivate(
            f"{path} is not private (mode {stat.S_IMODE(path.stat().st_mode):o}) and cannot be "
            f"made so (mode {mode:o}): it belongs to another user. Give it to the user the "
            "dashboard runs as, or make it private yourself."
        ) from None
