"""Which attributes of a Workato user differ from what the template renders, and the SCIM
requests that change them (PATCH operations, or the whole resource for a PUT).

Paths are SCIM attribute paths (RFC 7644 §3.10): `userName`, `name.givenName`, `emails`,
`urn:ietf:params:scim:schemas:workato:1.0:WorkatoRole:workato_role`. Only attributes the
template sets are compared: whatever else Workato keeps is Workato's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# Compared without regard to letter case (RFC 7643: caseExact false). Role names are not
# among them: Workato's role names are case-sensitive.
CASE_INSENSITIVE = frozenset({"username", "emails"})
NOT_COMPARED = frozenset({"schemas", "id", "meta", "active", "groups"})

PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
Changes = dict[str, list[Any]]  # path -> [what Workato has, what OneLogin says]


def differences(desired: Mapping[str, Any], actual: Mapping[str, Any]) -> Changes:
    """Every leaf path where `actual` (Workato's JSON) differs from `desired` (the rendered
    template, None meaning "should not be set")."""
    changes: Changes = {}
    for key, want in desired.items():
        if key.lower() in NOT_COMPARED:
            continue
        have = _get(actual, key)
        if isinstance(want, dict):
            have = have if isinstance(have, dict) else {}
            separator = ":" if key.lower().startswith("urn:") else "."
            for leaf, (old, new) in differences(want, have).items():
                changes[f"{key}{separator}{leaf}"] = [old, new]
        elif not _same(key, have, want):
            changes[key] = [have, want]
    return changes


def patch_operations(changes: Changes) -> list[dict[str, Any]]:
    """RFC 7644 §3.5.2 operations that bring Workato's user to the desired values."""
    operations = []
    for path, (_old, new) in changes.items():
        if new is None or new == []:
            operations.append({"op": "remove", "path": path})
        else:
            operations.append({"op": "replace", "path": path, "value": new})
    return operations


def patch_body(operations: list[dict[str, Any]]) -> dict[str, Any]:
    return {"schemas": [PATCH_OP], "Operations": operations}


def _get(document: Mapping[str, Any], key: str) -> Any:
    """A value by attribute name, ignoring case (RFC 7643 §2.1)."""
    if key in document:
        return document[key]
    folded = key.lower()
    return next((v for k, v in document.items() if k.lower() == folded), None)


def _same(key: str, have: Any, want: Any) -> bool:
    if want is None or want == []:
        return have is None or have == [] or have == ""
    if key.lower() == "emails":
        return _addresses(have) == _addresses(want)
    if isinstance(want, str) and key.lower() in CASE_INSENSITIVE:
        return isinstance(have, str) and have.casefold() == want.casefold()
    return have == want


def _addresses(emails: Any) -> set[str]:
    if not isinstance(emails, list):
        return set()
    return {str(e.get("value", "")).casefold() for e in emails if isinstance(e, dict)}
