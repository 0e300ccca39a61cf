"""A full plan over thousands of people, as make_plan records it slice by slice: the same
preview and the same people table as the planner's decisions for everyone at once, and
memory that does not grow with the decisions (issue 14)."""

from __future__ import annotations

import gc
import tracemalloc

import pytest
import requests
from sqlalchemy import select

from dashboard.extensions import db
from dashboard.person import Person
from dashboard.sandbox.onelogin import User
from dashboard.sync import people, planner, readiness, service
from dashboard.sync.models import Item
from tests.support.sync_world import ACTOR, World

BULK = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"
ROLES = ("Operator", "Analyst", "Admin")


@pytest.fixture
def app(make_app):
    return make_app(DASHBOARD_SYNC_EXECUTOR="worker", DASHBOARD_SYNC_PAGE_SIZE=500)


def seed(world: World, n: int, first_id: int = 70000000, name: str = "person") -> list[User]:
    """n people granted the app, built directly (add_user is quadratic in the tenant)."""
    role = next(r for r in world.tenant.roles.values() if r.name == "Workato Users")
    added = []
    for i in range(n):
        username = f"{name}{i:05d}"
        user = User(first_id + i, username, f"{username}@example.com", name, f"Number{i:05d}")
        user.custom_attributes = {"workato_role": ROLES[i % 3], "workato_role_test": "Analyst"}
        world.tenant.users[user.id] = user
        added.append(user)
    role.user_ids.extend(u.id for u in added)
    return added


def provision(app, world: World) -> None:
    """Put the latest preview's creates straight into Workato (SCIM /Bulk), then plan once
    more so that the people table knows who holds the app."""
    with app.app_context():
        run, _ = service.make_plan(ACTOR)
        bodies = db.session.scalars(select(Item.request).where(Item.run_id == run.id)).all()
    for start in range(0, len(bodies), 1000):
        operations = [
            {"method": "POST", "path": "/Users", "bulkId": str(i), "data": body["body"]}
            for i, body in enumerate(bodies[start : start + 1000])
        ]
        answer = requests.post(
            f"{world.scim_url}/Bulk",
            json={"schemas": [BULK], "Operations": operations},
            headers=world.headers(),
            timeout=120,
        )
        answer.raise_for_status()
    with app.app_context():
        service.make_plan(ACTOR)


def everyone_at_once(app):
    """The planner's decisions for everyone, from both sides read whole (the reference), and
    who held the app before."""
    with app.app_context():
        onelogin, scim, app_id = readiness.clients()
        template = readiness.scim_json_template()
        had = people.had_app()
        with onelogin, scim:
            parameters = dict(onelogin.app(app_id).get("parameters") or {})
            result = planner.plan(
                template,
                [dict(u) for u in onelogin.users()],
                {u["id"] for u in onelogin.app_users(app_id)},
                parameters,
                list(scim.list_users(500)),
                had,
                patch=scim.capabilities().patch,
                role_fields=("workato_role", "workato_role_test", "workato_role_prod"),
            )
        db.session.commit()
    return result, had


def test_a_plan_over_several_slices_records_what_the_planner_decides_for_everyone(app):
    """2,400 people (three slices) after a provision, then every kind of change, including
    renames and a swap of emails whose people's rows lie slices apart."""
    with World.small(app) as world:
        users = seed(world, 2400)
        provision(app, world)
        tenant = world.tenant
        tenant.users[users[5].id].email = "renamed.five@example.com"  # a rename
        # Two people swap emails: each row's OneLogin id moves to a row slices away.
        first, last = users[10], users[2390]
        first.email, last.email = last.email, first.email
        for i in (20, 1200, 2300):
            tenant.users[users[i].id].status = 2  # suspended in OneLogin: suspend
        for i in (30, 1500):
            world.revoke(users[i].id)  # the app taken away: suspend
        for i in (40, 2000):
            tenant.remove_user(users[i].id)  # deleted in OneLogin: suspend
        for i in range(50, 2400, 97):
            tenant.users[users[i].id].custom_attributes["workato_role"] = "Admin"  # update
        world.add_workato_user("nobody.knows@example.com", workato_role="Admin")  # orphan
        world.add_workato_user("known.outsider@example.com", workato_role="Operator")
        outsider = tenant.add_user("Known", "Outsider")  # in OneLogin, without the app
        newcomers = seed(world, 3, first_id=71000000, name="newcomer")  # creates
        newcomers[1].email = ""  # renders no userName: failed, never sent
        newcomers[2].email = newcomers[0].email  # the same userName twice: one fails

        expected, had = everyone_at_once(app)
        with app.app_context():
            run, plan = service.make_plan(ACTOR)
            items = db.session.scalars(select(Item).where(Item.run_id == run.id)).all()
            rows = {p.key: p for p in db.session.scalars(select(Person))}
            counts, total = dict(run.counts), run.total

    assert counts == plan.counts == expected.counts
    assert expected.counts["create"] == 1 and expected.counts["orphan"] == 2
    assert expected.counts["suspend"] == 7 and expected.counts["update"] > 15
    writes = {d.key: d for d in expected.writes}
    assert total == len(items) == len(writes)
    assert {
        i.key: (i.action, i.user_name, i.onelogin_id, i.scim_id, i.changes, i.desired, i.request)
        for i in items
    } == {
        k: (d.action, d.user_name, d.onelogin_id, d.scim_id, d.changes, d.desired, d.request)
        for k, d in writes.items()
    }
    # The people table says what was decided for each, and holds no one else.
    assert set(rows) == {d.key for d in expected.decisions}
    for d in expected.decisions:
        row = rows[d.key]
        assert (row.user_name, row.onelogin_id, row.scim_id, row.email) == (
            d.user_name,
            d.onelogin_id,
            d.scim_id,
            d.email,
        )
        assert (row.state, row.action, row.reason, row.danger, row.orphan_kind) == (
            d.state,
            d.action,
            d.reason,
            d.danger,
            d.orphan_kind,
        )
        assert (row.changes, row.roles, row.has_app) == (d.changes, d.roles, d.has_app)
        assert row.had_app == (d.has_app or d.onelogin_id in had)
    assert rows["known.outsider@example.com"].onelogin_id == outsider.id
    # What the preview shows: every decision but the no-ops.
    assert [d.as_json() for d in plan.decisions] == [
        d.as_json() for d in expected.decisions if d.action != planner.NOOP
    ]


def plan_peak(app, n: int) -> int:
    """Bytes Python held at most while planning a first provision of n people, above what it
    held before (the second such plan: the first warms what a process keeps once)."""
    with World.small(app) as world:
        seed(world, n)
        with app.app_context():
            service.make_plan(ACTOR)
            gc.collect()
            tracemalloc.start()
            try:
                base = tracemalloc.get_traced_memory()[0]
                run, plan = service.make_plan(ACTOR)
                peak = tracemalloc.get_traced_memory()[1] - base
            finally:
                tracemalloc.stop()
            assert plan.counts["create"] == run.total == n
    return peak


def test_a_plan_holds_well_under_a_kilobyte_more_per_person(make_app):
    """A first provision plans a create for everyone. The plan's memory may grow with the
    people it matches (their names), not with its decisions, each several KB with its
    request: from 1,000 to 4,000 people the peak grows by under 1 KB a person."""
    small = plan_peak(make_app(DASHBOARD_SYNC_EXECUTOR="worker"), 1000)
    large = plan_peak(make_app(DASHBOARD_SYNC_EXECUTOR="worker"), 4000)
    per_person = (large - small) / 3000
    assert per_person < 1024, f"{per_person:.0f} bytes a person"
