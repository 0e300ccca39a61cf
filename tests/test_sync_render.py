"""Rendering the SCIM template for one OneLogin user, as OneLogin's connector does (which
values land where, what a missing value becomes, which templates are refused), and comparing
the result with what Workato holds."""

from __future__ import annotations

import json

import pytest

from dashboard.connections.scim_models import CORE_USER, WORKATO_ROLE
from dashboard.setup.template import default_template
from dashboard.sync.compare import differences, patch_operations
from dashboard.sync.render import TemplateError, check, render, without_missing

FIELDS = ["workato_role", "workato_role_test", "workato_role_prod"]
TEMPLATE = json.loads(default_template(FIELDS))
PARAMETERS = {
    "scimusername": {"user_attribute_mappings": "email"},
    "workato_role": {"user_attribute_mappings": "custom_attribute_workato_role"},
}
ADA = {
    "id": 1,
    "username": "ada",
    "email": "ada@example.com",
    "firstname": "Ada",
    "lastname": "Lovelace",
    "status": 1,
    "custom_attributes": {"workato_role": "Admin", "workato_role_test": "Operator"},
}


def test_the_default_template_carries_the_users_names_email_and_roles():
    """Every placeholder of the documented template is filled from the OneLogin record."""
    assert render(TEMPLATE, ADA, PARAMETERS) == {
        "schemas": [CORE_USER, WORKATO_ROLE],
        "userName": "ada@example.com",
        "name": {"givenName": "Ada", "familyName": "Lovelace"},
        "emails": [{"value": "ada@example.com", "type": "work", "primary": True}],
        WORKATO_ROLE: {
            "workato_role": "Admin",
            "workato_role_test": "Operator",
            "workato_role_prod": None,
        },
    }


def test_a_role_the_user_lacks_is_left_out_of_what_is_sent():
    """No workato_role_prod in OneLogin: the sent extension has only the roles that are set."""
    body = without_missing(render(TEMPLATE, ADA, PARAMETERS))
    assert body[WORKATO_ROLE] == {"workato_role": "Admin", "workato_role_test": "Operator"}


@pytest.mark.parametrize(
    ("mapping", "expected"),
    [
        ("email", "ada@example.com"),
        ("username", "ada"),
        ("custom_attribute_workato_role", "Admin"),
    ],
)
def test_an_app_parameter_takes_the_value_of_the_field_it_is_mapped_to(mapping, expected):
    """{$parameters.x} follows the parameter's user attribute mapping in OneLogin."""
    parameters = {"x": {"user_attribute_mappings": mapping}}
    assert render({"v": "{$parameters.x}"}, ADA, parameters) == {"v": expected}


@pytest.mark.parametrize(
    "placeholder",
    [
        "{$user.title}",
        "{$user.custom_fields.workato_role_prod}",
        "{$parameters.workato_role}",
    ],
)
@pytest.mark.parametrize(
    "custom_attributes", [None, {}, {"workato_role": "", "workato_role_prod": ""}]
)
def test_a_value_the_user_lacks_drops_the_attribute(placeholder, custom_attributes):
    """A whole-value placeholder with nothing behind it is None, and is then not sent."""
    user = ADA | {"title": None, "custom_attributes": custom_attributes}
    rendered = render({"keep": "yes", "role": placeholder}, user, PARAMETERS)
    assert rendered == {"keep": "yes", "role": None}
    assert without_missing(rendered) == {"keep": "yes"}


def test_a_missing_value_inside_longer_text_becomes_nothing():
    """Text around a placeholder is kept; the placeholder alone disappears."""
    template = {"displayName": "{$user.firstname} ({$user.title})", "id": "ol-{$user.id}"}
    assert render(template, ADA, PARAMETERS) == {"displayName": "Ada ()", "id": "ol-1"}


def test_an_email_entry_without_an_address_is_not_sent():
    """No email in OneLogin: no half-empty {"type": "work", "primary": true} entry."""
    body = without_missing(render(TEMPLATE, ADA | {"email": None}, PARAMETERS))
    assert "emails" not in body
    assert body["name"] == {"givenName": "Ada", "familyName": "Lovelace"}


def test_literal_values_pass_through_untouched():
    """Booleans, numbers and text without placeholders are the template's own."""
    template = {"active": True, "count": 3, "type": "work", "tags": ["a", False]}
    assert render(template, ADA, PARAMETERS) == template


def test_without_missing_keeps_false_zero_and_empty_text():
    """Only None (and what it leaves empty) goes; falsy values are real values."""
    value = {"a": None, "b": {"c": None}, "d": [None, {"e": None}], "f": False, "g": 0, "h": ""}
    assert without_missing(value) == {"f": False, "g": 0, "h": ""}


@pytest.mark.parametrize(
    ("template", "parameters", "message"),
    [
        (
            {"title": "{$user.nickname}"},
            PARAMETERS,
            r"\{\$user\.nickname\}, which the dashboard cannot fill in",
        ),
        (
            {"title": "Dr {$group.name}"},
            PARAMETERS,
            r"\{\$group\.name\}, which the dashboard cannot fill in",
        ),
        (
            {"userName": "{$parameters.scimusername}"},
            {},
            r'no parameter "scimusername": add it on the app\'s Parameters tab',
        ),
        (
            {"userName": "{$parameters.scimusername}"},
            {"scimusername": {"user_attribute_mappings": "_macro_"}},
            r"\"scimusername\" is mapped to '_macro_', which the dashboard cannot evaluate",
        ),
        (
            {"userName": "{$parameters.scimusername}"},
            {"scimusername": {"user_attribute_mappings": None}},
            r"\"scimusername\" is mapped to None",
        ),
    ],
    ids=["unknown-user-field", "unknown-scope", "parameter-not-on-app", "macro", "unmapped"],
)
def test_a_placeholder_the_dashboard_cannot_resolve_is_refused_with_the_fix(
    template, parameters, message
):
    """The admin reads which placeholder is wrong and what to do, from check and render."""
    with pytest.raises(TemplateError, match=message):
        check(template, parameters)
    with pytest.raises(TemplateError, match=message):
        render(template, ADA, parameters)


def test_the_default_template_passes_the_check():
    """The documented template with the documented parameters resolves for anyone."""
    check(TEMPLATE, PARAMETERS)


def test_the_check_does_not_need_a_user():
    """A template naming only known fields passes even though no user has them yet."""
    check({"title": "{$user.title}", "r": "{$parameters.workato_role}"}, PARAMETERS)


# --- comparing with what Workato holds ---------------------------------------------------


def test_usernames_and_emails_are_compared_without_regard_to_case():
    """Ada@Example.com in Workato is the ada@example.com OneLogin renders: no drift."""
    desired = {"userName": "ada@example.com", "emails": [{"value": "ada@example.com"}]}
    actual = {"userName": "Ada@Example.com", "emails": [{"value": "ADA@example.com"}]}
    assert differences(desired, actual) == {}


def test_role_values_are_compared_case_sensitively_under_the_extension_path():
    """Role names are case-sensitive ("admin" is not "Admin"); the extension path names it."""
    desired = {WORKATO_ROLE: {"workato_role": "Admin", "workato_role_test": None}}
    actual = {WORKATO_ROLE: {"workato_role": "admin"}}
    assert differences(desired, actual) == {f"{WORKATO_ROLE}:workato_role": ["admin", "Admin"]}


def test_only_attributes_the_template_sets_are_compared():
    """Workato's own attributes (id, meta, groups, title) are never reported as drift."""
    desired = {"schemas": ["x"], "userName": "ada", "name": {"givenName": "Ada"}}
    actual = {
        "id": "1",
        "meta": {},
        "groups": [{"value": "g"}],
        "title": "Dr",
        "userName": "ada",
        "name": {"givenName": "Ada", "familyName": "Lovelace"},
    }
    assert differences(desired, actual) == {}


@pytest.mark.parametrize(("have", "change"), [(None, False), ("", False), ([], False), ("x", True)])
def test_a_value_that_should_be_absent_is_a_change_only_when_workato_has_one(have, change):
    """None in the rendered template means "should not be set"."""
    expected = {"title": [have, None]} if change else {}
    assert differences({"title": None}, {"title": have}) == expected


def test_patch_operations_replace_new_values_and_remove_absent_ones():
    role = f"{WORKATO_ROLE}:workato_role"
    changes = {"name.givenName": ["Ada", "Augusta"], role: ["Admin", None], "emails": [[1], []]}
    assert patch_operations(changes) == [
        {"op": "replace", "path": "name.givenName", "value": "Augusta"},
        {"op": "remove", "path": role},
        {"op": "remove", "path": "emails"},
    ]
