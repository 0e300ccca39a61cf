"""How people read on the Users pages: state and OneLogin status labels, and the template
filters for role fields and SCIM values. Registered by users/routes."""

from __future__ import annotations

STATE_LABELS = {
    "in_sync": "In sync",
    "drift": "Drift",
    "not_provisioned": "Not provisioned",
    "suspended": "Suspended",
    "pending": "Pending",
    "failed": "Failed",
    "orphaned": "Orphaned",
}


# OneLogin user statuses (DESIGN.md §2).
ONELOGIN_STATUS = {
    0: "Unactivated",
    1: "Active",
    2: "Suspended",
    3: "Locked",
    4: "Password expired",
    5: "Awaiting password reset",
    7: "Password pending",
    8: "Security questions required",
}


def role_label(field: str) -> str:
    """A role field's short label in a table: its environment, or the field's own name."""
    return {"workato_role": "role", "workato_role_test": "test", "workato_role_prod": "prod"}.get(
        field, field
    )


def scim_path(path: str) -> str:
    """A SCIM attribute path as admins know it: an extension's attribute by its own name."""
    return path.rsplit(":", 1)[-1] if path.startswith("urn:") else path


def scim_value(value: object) -> str:
    """One side of a change, readable: not set, true/false, the addresses of a list."""
    if value is None or value == [] or value == "":
        return "(not set)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ", ".join(str(v.get("value", v)) if isinstance(v, dict) else str(v) for v in value)
    return str(value)


FILTERS = {"role_label": role_label, "scim_path": scim_path, "scim_value": scim_value}
