"""Editing one role field for many users at once from the Users page: the ticked users or
every user the filters match, confirmed before anything is written, refused when the value
or the choice is wrong, and audited."""

from __future__ import annotations

import html
import re

import pytest

from tests.support.people import person, person_id
from tests.support.role_edits import (
    BULK,
    CONFIGURED,
    JONAS,
    KWAME,
    LIN,
    MAYA,
    RUI,
    VALID,
    everyone_in_onelogin,
    onelogin_roles,
    onelogin_writes,
    plan,
    post,
    refused,
    role_edits,
    success,
    text_of,
)

# --- many users at once --------------------------------------------------------------------

WEI = "wei.chen@example.com"  # added by a test: in Workato only, unknown to OneLogin


def confirmation(body: str) -> dict[str, list[str]]:
    """What the bulk confirmation's form posts (its hidden fields; the post adds the CSRF
    token), as a browser sends it."""
    form = re.search(rf'<form method="post" action="{BULK}"[^>]*>(.*?)</form>', body, re.S)
    assert form, body
    sent: dict[str, list[str]] = {}
    hidden = re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', form.group(1))
    for name, value in hidden:
        if name != "csrf_token":
            sent.setdefault(name, []).append(html.unescape(value))
    return sent


def bulk(app, client, world, **form):
    """A bulk edit as an admin makes it: the Users page's form, whose answer writes nothing
    and asks to confirm, then the confirmation's form. Returns the confirmation page's text,
    what its form posts, and the answer to that."""
    asked = post(client, BULK, htmx=False, **form)
    page = asked.get_data(as_text=True)
    assert asked.status_code == 200, page
    assert onelogin_writes(world) == []  # nothing written before the confirmation
    assert role_edits(app) == []
    confirm = confirmation(page)
    return text_of(page), confirm, post(client, BULK, htmx=False, **confirm)


def test_a_bulk_edit_not_confirmed_writes_nothing_and_lists_who_it_would_change(
    app, admin_client, world
):
    before = everyone_in_onelogin(world)
    stored = {e: person(app, e).roles for e in (JONAS, MAYA)}
    jonas, maya = person_id(app, JONAS), person_id(app, MAYA)
    form = {"field": "workato_role", "value": "Operator", "scope": "selected"}

    answer = post(admin_client, BULK, htmx=False, person=[jonas, maya], **form)

    body = text_of(answer.get_data(as_text=True))
    assert answer.status_code == 200, body
    assert "Set workato_role to Operator for 2 users?" in body
    assert "Nothing is written until you confirm" in body
    assert f"Jonas Weber {JONAS} : currently admin" in body  # each person, with their value
    assert f"Maya Chen {MAYA} : currently Analyst" in body
    assert RUI not in body and KWAME not in body
    assert confirmation(answer.get_data(as_text=True)) == {
        "field": ["workato_role"],
        "value": ["Operator"],
        "scope": ["selected"],
        "confirmed": ["yes"],
        "person": [str(jonas), str(maya)],
    }
    # Only "yes" confirms.
    again = post(admin_client, BULK, htmx=False, person=[jonas, maya], confirmed="no", **form)
    assert again.status_code == 200
    assert "Set workato_role to Operator for 2 users?" in text_of(again.get_data(as_text=True))

    assert onelogin_writes(world) == []
    assert everyone_in_onelogin(world) == before
    assert {e: person(app, e).roles for e in (JONAS, MAYA)} == stored
    assert role_edits(app) == []


@pytest.mark.parametrize(("value", "stored"), [("Analyst", "Analyst"), ("", None)])
def test_bulk_sets_the_field_on_the_selected_users_only(app, admin_client, world, value, stored):
    """One value for the ticked users, once confirmed; an empty value clears the field."""
    others = {e: r for e, r in everyone_in_onelogin(world).items() if e not in (JONAS, MAYA)}
    jonas, maya = person_id(app, JONAS), person_id(app, MAYA)
    asked, confirm, answer = bulk(
        app,
        admin_client,
        world,
        field="workato_role_test",
        value=value,
        scope="selected",
        person=[jonas, maya],
    )
    asked_for = f"Set workato_role_test to {stored}" if stored else "Clear workato_role_test"
    assert f"{asked_for} for 2 users?" in asked
    assert confirm == {
        "field": ["workato_role_test"],
        "value": [value],
        "scope": ["selected"],
        "confirmed": ["yes"],
        "person": [str(jonas), str(maya)],
    }

    body = text_of(answer.get_data(as_text=True))
    assert answer.status_code == 200, body
    assert f"workato_role_test {'set to ' + stored if stored else 'cleared'}" in body
    assert "changed in OneLogin" in body and "failed" not in body.lower()

    assert onelogin_roles(world, JONAS)["workato_role_test"] == stored
    assert onelogin_roles(world, MAYA)["workato_role_test"] == stored
    assert onelogin_roles(world, JONAS)["workato_role"] == "admin"  # other fields as they were
    assert {e: r for e, r in everyone_in_onelogin(world).items() if e in others} == others
    expected = [
        success(JONAS, {"workato_role_test": ["Analyst", stored]}),
        success(MAYA, {"workato_role_test": ["Operator", stored]}),
    ]
    if stored == "Analyst":  # Jonas had it already: nothing written, nothing audited
        expected = expected[1:]
        assert "1 changed in OneLogin, 1 already so" in body
        assert f"Already so in OneLogin {JONAS}" in body
    assert role_edits(app) == expected


def test_bulk_for_the_filter_reaches_every_onelogin_user_it_matches_and_nobody_else(
    app, admin_client, world
):
    """The filter "chen" matches Lin (not yet in Workato), Maya, and Wei (in Workato only):
    Lin and Maya change, and only they; Wei, unknown to OneLogin, has no role fields there
    and is not offered."""
    world.add_workato_user(WEI)
    plan(app)
    listed = admin_client.get("/users?q=chen").get_data(as_text=True)
    assert re.findall(r'<div class="sub user-name">([^<· ]+)', listed) == [LIN, MAYA, WEI]
    others = {e: r for e, r in everyone_in_onelogin(world).items() if e not in (LIN, MAYA)}
    wei_before = world.workato_user(WEI)

    asked, confirm, answer = bulk(
        app,
        admin_client,
        world,
        field="workato_role_prod",
        value="Admin",
        scope="filter",
        q="chen",
        state="",
        role="",
    )
    assert "Set workato_role_prod to Admin for 2 users?" in asked
    assert WEI not in asked
    assert (confirm["scope"], confirm["person"]) == (
        ["selected"],
        [str(person_id(app, LIN)), str(person_id(app, MAYA))],
    )

    body = text_of(answer.get_data(as_text=True))
    assert answer.status_code == 200, body
    assert "workato_role_prod set to Admin" in body
    assert "2 changed in OneLogin, 0 already so" in body
    assert f"{LIN} : (not set) → Admin" in body and f"{MAYA} : (not set) → Admin" in body
    assert WEI not in body

    assert onelogin_roles(world, LIN)["workato_role_prod"] == "Admin"
    assert onelogin_roles(world, MAYA)["workato_role_prod"] == "Admin"
    assert {e: r for e, r in everyone_in_onelogin(world).items() if e in others} == others
    assert world.workato_user(WEI) == wei_before
    assert role_edits(app) == [
        success(LIN, {"workato_role_prod": [None, "Admin"]}),
        success(MAYA, {"workato_role_prod": [None, "Admin"]}),
    ]


def test_bulk_for_a_role_filter_reaches_only_that_role(app, admin_client, world):
    asked, confirm, answer = bulk(
        app,
        admin_client,
        world,
        field="workato_role_prod",
        value="Operator",
        scope="filter",
        role="Analyst",
    )
    assert "Set workato_role_prod to Operator for 1 user?" in asked
    assert confirm["person"] == [str(person_id(app, MAYA))]
    assert answer.status_code == 200
    changed = {e for e, r in everyone_in_onelogin(world).items() if r["workato_role_prod"]}
    assert changed == {MAYA}
    assert [e["user"] for e in role_edits(app)] == [MAYA]


@pytest.mark.parametrize(
    ("value", "said"),
    [
        (
            "admin",
            "“admin” is not a Workato role: role names are case-sensitive. Did you mean Admin?",
        ),
        ("Developer", f"“Developer” is not in {CONFIGURED}. {VALID}"),
    ],
)
@pytest.mark.parametrize(("scope", "users"), [("selected", 2), ("filter", 5)])
def test_bulk_with_an_invalid_value_writes_nothing(
    app, admin_client, world, value, said, scope, users
):
    """Refused at the first step, before any confirmation; and a confirmation posted with
    such a value anyway is refused too. Each refusal is audited, with how many users it was
    for (the filter matches all five OneLogin users)."""
    before = everyone_in_onelogin(world)
    form = {
        "field": "workato_role",
        "value": value,
        "scope": scope,
        "person": [person_id(app, KWAME), person_id(app, MAYA)],
    }
    for confirmed in ("", "yes"):
        answer = post(admin_client, BULK, htmx=False, confirmed=confirmed, **form)
        body = text_of(answer.get_data(as_text=True))
        assert answer.status_code == 422, body
        assert said in body
        assert "for 2 users?" not in body and "users saved in OneLogin" not in body
    assert onelogin_writes(world) == []
    assert everyone_in_onelogin(world) == before
    entry = refused(None, users, problems={"workato_role": said})
    assert role_edits(app) == [entry, entry]


def test_bulk_without_a_field_or_users_or_for_too_many_is_refused(app, admin_client, world):
    """Back to the Users page, filtered as it was, saying why; nothing written."""
    many = list(range(1, 1002))  # one more than a bulk edit may change
    refusals = [
        ({"field": "", "value": "Admin", "person": [1]}, "Choose the role field to set."),
        (
            {"field": "workato_role", "value": "", "q": "chen"},
            "Tick at least one user, or choose every user the filters match.",
        ),
        (
            {"field": "workato_role", "value": "Admin", "person": many},
            "More than 1000 users: narrow the filter, or use `flask roles import`.",
        ),
        (
            {"field": "workato_role", "value": "Admin", "confirmed": "yes", "person": many},
            "More than 1000 users: narrow the filter, or use `flask roles import`.",
        ),
    ]
    for form, said in refusals:
        answer = post(admin_client, BULK, htmx=False, **form)
        assert answer.status_code == 303, form
        assert answer.location == ("/users?q=chen" if "q" in form else "/users")
        assert said in text_of(admin_client.get(answer.location).get_data(as_text=True))
    assert onelogin_writes(world) == []
    assert role_edits(app) == []
