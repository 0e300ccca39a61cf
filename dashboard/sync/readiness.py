"""Whether the sync can act, and the clients it acts with: the OneLogin and SCIM clients
built from the saved connections, the SCIM JSON template parsed, SCIM enabled. Each problem
is a NotReady (or Refused) whose message says what to do, so pages and commands show it as
it is. Used by the sync's verbs and by the Users pages alike, without the sync service.
"""

from __future__ import annotations

import math
from typing import Any

from flask import current_app
from sqlalchemy import func, select

from dashboard.connections import errors
from dashboard.connections import service as connections
from dashboard.connections.budget import OVER_BUDGET, shortage
from dashboard.connections.clients import client_for
from dashboard.connections.models import ONELOGIN, SCIM
from dashboard.connections.onelogin import APP_USERS_PAGE, USERS_PAGE
from dashboard.connections.vault import SecretUnreadable
from dashboard.extensions import db
from dashboard.person import Person
from dashboard.setup import service as setup
from dashboard.setup import template as scim_template
from dashboard.sync import planner


class NotReady(Exception):
    """Something the sync needs is missing or failing; the message says what to do."""


class Refused(Exception):
    """The request is understood but not done as asked (exit code 3 on the command line)."""


class AlreadyDone(Exception):
    """Nothing to send: what was asked is already so (exit code 0)."""


class OverBudget(Refused, NotReady):
    """A plan would need more of OneLogin's hourly API budget than is left above the reserve.
    Refused (exit code 3: wait for the reset, or lower DASHBOARD_ONELOGIN_RESERVE), and a
    NotReady too, so that whoever shows a plan's NotReady shows it as it is."""


def clients():
    """The OneLogin and SCIM clients, and the Workato app's id; NotReady when missing."""
    if connections.get(ONELOGIN) is None or connections.get(SCIM) is None:
        raise NotReady("Save the OneLogin and Workato SCIM connections on Connections first.")
    onelogin, app_id = onelogin_client()
    return onelogin, scim_client(), app_id


def onelogin_client():
    """The OneLogin client alone (role fields and access live there), and the app's id."""
    onelogin = connections.get(ONELOGIN)
    if onelogin is None:
        raise NotReady("Save the OneLogin connection on Connections first.")
    if not onelogin.app_id:
        raise NotReady("Save the Workato app's id in OneLogin on Connections first.")
    try:
        return client_for(onelogin), onelogin.app_id
    except SecretUnreadable as exc:
        raise NotReady(f"{exc} Save the secret again on Connections.") from None


def scim_client():
    """The SCIM client alone (acting in Workato while OneLogin is unreachable)."""
    scim = connections.get(SCIM)
    if scim is None:
        raise NotReady("Save the Workato SCIM connection on Connections first.")
    try:
        return client_for(scim)
    except SecretUnreadable as exc:
        raise NotReady(f"{exc} Save the secret again on Connections.") from None


def scim_json_template() -> dict[str, Any]:
    """The stored SCIM JSON template (or the default one), parsed; NotReady when unusable."""
    stored = setup.current_template()
    body = stored.body if stored else scim_template.default_template(setup.role_fields())
    try:
        return scim_template.parse(body)
    except scim_template.TemplateUnreadable as exc:
        raise NotReady(f"The stored SCIM template cannot be used: {exc}") from None


def unrendered_role_fields() -> list[str]:
    """The role fields the SCIM template does not send: values there never reach Workato
    (the checklist's "SCIM JSON template" item says how to add them)."""
    try:
        block = scim_json_template().get(planner.WORKATO_ROLE)
    except NotReady:
        return []  # the template is unusable: the checklist and the sync say so already
    sent = set(block) if isinstance(block, dict) else set()
    return [f for f in setup.role_fields() if f not in sent]


def require_scim_enabled() -> None:
    scim = connections.get(SCIM)
    if scim is not None and not scim.enabled:
        raise Refused("SCIM is disabled on Connections: re-enable it before running a sync.")


# --- OneLogin's API budget --------------------------------------------------------------


def plan_calls(users: int, app_users: int) -> int:
    """The OneLogin calls a plan's reads make (sources.read_onelogin): the app, its users in
    pages of APP_USERS_PAGE, and every user in pages of USERS_PAGE."""
    return 1 + math.ceil(max(app_users, 1) / APP_USERS_PAGE) + math.ceil(max(users, 1) / USERS_PAGE)


def require_budget_for_plan(onelogin) -> None:
    """OverBudget when the plan's reads would need more OneLogin calls than are left above
    the reserve, said before any of them is made. The budget is asked afresh (GET
    /auth/rate_limit, which OneLogin does not count); the users are counted with one call
    (Total-Count), and not even that when the people the database knows already need more.
    When OneLogin cannot say, the plan goes ahead: its calls are paced by the budget anyway."""
    share = current_app.extensions["dashboard.settings"].DASHBOARD_ONELOGIN_RESERVE
    known = db.session.execute(
        select(func.count(Person.onelogin_id), func.count().filter(Person.has_app.is_(True)))
    ).one()
    db.session.commit()  # nothing stays open while OneLogin answers
    try:
        figures = onelogin.rate_limit()
        left, users = figures.left(share), known[0]
        if plan_calls(users, known[1]) <= left:
            users = max(onelogin.count_users() or 0, users)
            left = max(0, left - 1)
    except errors.ConnectionProblem as problem:
        if problem.kind == OVER_BUDGET:
            onelogin.close()
            raise OverBudget(str(problem)) from None
        return  # the plan's own reads say what is wrong
    needed = plan_calls(users, known[1])
    if needed > left:
        now = onelogin.budget.budget.now() if onelogin.budget else figures.seen_at
        onelogin.close()  # not used: the plan stops here
        raise OverBudget(
            f"A plan needs about {needed} OneLogin API calls (the app, then its users and all "
            f"{users} OneLogin users page by page). {shortage(left, share, figures.resets_at, now)}"
            ". Preview again then, or lower DASHBOARD_ONELOGIN_RESERVE."
        )
