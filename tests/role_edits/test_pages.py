"""The pages around role edits render, and say what a role field's value means for
Workato."""

from __future__ import annotations

import html

from dashboard.setup import service as setup
from dashboard.setup.template import default_template
from tests.support.people import person_id
from tests.support.role_edits import (
    ADMIN,
    JONAS,
    RUI,
    onelogin_roles,
    post,
    role_edits,
    text_of,
)

# --- the pages -----------------------------------------------------------------------------


def test_pages_render(app, admin_client, world):
    rui = person_id(app, RUI)
    for url in [
        "/users",
        f"/users/{rui}",
        f"/users/roles/{rui}/edit?in=row",
        f"/users/roles/{rui}?in=row",
        "/users/roles/import",
        "/users/grant",
        "/users/grant?q=ru",
        f"/users/{rui}/live",
        "/users/roles/export.csv",
    ]:
        answer = admin_client.get(url)
        assert answer.status_code == 200, (url, answer.get_data(as_text=True)[:3000])


def test_a_field_the_template_does_not_send_is_said_to_never_reach_workato(
    app, admin_client, world
):
    """Saving workato_role_prod while the SCIM template leaves it out: OneLogin holds it,
    and both the form and the answer say Workato never gets it (not "at the next sync")."""
    with app.app_context():
        setup.save_template(default_template(["workato_role", "workato_role_test"]), ADMIN)
    jonas = person_id(app, JONAS)
    form = admin_client.get(f"/users/{jonas}").get_data(as_text=True)
    assert "Not in the SCIM template: Workato never gets it (see Setup)." in form

    answer = post(admin_client, f"/users/roles/{jonas}", workato_role_prod="Operator")
    body = text_of(answer.get_data(as_text=True))
    assert answer.status_code == 200, body
    assert onelogin_roles(world, JONAS)["workato_role_prod"] == "Operator"
    assert "workato_role_prod is not in the SCIM template, so Workato never gets it" in body
    [entry] = [e for e in role_edits(app) if e["outcome"] == "success"]
    assert "not workato_role_prod: not in the SCIM template" in entry["details"]["workato"]


def test_a_row_warns_of_a_role_value_workato_does_not_know(admin_client, world):
    body = admin_client.get("/users").get_data(as_text=True)
    assert "workato_role “admin” is not a Workato role (role names are case-sensitive)." in (
        html.unescape(body)
    )
    assert "workato_role “Developer” is not a Workato role." in html.unescape(body)
