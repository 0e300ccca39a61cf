"""The Setup page without any connection: what it says, confirmations, the template form."""

from __future__ import annotations

import json

from dashboard.setup import template
from tests.support.checklist import item_html
from tests.support.forms import htmx_headers, post
from tests.support.rows import audit_rows


def test_without_connections_every_live_item_says_which_connection_is_missing(admin_client):
    post(admin_client, "/setup/check")
    page = admin_client.get("/setup").get_data(as_text=True)
    assert "Configure the OneLogin API on Connections first." in item_html(page, "onelogin_api")
    scim = item_html(page, "scim_api")
    assert "Cannot check yet" in scim and "Configure the Workato SCIM API" in scim
    assert "Needs confirmation" in item_html(page, "data_monitoring")


def test_check_json_lists_every_item_with_stable_ids_and_exit_0_without_failures(app):
    result = app.test_cli_runner().invoke(args=["setup", "check", "--json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    assert document["ok"] is True
    ids = [item["id"] for item in document["items"]]
    assert ids[:4] == ["data_monitoring", "saml_sso", "onelogin_api", "app_saml"]
    assert len(ids) == len(set(ids)) == 16
    for item in document["items"]:
        assert {"id", "title", "state", "message", "checked_at"} <= set(item)
        assert item["state"] in {"verified", "failing", "needs_confirmation", "cannot_check"}


def test_an_admin_confirms_and_withdraws_a_manual_step_with_htmx(admin_client, app):
    response = admin_client.post(
        "/setup/confirm/deprovision_actions", headers=htmx_headers(admin_client)
    )
    fragment = response.get_data(as_text=True)
    assert fragment.strip().startswith("<li") and "Confirmed by ada.admin@example.com" in fragment
    assert audit_rows(app)[-1]["details"] == {"item": "deprovision_actions"}
    post(admin_client, "/setup/withdraw/deprovision_actions")
    page = admin_client.get("/setup").get_data(as_text=True)
    assert "Needs confirmation" in item_html(page, "deprovision_actions")
    assert audit_rows(app)[-1]["action"] == "setup.confirmation_withdrawn"


def test_a_live_item_cannot_be_confirmed_by_hand(admin_client):
    response = post(admin_client, "/setup/confirm/onelogin_api")
    assert response.status_code == 400


def test_viewers_cannot_confirm_or_re_check(viewer_client, app):
    for url in ("/setup/confirm/deprovision_actions", "/setup/check", "/setup/template"):
        assert post(viewer_client, url).status_code == 403
    page = viewer_client.get("/setup").get_data(as_text=True)
    assert "Confirm it is done" not in page and ">Re-check<" not in page


def test_pasting_a_template_on_the_page_checks_it(admin_client):
    body = template.default_template(["workato_role", "workato_role_test", "workato_role_prod"])
    response = post(admin_client, "/setup/template", template=body)
    assert response.status_code == 302
    page = admin_client.get("/setup").get_data(as_text=True)
    assert "Template saved; it maps every role field." in page
    assert "Verified" in item_html(page, "scim_template")


def test_a_malformed_template_is_shown_back_with_the_error(admin_client):
    response = post(admin_client, "/setup/template", template="{oops")
    assert response.status_code == 422
    body = response.get_data(as_text=True)
    assert "The template is not valid JSON" in body and "{oops</textarea>" in body


def test_values_to_paste_include_the_urn_and_the_block(admin_client):
    page = admin_client.get("/setup").get_data(as_text=True)
    assert template.WORKATO_ROLE in page
    assert "{$user.custom_fields.workato_role_prod}" in page
    assert 'data-copy="paste-block"' in page


def test_confirming_twice_keeps_the_first_confirmation_and_audits_it_once(app):
    from dashboard.setup import service

    with app.app_context():
        service.confirm("api_connection", "first@example.com")
        service.confirm("api_connection", "second@example.com")
        item = next(r for r in service.checklist() if r.id == "api_connection")
    assert item.confirmed_by == "first@example.com"
    assert [r["action"] for r in audit_rows(app)].count("setup.confirmed") == 1


def test_the_overview_sums_up_connections_and_the_checklist(admin_client, app):
    from dashboard.connections import service as connections

    assert "Nothing is connected yet" in admin_client.get("/").get_data(as_text=True)
    with app.app_context():
        connections.save("scim", actor="t", base_url="http://127.0.0.1:9/v2", secret="x" * 20)
    post(admin_client, "/setup/check")
    page = admin_client.get("/").get_data(as_text=True)
    # The check called the SCIM API: the card says how it answered, not "Not tested".
    assert "Workato SCIM API:" in page and "Failing" in page and "Not tested" not in page
    assert "OneLogin API:" in page and "Not configured" in page
    assert "2 failing" in page  # the SCIM API does not answer on a closed port
    assert '#item-scim_api">' in page


def test_two_confirmations_at_once_leave_one_and_no_error(app):
    """Two admins clicking at the same moment: one confirmation, audited once, no 500."""
    import threading

    from dashboard.setup import service

    barrier = threading.Barrier(2)
    errors: list[Exception] = []

    def click(actor: str) -> None:
        with app.app_context():
            barrier.wait(timeout=10)
            try:
                service.confirm("data_monitoring", actor)
            except Exception as exc:  # the test reports it below
                errors.append(exc)

    threads = [threading.Thread(target=click, args=(f"{n}@example.com",)) for n in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    assert [r["action"] for r in audit_rows(app)].count("setup.confirmed") == 1
