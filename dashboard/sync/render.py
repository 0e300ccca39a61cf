"""Rendering the SCIM JSON template for one OneLogin user, as OneLogin's connector does.

Placeholders are OneLogin's: `{$user.<field>}`, `{$user.custom_fields.<shortname>}` and
`{$parameters.<shortname>}` (an app parameter, resolved through its user attribute mapping).
A value that is only a placeholder takes the user's value, or None when the user has none:
the attribute is then absent from what is sent, and the planner takes None to mean "this
attribute should not be set" (a role removed in OneLogin is removed in Workato too). A
placeholder inside longer text is replaced by the value, or by nothing.

No Flask, no HTTP: plain functions over OneLogin's records.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

PLACEHOLDER = re.compile(r"\{\$([A-Za-z_][A-Za-z0-9_.]*)\}")
# The user fields OneLogin's templates may name; a record may lack any of them.
USER_FIELDS = frozenset(
    {
        "id",
        "username",
        "email",
        "firstname",
        "lastname",
        "title",
        "department",
        "company",
        "phone",
        "samaccountname",
        "userprincipalname",
        "distinguished_name",
        "member_of",
        "comment",
        "manager_ad_id",
        "external_id",
        "directory_id",
    }
)
CUSTOM_ATTRIBUTE = "custom_attribute_"


class TemplateError(ValueError):
    """The template names something the dashboard cannot resolve; the message says what."""


def render(
    template: Mapping[str, Any],
    user: Mapping[str, Any],
    parameters: Mapping[str, Mapping[str, Any]],
) -> dict[str, Any]:
    """The template with `user`'s values in place (None where a value is missing)."""

    def value_of(name: str) -> str | None:
        return _resolve(name, user, parameters)

    return _walk(template, value_of)


def without_missing(value: Any) -> Any:
    """`value` with every None (and every object or list left empty by that) removed:
    the body that is sent."""
    if isinstance(value, dict):
        kept = {k: without_missing(v) for k, v in value.items() if v is not None}
        return {k: v for k, v in kept.items() if v not in ({}, [])}
    if isinstance(value, list):
        kept = [without_missing(v) for v in value if v is not None]
        return [v for v in kept if v not in ({}, [])]
    return value


def placeholders(template: Any) -> set[str]:
    """Every name the template refers to, e.g. "user.custom_fields.workato_role"."""
    if isinstance(template, dict):
        return set().union(*(placeholders(v) for v in template.values()), set())
    if isinstance(template, list):
        return set().union(*(placeholders(v) for v in template), set())
    if isinstance(template, str):
        return set(PLACEHOLDER.findall(template))
    return set()


def user_fields(
    template: Mapping[str, Any], parameters: Mapping[str, Mapping[str, Any]]
) -> tuple[set[str], set[str]]:
    """The user fields and the custom fields (short names) rendering reads: all a plan
    needs to keep of a OneLogin user for the template. What cannot be resolved is left out
    (`check` says so)."""
    fields: set[str] = set()
    custom: set[str] = set()
    for name in placeholders(template):
        scope, _, rest = name.partition(".")
        if scope == "parameters":
            mapping = (parameters.get(rest) or {}).get("user_attribute_mappings")
            rest = mapping if isinstance(mapping, str) else ""
            if rest.startswith(CUSTOM_ATTRIBUTE):
                custom.add(rest[len(CUSTOM_ATTRIBUTE) :])
        elif rest.startswith("custom_fields."):
            custom.add(rest.removeprefix("custom_fields."))
        if rest in USER_FIELDS:
            fields.add(rest)
    return fields, custom


def check(template: Mapping[str, Any], parameters: Mapping[str, Mapping[str, Any]]) -> None:
    """Raise TemplateError when a placeholder can never be resolved (checked once per plan,
    so one bad placeholder is one clear message, not one per user)."""
    for name in sorted(placeholders(template)):
        _resolve(name, {}, parameters)


def _walk(node: Any, value_of) -> Any:
    if isinstance(node, dict):
        rendered = {k: _walk(v, value_of) for k, v in node.items()}
        # An emails entry without its address is no email at all.
        if (
            "value" in node
            and rendered.get("value") is None
            and PLACEHOLDER.search(str(node["value"]))
        ):
            return None
        return rendered
    if isinstance(node, list):
        # An entry that rendered to nothing (an email without its address) is left out.
        return [r for r in (_walk(v, value_of) for v in node) if r is not None]
    if isinstance(node, str):
        whole = PLACEHOLDER.fullmatch(node)
        if whole:
            return value_of(whole.group(1))
        return PLACEHOLDER.sub(lambda m: value_of(m.group(1)) or "", node)
    return node


def _resolve(name: str, user: Mapping[str, Any], parameters) -> str | None:
    scope, _, rest = name.partition(".")
    if scope == "user" and rest.startswith("custom_fields."):
        shortname = rest.removeprefix("custom_fields.")
        return _text((user.get("custom_attributes") or {}).get(shortname))
    if scope == "user" and rest in USER_FIELDS:
        return _text(user.get(rest))
    if scope == "parameters" and rest:
        parameter = parameters.get(rest)
        if parameter is None:
            raise TemplateError(
                f"The template uses {{${name}}}, but the Workato app in OneLogin has no "
                f'parameter "{rest}": add it on the app\'s Parameters tab or fix the template.'
            )
        return _mapped(rest, parameter, user)
    raise TemplateError(
        f"The template uses {{${name}}}, which the dashboard cannot fill in: use "
        "{$user.<field>}, {$user.custom_fields.<shortname>} or {$parameters.<shortname>}."
    )


def _mapped(shortname: str, parameter: Mapping[str, Any], user: Mapping[str, Any]) -> str | None:
    mapping = parameter.get("user_attribute_mappings")
    if isinstance(mapping, str) and mapping.startswith(CUSTOM_ATTRIBUTE):
        return _text((user.get("custom_attributes") or {}).get(mapping[len(CUSTOM_ATTRIBUTE) :]))
    if isinstance(mapping, str) and mapping in USER_FIELDS:
        return _text(user.get(mapping))
    raise TemplateError(
        f'The app parameter "{shortname}" is mapped to {mapping!r}, which the dashboard cannot '
        "evaluate (macros and directory-only fields): map it to a user field or a custom field."
    )


def _text(value: Any) -> str | None:
    if value is None or value == "":
        return None
    return str(value)
