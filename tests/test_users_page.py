"""The Users pages: everyone the last plan saw with their provisioning state, counts per
state, search and filters, keyset paging, and one person's page with Provision now and the
orphan's Suspend."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, insert, select

from dashboard.extensions import db
from dashboard.person import Person
from dashboard.sync import service
from tests.support.forms import HTMX, post
from tests.support.people import person_id
from tests.support.sync_world import World, roles_of


@pytest.fixture
def app(make_app):
    return make_app(DASHBOARD_SYNC_EXECUTOR="worker", DASHBOARD_SYNC_RATE=0)


def rows(body: str) -> list[str]:
    """The user names listed, in order."""
    return re.findall(r'<div class="sub user-name">([^<· ]+)', body)


def count_of(body: str, state_label: str) -> int:
    found = re.search(rf">{state_label}</span> <span class=\"count\">(\d+)</span>", body)
    return int(found.group(1))


@pytest.fixture
def world(app):
    """Six people in every interesting state, after a preview (nothing sent yet)."""
    with World.small(app) as world:
        world.person("Ada", "Lovelace", workato_role="Admin")  # not provisioned
        world.person("Alan", "Turing", workato_role="Operator")
        world.add_workato_user("alan.turing@example.com", workato_role="Analyst")  # drift
        world.person("Grace", "Hopper", status=2, workato_role="Analyst")
        world.add_workato_user("grace.hopper@example.com", workato_role="Analyst")  # danger
        world.person("Hedy", "Lamarr", app=False, workato_role="Analyst")
        world.add_workato_user("hedy.lamarr@example.com", workato_role="Analyst")  # orphan
        world.person("Katherine", "Johnson", workato_role="Admin")
        world.add_workato_user("katherine.johnson@example.com", workato_role="Admin")  # in sync
        world.add_workato_user("workspace.owner@example.com", workato_role="Admin")  # orphan
        with app.app_context():
            service.make_plan("ada.admin@example.com")
        yield world


def test_before_any_plan_the_users_page_points_to_sync_preview(admin_client):
    body = admin_client.get("/users").get_data(as_text=True)
    assert "No users seen yet" in body
    assert "press Preview" in body and 'href="/sync"' in body


def test_after_a_preview_everyone_is_listed_with_state_and_counts(admin_client, world):
    body = admin_client.get("/users").get_data(as_text=True)
    assert rows(body) == [
        "ada.lovelace@example.com",
        "alan.turing@example.com",
        "grace.hopper@example.com",
        "hedy.lamarr@example.com",
        "katherine.johnson@example.com",
        "workspace.owner@example.com",
    ]
    assert count_of(body, "Not provisioned") == 1
    assert count_of(body, "Drift") == 2  # Alan's role; Grace active though suspended
    assert count_of(body, "In sync") == 1
    assert count_of(body, "Orphaned") == 2
    assert count_of(body, "Pending") == 0 and count_of(body, "Failed") == 0
    assert '<svg class="chart"' in body and 'class="bar bar-orphaned"' in body
    # Drift old -> new, and the dangerous case loudly.
    alan = body.split("alan.turing@example.com</div>")[1].split("</tr>")[0]
    assert '<span class="old">Analyst</span>' in alan
    assert '<span class="new">Operator</span>' in alan
    grace = body.split("grace.hopper@example.com</div>")[1].split("</tr>")[0]
    assert "<strong>Attention:</strong> Active in Workato although suspended in OneLogin." in grace


def test_the_users_page_says_when_it_was_read_and_how_many_need_attention(admin_client, app, world):
    """The rows are as the last preview read them: the page says when, and links to Sync."""
    with app.app_context():
        newest = db.session.scalar(select(func.max(Person.seen_at)))
    body = admin_client.get("/users").get_data(as_text=True)
    read = re.search(r'as of <time datetime="([^"]+)">(\d\d:\d\d) UTC</time>', body)
    assert read.groups() == (newest.isoformat(), newest.strftime("%H:%M"))
    assert "from the last preview or run" in body
    assert '<a href="/sync">Preview on Sync to refresh</a>' in body
    summary = re.search(r'<p class="counts-summary">(.*?)</p>', body, re.S).group(1)
    # Six people; Grace (active though suspended) and Hedy (a known orphan) need attention.
    assert re.search(r'Total <span class="count">6</span>', summary)
    assert re.search(r'need attention: <span class="count">2</span>', summary)
    assert 'placeholder="Name or email"' in body
    assert '<th scope="col">Workato roles (OneLogin)</th>' in body


def test_details_show_the_warning_alone_and_nothing_for_users_in_sync(admin_client, world):
    body = admin_client.get("/users").get_data(as_text=True)

    def details(user_name: str) -> str:
        row = body.split(f"{user_name}</div>")[1].split("</tr>")[0]
        return re.search(r'<td class="details">(.*?)</td>', row, re.S).group(1)

    grace = details("grace.hopper@example.com")
    assert "Attention:" in grace and "Suspended in OneLogin." not in grace  # no grey reason
    assert details("katherine.johnson@example.com") == ""  # in sync: nothing to say
    assert "Has the app in OneLogin; not in Workato yet." in details("ada.lovelace@example.com")


def test_search_matches_name_email_or_display_name_ignoring_case(admin_client, world):
    assert rows(admin_client.get("/users?q=HOPPER").get_data(as_text=True)) == [
        "grace.hopper@example.com"
    ]
    assert rows(admin_client.get("/users?q=katherine").get_data(as_text=True)) == [
        "katherine.johnson@example.com"
    ]
    nothing = admin_client.get("/users?q=%25").get_data(as_text=True)  # "%" is no wildcard
    assert rows(nothing) == [] and "No user matches" in nothing


def test_filters_by_state_and_by_role(admin_client, world):
    drift = admin_client.get("/users?state=drift").get_data(as_text=True)
    assert rows(drift) == ["alan.turing@example.com", "grace.hopper@example.com"]
    admins = admin_client.get("/users?role=Admin").get_data(as_text=True)
    assert rows(admins) == [
        "ada.lovelace@example.com",
        "katherine.johnson@example.com",
        "workspace.owner@example.com",
    ]
    both = admin_client.get("/users?state=orphaned&role=Analyst").get_data(as_text=True)
    assert rows(both) == ["hedy.lamarr@example.com"]
    assert '<option value="Operator">Operator</option>' in admins


def test_the_filter_form_works_with_htmx_and_without(admin_client, world):
    page = admin_client.get("/users").get_data(as_text=True)
    form = re.search(r'<form class="filters"[^>]*>', page).group(0)
    assert 'method="get" action="/users"' in form
    assert 'hx-get="/users" hx-target="#people-results" hx-push-url="true"' in form
    partial = admin_client.get("/users?state=in_sync", headers=HTMX).get_data(as_text=True)
    assert "<html" not in partial and "<table" in partial
    assert rows(partial) == ["katherine.johnson@example.com"]


def test_100_people_are_paged_by_key_50_at_a_time(admin_client, app):
    now = datetime.now(UTC)
    with app.app_context():
        db.session.execute(
            insert(Person),
            [
                {
                    "key": f"user{n:03d}@example.com",
                    "user_name": f"user{n:03d}@example.com",
                    "state": "in_sync" if n % 2 else "drift",
                    "action": "noop",
                    "seen_at": now,
                }
                for n in range(120)
            ],
        )
        db.session.commit()
    first = admin_client.get("/users").get_data(as_text=True)
    assert rows(first)[0] == "user000@example.com" and len(rows(first)) == 50
    assert count_of(first, "In sync") == 60 and count_of(first, "Drift") == 60
    following = re.search(r'href="(/users\?after=[^"]+)"[^>]*rel="next"', first).group(1)
    assert following == "/users?after=user049@example.com"
    second = admin_client.get(following).get_data(as_text=True)
    assert rows(second)[0] == "user050@example.com" and "First page" in second
    third = admin_client.get("/users?after=user099@example.com").get_data(as_text=True)
    assert len(rows(third)) == 20 and 'rel="next"' not in third

    drift = admin_client.get("/users?state=drift").get_data(as_text=True)
    assert rows(drift)[:2] == ["user000@example.com", "user002@example.com"]
    more = re.search(r'href="(/users\?[^"]+)"[^>]*rel="next"', drift).group(1)
    assert "state=drift" in more and "after=user098@example.com" in more
    rest = admin_client.get(more.replace("&amp;", "&"), headers=HTMX).get_data(as_text=True)
    assert rows(rest) == [f"user{n:03d}@example.com" for n in range(100, 120, 2)]


def test_the_person_page_shows_both_sides_drift_and_danger(admin_client, app, world):
    alan = admin_client.get(f"/users/{person_id(app, 'alan.turing@example.com')}")
    body = alan.get_data(as_text=True)
    assert "Drift: Workato has → OneLogin says" in body
    assert '<span class="field">workato_role</span>: <span class="old">Analyst</span>' in body
    assert "Granted" in body and "Active" in body
    grace = admin_client.get(f"/users/{person_id(app, 'grace.hopper@example.com')}")
    body = grace.get_data(as_text=True)
    assert "<strong>Attention:</strong> Active in Workato although suspended in OneLogin." in body
    assert "Suspended" in body  # OneLogin's status
    assert "Provision now" in body and "Remove app access" in body
    # Suspending directly is offered, and says OneLogin (which suspended her) agrees.
    assert "Suspend in Workato" in body and "next sync reactivates" not in body
    assert admin_client.get("/users/999999").status_code == 404


def test_provision_now_shows_each_step_and_brings_the_user_into_workato(admin_client, app, world):
    ada = person_id(app, "ada.lovelace@example.com")
    response = post(admin_client, f"/users/{ada}/provision", htmx=True)
    assert response.status_code == 200
    body = response.get_data(as_text=True)
    steps = re.findall(r'<li class="step step-(\w+)">.*?<strong>([^<]+)</strong>', body)
    assert steps == [
        ("ok", "Read from OneLogin"),
        ("ok", "Render the template"),
        ("ok", "Find in Workato"),
        ("ok", "Act"),
        ("ok", "Read back and compare"),
    ]
    # The person afresh, the steps right under the name, taking the focus (htmx focuses
    # an autofocus element it swaps in: no inline script, which the CSP forbids).
    assert "<html" not in body and "In sync" in body
    region = re.search(r'</h1>\s*<section class="card provision-result"[^>]*>', body).group(0)
    assert 'tabindex="-1"' in region and "autofocus" in region
    assert "create: POST /Users answered 201" in body
    assert roles_of(world.workato_user("ada.lovelace@example.com")) == {"workato_role": "Admin"}
    # The item it sent is on the person's page, with its request and Workato's answer.
    page = admin_client.get(f"/users/{ada}").get_data(as_text=True)
    assert "Authorization: Bearer [redacted]" in page and "HTTP 201" in page


def test_an_orphan_is_suspended_only_with_the_explicit_tick(admin_client, app, world):
    hedy = person_id(app, "hedy.lamarr@example.com")
    page = admin_client.get(f"/users/{hedy}").get_data(as_text=True)
    assert "possibly a leaver" in page and "Attention:" in page
    assert 'name="understood" value="yes" required' in page

    refused = post(admin_client, f"/users/{hedy}/workato", active="false")
    assert refused.status_code == 303 and refused.location == f"/users/{hedy}"
    assert "Tick “I understand”" in admin_client.get(f"/users/{hedy}").get_data(as_text=True)
    assert world.workato_user("hedy.lamarr@example.com")["active"] is True

    done = post(admin_client, f"/users/{hedy}/workato", htmx=True, active="false", understood="yes")
    body = done.get_data(as_text=True)
    assert done.status_code == 200 and "Suspend in Workato: done" in body
    steps = re.findall(r'<li class="step step-(\w+)">.*?<strong>([^<]+)</strong>', body)
    assert steps == [("ok", "Find in Workato"), ("ok", "Act"), ("ok", "Read back")]
    assert world.workato_user("hedy.lamarr@example.com")["active"] is False
    # Now suspended, the page offers reactivation; the write is a run with its exchange.
    assert "Reactivate in Workato" in body and "Suspended" in body
    run_id = int(re.search(r'href="/sync/runs/(\d+)"', body).group(1))
    run_page = admin_client.get(f"/sync/runs/{run_id}").get_data(as_text=True)
    assert "Succeeded" in run_page and "PATCH" in run_page

    again = post(admin_client, f"/users/{hedy}/workato", htmx=True, active="true", understood="yes")
    assert "Reactivate in Workato: done" in again.get_data(as_text=True)
    assert world.workato_user("hedy.lamarr@example.com")["active"] is True
    # Active again, but OneLogin still does not grant her the app: an orphan, not in sync.
    with app.app_context():
        state = db.session.scalar(
            select(Person.state).where(Person.key == "hedy.lamarr@example.com")
        )
    assert state == "orphaned"


def test_a_viewer_reads_but_cannot_provision_or_suspend(viewer_client, app, world):
    hedy = person_id(app, "hedy.lamarr@example.com")
    page = viewer_client.get(f"/users/{hedy}").get_data(as_text=True)
    assert "Provision now" not in page and "Suspend in Workato" not in page
    assert post(viewer_client, f"/users/{hedy}/provision").status_code == 403
    assert post(viewer_client, f"/users/{hedy}/workato", understood="yes").status_code == 403
    assert world.workato_user("hedy.lamarr@example.com")["active"] is True
