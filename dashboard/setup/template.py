"""The SCIM JSON template OneLogin sends to Workato: the default we document, and the
checks that a pasted one parses and carries the WorkatoRole extension for each role field."""

from __future__ import annotations

import json

from dashboard.connections.scim_models import CORE_USER, WORKATO_ROLE


def placeholder(field: str) -> str:
    return "{$user.custom_fields." + field + "}"


def extension_block(role_fields: list[str]) -> dict[str, str]:
    return {field: placeholder(field) for field in role_fields}


def default_template(role_fields: list[str]) -> str:
    """OneLogin's core user 2.0 template with the WorkatoRole extension, as the vendor
    walkthrough describes it."""
    template = {
        "schemas": [CORE_USER, WORKATO_ROLE],
        "userName": "{$parameters.scimusername}",
        "name": {"givenName": "{$user.firstname}", "familyName": "{$user.lastname}"},
        "emails": [{"value": "{$user.email}", "type": "work", "primary": True}],
        WORKATO_ROLE: extension_block(role_fields),
    }
    return json.dumps(template, indent=2)


class TemplateUnreadable(ValueError):
    pass


def parse(body: str) -> dict:
    try:
        template = json.loads(body)
    except json.JSONDecodeError as exc:
        raise TemplateUnreadable(
            f"The template is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}."
        ) from None
    if not isinstance(template, dict):
        raise TemplateUnreadable("The template must be a JSON object ({ ... }).")
    return template


def problems(template: dict, role_fields: list[str]) -> list[str]:
    """What is missing or wrong, each with the fix; empty when the template is right."""
    found = []
    schemas = template.get("schemas")
    if not isinstance(schemas, list) or WORKATO_ROLE not in schemas:
        found.append(f'Add "{WORKATO_ROLE}" to the "schemas" list.')
    block = template.get(WORKATO_ROLE)
    if not isinstance(block, dict):
        found.append(
            f'Add a "{WORKATO_ROLE}" object after "emails" mapping each role field '
            "(the block to copy is below)."
        )
        return found
    for field in role_fields:
        value = block.get(field)
        if value is None:
            found.append(f'Map "{field}" to "{placeholder(field)}" in the {WORKATO_ROLE} object.')
        elif value != placeholder(field):
            found.append(
                f'"{field}" is mapped to {json.dumps(value)}; it should be "{placeholder(field)}".'
            )
    return found
