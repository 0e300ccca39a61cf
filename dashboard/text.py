"""Small text helpers shared by features that must not import each other: a CSV cell made
safe for spreadsheets (role and audit exports), and the known name a value was most likely
meant to be (role checks, the setup checklist)."""

from __future__ import annotations

import difflib

# A cell starting with one of these is run as a formula by Excel, LibreOffice and Sheets: it is
# written with a leading quote (OWASP's advice for CSV injection). No Workato role name starts
# with one of these.
FORMULA = ("=", "+", "@", "\t", "\r")


def _risky(cell: str) -> bool:
    # A lone "-" is this format's "clear"; "-" followed by more is a formula to a spreadsheet.
    return cell.startswith(FORMULA) or (cell.startswith("-") and len(cell) > 1)


def spreadsheet_safe(cell: str) -> str:
    """A cell a spreadsheet would run as a formula, made text with a leading apostrophe."""
    return f"'{cell}" if _risky(cell) else cell


def spreadsheet_unsafe(cell: str) -> str:
    """A cell as it was before spreadsheet_safe quoted it (so an exported file imports back)."""
    return cell[1:] if cell.startswith("'") and _risky(cell[1:]) else cell


def did_you_mean(value: str, names: tuple[str, ...] | list[str]) -> str | None:
    """The known name `value` was most likely meant to be: the same letters in another case,
    else a close spelling; None when nothing is close."""
    for name in names:
        if name.casefold() == value.casefold():
            return name
    close = difflib.get_close_matches(value, list(names), n=1)
    return close[0] if close else None
