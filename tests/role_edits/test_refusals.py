"""When and to whom every way of editing role fields (the row, the page, bulk, CSV) says
no: while a sync run is active, and to viewers. Nothing is written, and the refusal is
audited."""

from __future__ import annotations

import io

import pytest
from sqlalchemy import select

from dashboard.audit.models import AuditEntry
from dashboard.extensions import db
from dashboard.sync import service
from tests.support.people import person, person_id
from tests.support.role_edits import (
    ADMIN,
    BULK,
    HEADER,
    MAYA,
    MIXED,
    RUI,
    everyone_in_onelogin,
    onelogin_writes,
    post,
    previewed_csv,
    refused,
    role_edits,
    text_of,
    upload,
)

# --- a sync run in progress ------------------------------------------------------------------


def test_an_edit_while_a_sync_run_is_active_is_refused_naming_the_run(app, admin_client, world):
    """A queued run would send the values it read before the edit and call them in sync:
    the inline form, a confirmed bulk edit and a CSV import are refused, naming the run, and
    nothing is written."""
    with app.app_context():
        run, _plan = service.make_plan(ADMIN)
        service.apply(run.id, ADMIN, start=False)
        run_id = run.id
    said = (
        f"Run {run_id} is queued: change role fields when it has finished (it would send the "
        "values it read before your change and call them in sync)."
    )
    before = everyone_in_onelogin(world)
    stored = {e: person(app, e).roles for e in (RUI, MAYA)}
    rui, maya = person_id(app, RUI), person_id(app, MAYA)
    preview = upload(admin_client, f"{HEADER}\n{RUI},Operator,,\n").get_data(as_text=True)
    # The bulk form is refused at its first step already (not after confirming), and so is
    # a confirmation posted regardless.
    bulk_form = {"field": "workato_role_prod", "value": "Admin", "scope": "selected"}
    confirm = {**bulk_form, "confirmed": "yes", "person": [rui, maya]}

    answers = [
        post(admin_client, BULK, htmx=False, person=[rui, maya], **bulk_form),
        post(admin_client, f"/users/roles/{rui}", workato_role="Operator", **{"in": "row"}),
        post(admin_client, f"/users/roles/{rui}", htmx=False, workato_role="Operator"),
        post(admin_client, BULK, htmx=False, **confirm),
        post(admin_client, "/users/roles/import/apply", htmx=False, csv=previewed_csv(preview)),
    ]

    for answer in answers:
        body = text_of(answer.get_data(as_text=True))
        assert answer.status_code == 409, body
        assert said in body
        assert "Saved in OneLogin" not in body and "applied in OneLogin" not in body
    assert onelogin_writes(world) == []
    assert everyone_in_onelogin(world) == before
    assert {e: person(app, e).roles for e in (RUI, MAYA)} == stored
    assert role_edits(app) == [
        refused(None, 2, error=said),
        refused(RUI, 1, error=said),
        refused(RUI, 1, error=said),
        refused(None, 2, error=said),
        refused(RUI, 1, error=said),
    ]


# --- viewers -------------------------------------------------------------------------------


def viewer_posts(app) -> list[tuple[str, dict]]:
    rui, maya = person_id(app, RUI), person_id(app, MAYA)
    return [
        (f"/users/roles/{rui}", {"workato_role": "Operator", "in": "row"}),
        (f"/users/roles/{rui}", {"workato_role": "Operator", "push": "yes"}),
        ("/users/roles/bulk", {"field": "workato_role", "value": "Admin", "person": [rui, maya]}),
        ("/users/roles/bulk", {"field": "workato_role", "value": "Admin", "scope": "filter"}),
        ("/users/roles/import", {"file": (io.BytesIO(MIXED.encode()), "roles.csv", "text/csv")}),
        ("/users/roles/import/apply", {"csv": MIXED}),
    ]


@pytest.mark.parametrize("htmx", [True, False])
def test_a_viewer_may_change_nothing(app, viewer_client, world, htmx):
    before = everyone_in_onelogin(world)
    workato_before = world.workato_users()
    for url, data in viewer_posts(app):
        answer = post(viewer_client, url, htmx=htmx, **data)
        assert answer.status_code == 403, (url, data)
        assert "Viewers can see everything but change nothing" in answer.get_data(as_text=True)
    assert onelogin_writes(world) == []
    assert everyone_in_onelogin(world) == before
    assert world.workato_users() == workato_before
    assert person(app, RUI).roles.get("workato_role") == "Developer"
    assert role_edits(app) == []
    with app.app_context():
        refused = db.session.scalars(
            select(AuditEntry).where(AuditEntry.action == "auth.forbidden")
        ).all()
        assert len(refused) == len(viewer_posts(app))


def test_a_viewer_sees_the_roles_without_a_form(app, viewer_client, world):
    rui = person_id(app, RUI)
    page = viewer_client.get(f"/users/{rui}").get_data(as_text=True)
    assert "role-form" not in page
    assert "Developer" in page
    users = viewer_client.get("/users").get_data(as_text=True)
    assert 'id="bulk-form"' not in users
    assert "Edit the role fields" not in users
