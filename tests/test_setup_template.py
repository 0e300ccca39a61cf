"""The SCIM JSON template: what a pasted one must carry, and `flask setup set-template`."""

from __future__ import annotations

import json

import pytest

from dashboard.setup import template
from tests.support.rows import audit_rows

FIELDS = ["workato_role", "workato_role_test", "workato_role_prod"]


def test_the_default_template_passes_its_own_checks():
    parsed = template.parse(template.default_template(FIELDS))
    assert template.problems(parsed, FIELDS) == []
    assert parsed["schemas"][-1] == "urn:ietf:params:scim:schemas:workato:1.0:WorkatoRole"


def test_extra_environment_role_fields_are_part_of_the_block():
    fields = [*FIELDS, "workato_role_staging"]
    block = template.parse(template.default_template(fields))[template.WORKATO_ROLE]
    assert block["workato_role_staging"] == "{$user.custom_fields.workato_role_staging}"


def test_a_template_without_the_urn_or_block_says_what_to_add():
    parsed = template.parse(json.dumps({"schemas": [template.CORE_USER], "userName": "x"}))
    found = template.problems(parsed, FIELDS)
    assert any('to the "schemas" list' in p for p in found)
    assert any('after "emails"' in p for p in found)


def test_a_role_field_mapped_to_the_wrong_custom_field_is_named():
    doc = json.loads(template.default_template(FIELDS))
    doc[template.WORKATO_ROLE]["workato_role_prod"] = "{$user.custom_fields.workato_role_test}"
    found = template.problems(doc, FIELDS)
    assert found == [
        '"workato_role_prod" is mapped to "{$user.custom_fields.workato_role_test}"; '
        'it should be "{$user.custom_fields.workato_role_prod}".'
    ]


def test_malformed_json_gives_line_and_column():
    with pytest.raises(template.TemplateUnreadable, match=r"line 2, column 2"):
        template.parse('{"schemas": []\n}}')


def test_set_template_refuses_malformed_json_and_stores_nothing(app, tmp_path):
    path = tmp_path / "t.json"
    path.write_text("{not json")
    result = app.test_cli_runner().invoke(args=["setup", "set-template", str(path)])
    assert result.exit_code == 1
    assert "Not stored: The template is not valid JSON" in result.output
    with app.app_context():
        from dashboard.setup.service import current_template

        assert current_template() is None


def test_set_template_stores_and_lists_what_the_checklist_will_flag(app):
    body = json.dumps({"schemas": [template.CORE_USER]})
    result = app.test_cli_runner().invoke(args=["setup", "set-template", "-", "--json"], input=body)
    assert result.exit_code == 0
    assert len(json.loads(result.output)["problems"]) == 2
    assert audit_rows(app)[-1]["action"] == "setup.template_saved"
