"""The Sync page: Preview, Apply past the suspension guard, the progress card polled by htmx,
Cancel, Resume and Retry failed, the run history and a run's items."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from freezegun import freeze_time
from sqlalchemy import select

from dashboard.extensions import db
from dashboard.setup.models import CheckResult
from dashboard.sync import runner, runs, service
from dashboard.sync.models import Item, Run
from tests.support.forms import HTMX, post
from tests.support.people import person_id
from tests.support.rows import audit_rows
from tests.support.signin import signed_in_admin
from tests.support.sync_world import World, roles_of

# The test works each queued run itself (runner.process): no thread, no timing.
WORKER = {
    "DASHBOARD_SYNC_EXECUTOR": "worker",
    "DASHBOARD_SYNC_RATE": 0,
    "DASHBOARD_SYNC_BACKOFF_SECONDS": 0.01,
}


@pytest.fixture
def app(make_app):
    return make_app(**WORKER)


def preview(client, htmx: bool = False):
    return post(client, "/sync/preview", htmx)


def planned_run(app) -> Run:
    with app.app_context():
        run = db.session.scalar(select(Run).where(Run.status == "planned"))
        db.session.expunge_all()
        return run


def apply(client, app, htmx: bool = False, **data):
    return post(client, f"/sync/runs/{planned_run(app).id}/apply", htmx, **data)


def work(app, run_id: int) -> None:
    with app.app_context():
        runner.process(run_id)


def letters(n: int) -> str:
    """0 -> "aa", 54 -> "fe": distinct names (the simulator keeps only letters in emails)."""
    return "abcdefghij"[n // 10] + "abcdefghij"[n % 10]


def latest_id(app) -> int:
    with app.app_context():
        return runs.latest().id


def test_an_empty_sync_page_says_to_connect_first_and_offers_preview(admin_client):
    body = admin_client.get("/sync").get_data(as_text=True)
    assert "No sync runs yet" in body and "First:" in body
    assert ">Preview</button>" in body


def test_preview_without_connections_says_what_is_missing(admin_client):
    response = preview(admin_client)
    assert response.status_code == 303 and response.location == "/sync"
    body = admin_client.get("/sync").get_data(as_text=True)
    assert "Save the OneLogin and Workato SCIM connections on Connections first." in body


def test_preview_under_htmx_shows_the_refusal_in_the_message_area(admin_client):
    response = preview(admin_client, htmx=True)
    assert response.status_code == 409
    body = response.get_data(as_text=True)
    assert '<div id="messages" hx-swap-oob="innerHTML">' in body
    assert "Save the OneLogin and Workato SCIM connections" in body


def test_preview_shows_counts_changes_requests_and_both_kinds_of_orphans(admin_client, app):
    with World.small(app) as world:
        world.person("Ada", "Lovelace", workato_role="Admin")
        world.person("Alan", "Turing", workato_role="Operator")
        world.add_workato_user("alan.turing@example.com", workato_role="Analyst")
        world.person("Hedy", "Lamarr", app=False, workato_role="Analyst")
        world.add_workato_user("hedy.lamarr@example.com", workato_role="Analyst")
        world.add_workato_user("workspace.owner@example.com", workato_role="Admin")

        response = preview(admin_client, htmx=True)

    assert response.status_code == 200
    body = response.get_data(as_text=True)
    assert "<html" not in body  # the #sync-state partial
    counts = re.findall(
        r'<span class="action-name">([\w ]+)</span> <span class="count">(\d+)</span>', body
    )
    assert counts == [
        ("create", "1"),
        ("update", "1"),
        ("suspend", "0"),
        ("reactivate", "0"),
        ("unchanged", "0"),
        ("orphans", "2"),
    ]
    assert "Apply 2 changes" in body
    # Each change with its exact request, the token redacted.
    assert "POST /Users" in body and "Authorization: Bearer [redacted]" in body
    assert "PATCH /Users/" in body
    assert 'workato_role</span>: <span class="old">Analyst</span>' in body
    # Orphans, in two kinds; the one OneLogin knows is flagged loudly.
    assert "Known to OneLogin, without the Workato app (1)" in body
    assert "Not known to OneLogin (1)" in body
    known = body.split("Known to OneLogin, without the Workato app")[1].split("Not known")[0]
    assert "hedy.lamarr@example.com" in known and "Attention:" in known
    assert "workspace.owner@example.com" in body.split("Not known to OneLogin (1)")[1]


def test_known_orphans_are_one_table_under_one_attention_box(admin_client, app):
    """Not the same red sentence once per orphan: one box, then a row each, linking to the
    user's page where Suspend is."""
    with World.small(app) as world:
        for first in ("Hedy", "Grace", "Ada"):
            world.person(first, "Lamarr", app=False, workato_role="Analyst")
            world.add_workato_user(f"{first.lower()}.lamarr@example.com", workato_role="Analyst")
        body = preview(admin_client, htmx=True).get_data(as_text=True)

    orphans = body.split('<section class="card orphans"')[1]
    assert orphans.count("Attention:") == 1
    table = re.search(r'<table class="entries orphans-table".*?</table>', orphans, re.S).group(0)
    rows = re.findall(
        r'<tr>\s*<td><a href="/users/(\d+)">([^<]+)</a></td>\s*<td>([^<]+)</td>\s*<td>([^<]+)</td>',
        table,
    )
    assert [(name, display, known) for _, name, display, known in rows] == [
        (
            f"{first}.lamarr@example.com",
            f"{first.title()} Lamarr",
            f"Known to OneLogin as {first.title()} Lamarr; not granted the Workato app.",
        )
        for first in ("ada", "grace", "hedy")
    ]
    hedy = rows[2][0]
    assert "Suspend in Workato" in admin_client.get(f"/users/{hedy}").get_data(as_text=True)


def test_preview_apply_and_the_progress_card_reaches_100_percent(make_app, idp):
    """The default executor: a thread of the web process works the run."""
    app = make_app(DASHBOARD_SYNC_RATE=0)
    admin = signed_in_admin(app, idp)
    with World.small(app) as world:
        world.person("Ada", "Lovelace", workato_role="Admin", workato_role_prod="Analyst")
        world.person("Alan", "Turing", workato_role="Operator")
        assert preview(admin).status_code == 303
        page = admin.get("/sync").get_data(as_text=True)
        assert "Apply 2 changes" in page

        response = apply(admin, app, htmx=True)
        assert response.status_code == 200
        state = response.get_data(as_text=True)
        assert 'hx-trigger="every 1s"' in state
        assert """hx-vals='{"place": "sync", "said": """ in state  # the card says where it is
        for thread in app.extensions["dashboard.sync_threads"]:
            thread.join(timeout=60)
            assert not thread.is_alive()

        run_id = latest_id(app)
        polled = admin.get(f"/sync/runs/{run_id}/progress?place=sync", headers=HTMX)
        card = polled.get_data(as_text=True)
        assert '<strong class="percent">100%</strong>' in card
        assert "Succeeded" in card and "2 of 2 done" in card
        assert "hx-trigger" not in card  # final: polling stops
        assert polled.headers["HX-Trigger"] == "run-finished"
        assert "Cancel run" not in card and "Resume run" not in card and "Retry" not in card
        # The finished card on the Sync page offers the next Preview, no reload needed.
        assert '<button type="submit">Preview</button>' in card
        assert 'hx-post="/sync/preview" hx-target="#sync-state"' in card
        assert "Preview the next sync" not in card
        ada = world.workato_user("ada.lovelace@example.com")
        assert ada["active"] is True
        assert roles_of(ada) == {"workato_role": "Admin", "workato_role_prod": "Analyst"}
        assert world.workato_user("alan.turing@example.com")["active"] is True

    page = admin.get("/sync").get_data(as_text=True)
    assert "Last run" in page and page.count(">Preview</button>") == 1  # in the card
    assert f'href="/sync/runs/{run_id}">Run {run_id}</a>' in page  # in the history


def test_the_progress_card_polls_while_queued_and_offers_cancel(admin_client, app):
    with World.small(app) as world:
        world.person("Ada", "Lovelace", workato_role="Admin")
        preview(admin_client)
        response = apply(admin_client, app)
        assert response.status_code == 303
        run_id = latest_id(app)

        page = admin_client.get("/sync").get_data(as_text=True)
        assert f'hx-get="/sync/runs/{run_id}/progress" hx-trigger="every 1s"' in page
        assert f"Cancel run {run_id}" in page
        assert "Queued: waiting for the worker to pick it up." in page  # a worker's run
        polled = admin_client.get(f"/sync/runs/{run_id}/progress", headers=HTMX)
        assert "HX-Trigger" not in polled.headers  # not finished yet

        work(app, run_id)
        response = admin_client.get(f"/sync/runs/{run_id}/progress", headers=HTMX)
        card = response.get_data(as_text=True)
        assert "hx-trigger" not in card and "100%" in card and "Succeeded" in card
        assert response.headers["HX-Trigger"] == "run-finished"
        # ... which the Sync page's history listens for, to read itself afresh.
        history = re.search(r'<div id="history"[^>]*>', page).group(0)
        assert 'hx-get="/sync" hx-select="#history"' in history
        assert 'hx-trigger="run-finished from:body"' in history


def test_the_polled_card_is_not_a_live_region_its_status_line_speaks_on_change(admin_client, app):
    """A screen reader hears the status and each quarter, not the whole card every second."""
    with World.small(app) as world:
        world.person("Ada", "Lovelace", workato_role="Admin")
        preview(admin_client)
        apply(admin_client, app)
        run_id = latest_id(app)
        page = admin_client.get("/sync").get_data(as_text=True)
        assert "aria-live" not in page
        line = f'<p class="visually-hidden" role="status" id="run-{run_id}-said">'
        assert f"{line}Run {run_id} queued: 0% done.</p>" in page
        card = re.search(r'<section class="card run-progress.*?</section>', page, re.S).group(0)
        assert f'"said": "Run {run_id} queued: 0% done."' in card and "role=" not in card

        url = f"/sync/runs/{run_id}/progress"
        same = admin_client.get(url, query_string={"said": f"Run {run_id} queued: 0% done."})
        assert "hx-swap-oob" not in same.get_data(as_text=True)  # nothing new to say
        work(app, run_id)
        done = admin_client.get(url, query_string={"said": f"Run {run_id} queued: 0% done."})
        assert (
            f'<p id="run-{run_id}-said" hx-swap-oob="innerHTML">Run {run_id} succeeded: '
            "1 of 1 done.</p>"
        ) in done.get_data(as_text=True)


def test_a_queued_run_of_the_thread_executor_says_starting(make_app, idp, monkeypatch):
    app = make_app(DASHBOARD_SYNC_RATE=0)
    admin = signed_in_admin(app, idp)
    monkeypatch.setattr(runner, "launch", lambda run_id: None)  # hold it in the queue
    with World.small(app) as world:
        world.person("Ada", "Lovelace", workato_role="Admin")
        preview(admin)
        apply(admin, app)
        page = admin.get("/sync").get_data(as_text=True)
    assert "Starting…" in page and "waiting for the worker" not in page


def test_apply_needs_the_exact_number_of_suspensions_when_the_guard_trips(make_app, idp):
    app = make_app(
        **WORKER, DASHBOARD_SYNC_SUSPEND_GUARD_COUNT=0, DASHBOARD_SYNC_SUSPEND_GUARD_SHARE=0
    )
    admin = signed_in_admin(app, idp)
    with World.small(app) as world:
        world.person("Grace", "Hopper", status=2, workato_role="Analyst")  # suspended
        world.add_workato_user("grace.hopper@example.com", workato_role="Analyst")
        preview(admin)
        page = admin.get("/sync").get_data(as_text=True)
        assert '<label for="confirm-suspensions">Type 1 to confirm the suspensions</label>' in page
        assert 'name="confirm_suspensions" type="number"' in page and "required" in page

        missing = apply(admin, app, htmx=True)
        assert missing.status_code == 422
        assert "Confirm by entering 1" in missing.get_data(as_text=True)
        assert 'aria-invalid="true"' in missing.get_data(as_text=True)
        wrong = apply(admin, app, confirm_suspensions="2")
        assert wrong.status_code == 303
        assert "Confirm by entering 1" in admin.get("/sync").get_data(as_text=True)
        assert planned_run(app) is not None  # still only a preview

        assert apply(admin, app, confirm_suspensions="1").status_code == 303
        work(app, latest_id(app))
        assert world.workato_user("grace.hopper@example.com")["active"] is False


def test_a_viewer_sees_no_buttons_and_cannot_preview_or_apply(viewer_client, app):
    with World.small(app) as world:
        world.person("Ada", "Lovelace", workato_role="Admin")
        with app.app_context():
            run, _ = service.make_plan("someone@example.com")
            run_id = run.id
        page = viewer_client.get("/sync").get_data(as_text=True)
        assert "Preview: what a sync would do" in page
        assert "<button" not in page.split('id="sync-state"')[1].split("</main>")[0]
        assert preview(viewer_client).status_code == 403
        assert post(viewer_client, f"/sync/runs/{run_id}/apply").status_code == 403
        assert world.workato_user("ada.lovelace@example.com") is None
    refused = [r for r in audit_rows(app) if r["action"] == "auth.forbidden"]
    assert [r["details"]["path"] for r in refused] == [
        "/sync/preview",
        f"/sync/runs/{run_id}/apply",
    ]


def test_a_cancelled_run_offers_resume_which_finishes_it(make_app, idp):
    app = make_app(**WORKER, DASHBOARD_SYNC_CONCURRENCY=1)
    admin = signed_in_admin(app, idp)
    with World.small(app) as world:
        for last in ("Lovelace", "Turing", "Hopper"):
            world.person("Ada", last, workato_role="Admin")
        preview(admin)
        apply(admin, app)
        run_id = latest_id(app)

        # Queued, nobody has taken it yet: cancelled at once, which ends the run.
        cancelled = post(admin, f"/sync/runs/{run_id}/cancel", htmx=True)
        card = cancelled.get_data(as_text=True)
        assert "Cancelled" in card and "nothing was sent" in card
        assert cancelled.headers["HX-Trigger"] == "run-finished"
        assert f"Resume run {run_id}" in card
        assert "Retry" not in card  # nothing failed
        assert not world.workato_users()

        resumed = post(admin, f"/sync/runs/{run_id}/resume", htmx=True)
        assert resumed.status_code == 200
        assert 'hx-trigger="every 1s"' in resumed.get_data(as_text=True)
        work(app, run_id)
        card = admin.get(f"/sync/runs/{run_id}/progress").get_data(as_text=True)
        assert "Succeeded" in card and "3 of 3 done" in card
        assert len(world.workato_users()) == 3


def test_a_failed_item_is_listed_and_retry_failed_reruns_only_it(admin_client, app):
    with World.small(app) as world:
        world.person("Ada", "Lovelace", workato_role="Admin")
        world.person("Alan", "Turing", workato_role="Operator")
        preview(admin_client)
        # Someone creates Alan in Workato between the preview and the run: the create clashes.
        world.add_workato_user("alan.turing@example.com", workato_role="Operator")
        apply(admin_client, app)
        run_id = latest_id(app)
        work(app, run_id)

        card = admin_client.get(f"/sync/runs/{run_id}/progress").get_data(as_text=True)
        assert "Failed" in card and "alan.turing@example.com" in card
        assert f"Retry 1 failed of run {run_id}" in card
        assert "Resume run" not in card  # nothing pending

        response = post(admin_client, f"/sync/runs/{run_id}/retry")
        assert response.status_code == 303
        retry_id = latest_id(app)
        assert retry_id != run_id
        page = admin_client.get("/sync").get_data(as_text=True)
        assert f"Retrying 1 failed items as run {retry_id}." in page
        work(app, retry_id)
        with app.app_context():
            items = db.session.scalars(select(Item).where(Item.run_id == retry_id)).all()
            assert [(i.user_name, i.status) for i in items] == [
                ("alan.turing@example.com", "succeeded")
            ]


def test_resume_of_a_finished_run_is_refused_with_a_message(admin_client, app):
    with World.small(app) as world:
        world.person("Ada", "Lovelace", workato_role="Admin")
        preview(admin_client)
        apply(admin_client, app)
        run_id = latest_id(app)
        work(app, run_id)
    response = post(admin_client, f"/sync/runs/{run_id}/resume", htmx=True)
    assert response.status_code == 409
    assert response.headers["HX-Retarget"] == "#messages"
    assert "Only an interrupted, cancelled or stopped run can be resumed." in response.get_data(
        as_text=True
    )


def test_a_second_apply_joins_the_running_run(admin_client, app):
    with World.small(app) as world:
        world.person("Ada", "Lovelace", workato_role="Admin")
        preview(admin_client)
        run_id = planned_run(app).id
        apply(admin_client, app)
        again = post(admin_client, f"/sync/runs/{run_id}/apply", htmx=True)
        assert again.status_code == 409
        body = again.get_data(as_text=True)
        assert f"Run {run_id} is already queued: showing it instead." in body
        assert f"Cancel run {run_id}" in body


def test_the_run_page_lists_items_with_request_and_response_filtered_and_paged(admin_client, app):
    with World.small(app) as world:
        for n in range(55):
            world.person("User", "Number" + letters(n), workato_role="Analyst")
        preview(admin_client)
        planned = planned_run(app).id
        page = admin_client.get("/sync").get_data(as_text=True)
        assert "55 changes" in page
        apply(admin_client, app)
        work(app, planned)

    page = admin_client.get(f"/sync/runs/{planned}").get_data(as_text=True)
    assert f"<h1>Run {planned}: Sync</h1>" in page
    assert 'id="item-filters"' in page
    assert page.count('<li class="sync-item') == 50
    assert "HTTP 201" in page and "Authorization: Bearer [redacted]" in page
    assert "user.numberaa@example.com" in page and "user.numberfa@example.com" not in page
    after = re.search(r'href="(/sync/runs/\d+\?after=\d+)"[^>]*rel="next"', page).group(1)
    rest = admin_client.get(after, headers=HTMX).get_data(as_text=True)
    assert "<html" not in rest and rest.count('<li class="sync-item') == 5
    assert "user.numberfe@example.com" in rest and 'rel="next"' not in rest

    failed = admin_client.get(f"/sync/runs/{planned}?status=failed").get_data(as_text=True)
    assert "No failed items." in failed


def test_a_run_whose_process_died_shows_as_interrupted_and_can_be_resumed(admin_client, app):
    with World.small(app) as world:
        world.person("Ada", "Lovelace", workato_role="Admin")
        preview(admin_client)
        apply(admin_client, app)
        run_id = latest_id(app)
        with app.app_context():
            assert runs.claim(run_id, "a-process-that-dies")  # ... and never beats again
        card = admin_client.get(f"/sync/runs/{run_id}/progress").get_data(as_text=True)
        assert "Running" in card and "hx-trigger" in card

        with freeze_time(datetime.now(UTC) + timedelta(minutes=5)):
            card = admin_client.get(f"/sync/runs/{run_id}/progress").get_data(as_text=True)
        assert "Interrupted" in card and "hx-trigger" not in card
        assert f"Resume run {run_id}" in card

        post(admin_client, f"/sync/runs/{run_id}/resume")
        work(app, run_id)
        assert world.workato_user("ada.lovelace@example.com")["active"] is True


def test_the_run_page_reloads_its_items_when_the_run_finishes(admin_client, app):
    """The card's final answer sends run-finished; the item list listens for it."""
    with World.small(app) as world:
        world.person("Ada", "Lovelace", workato_role="Admin")
        preview(admin_client)
        apply(admin_client, app)
        run_id = latest_id(app)
        page = admin_client.get(f"/sync/runs/{run_id}").get_data(as_text=True)
        items = re.search(r'<div id="run-items"[^>]*>', page).group(0)
        assert f'hx-get="/sync/runs/{run_id}"' in items
        assert 'hx-include="#item-filters"' in items
        assert 'hx-trigger="run-finished from:body"' in items
        assert "pending" in page.split('id="run-items"')[1]

        work(app, run_id)
        finished = admin_client.get(f"/sync/runs/{run_id}/progress", headers=HTMX)
        assert finished.headers["HX-Trigger"] == "run-finished"
        reloaded = admin_client.get(f"/sync/runs/{run_id}", headers=HTMX).get_data(as_text=True)
        assert "<html" not in reloaded and "succeeded" in reloaded and "HTTP 201" in reloaded
        # A finished run's page has nothing left to wait for.
        page = admin_client.get(f"/sync/runs/{run_id}").get_data(as_text=True)
        assert "run-finished" not in page


def test_a_preview_run_page_says_not_applied_and_has_no_status_filter(admin_client, app):
    with World.small(app) as world:
        world.person("Ada", "Lovelace", workato_role="Admin")
        preview(admin_client)
        run_id = planned_run(app).id
        page = admin_client.get(f"/sync/runs/{run_id}").get_data(as_text=True)
    assert f"<title>Preview {run_id} (not applied) · Sync" in page
    assert f"<h1>Preview {run_id} (not applied): Sync</h1>" in page
    assert 'id="item-status"' not in page and "run-finished" not in page


def test_counts_name_the_writes_then_what_is_not_sent(admin_client, app):
    """Not "Writes 2 (… noop 1, orphan 1)": the writes, then unchanged and orphans apart."""
    with World.small(app) as world:
        world.person("Ada", "Lovelace", workato_role="Admin")  # create
        world.person("Alan", "Turing", workato_role="Operator")
        world.add_workato_user("alan.turing@example.com", workato_role="Analyst")  # update
        world.person("Katherine", "Johnson", workato_role="Admin")
        world.add_workato_user("katherine.johnson@example.com", workato_role="Admin")  # noop
        world.add_workato_user("workspace.owner@example.com", workato_role="Admin")  # orphan
        preview(admin_client)
        apply(admin_client, app)
        run_id = latest_id(app)
        work(app, run_id)

    page = admin_client.get(f"/sync/runs/{run_id}").get_data(as_text=True)
    assert "<dt>Writes</dt><dd>2: create 1 · update 1</dd>" in page
    assert "<dt>Not sent</dt><dd>unchanged 1 · orphans left alone 1</dd>" in page
    assert "noop" not in page and "suspend 0" not in page
    card = re.search(r'<p class="planned-counts">(.*?)</p>', page).group(1)
    assert card == (
        "Planned writes: create 1 · update 1. Not sent: unchanged 1 · orphans left alone 1."
    )
    history = admin_client.get("/sync").get_data(as_text=True).split('id="history-title"')[1]
    assert '<div class="sub">create 1 · update 1</div>' in history
    assert '<div class="sub">not sent: unchanged 1 · orphans left alone 1</div>' in history


def test_a_preview_made_before_another_run_finished_warns_above_apply(admin_client, app):
    """Provision now changed Workato after the preview: Apply is no longer the main button."""
    with World.small(app) as world:
        world.person("Ada", "Lovelace", workato_role="Admin")
        world.person("Alan", "Turing", workato_role="Operator")
        preview(admin_client)
        page = admin_client.get("/sync").get_data(as_text=True)
        assert "Out of date" not in page
        assert '<button type="submit">Apply 2 changes</button>' in page

        ada = person_id(app, "ada.lovelace@example.com")
        assert post(admin_client, f"/users/{ada}/provision").status_code == 200
        page = admin_client.get("/sync").get_data(as_text=True)

    warning = re.search(r'<p class="warning warning-block stale-preview"[^>]*>(.*?)</p>', page)
    assert "<strong>Out of date:</strong>" in warning.group(1)
    assert "preview again" in warning.group(1)
    assert page.index("stale-preview") < page.index("Apply 2 changes")
    assert '<button type="submit" class="secondary">Apply 2 changes</button>' in page
    assert '<button type="submit">Preview again</button>' in page  # now the main one


def test_failing_setup_checks_are_named_above_the_preview(admin_client, app):
    with World.small(app) as world:
        world.person("Ada", "Lovelace", workato_role="Admin")
        with app.app_context():
            db.session.add(CheckResult(item_id="app_saml", state="failing", message="No app."))
            db.session.commit()
        preview(admin_client)
        page = admin_client.get("/sync").get_data(as_text=True)
    warning = re.search(r'<div class="warning warning-block setup-failing">.*?</div>', page, re.S)
    text = warning.group(0)
    assert "Setup has 1 failing check." in text
    assert '<a href="/setup">Fix it on Setup</a>' in text
    assert (
        '<a href="/setup#item-app_saml">The Workato app exists in OneLogin and uses SAML</a>'
        in text
    )
    assert page.index("setup-failing") < page.index("Preview: what a sync would do")
