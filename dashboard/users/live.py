"""One user as OneLogin and Workato see them right now, read on demand from the user's page
(the one place a page reads the remote APIs; DESIGN.md §6). Each side is read on its own, so
one being down still shows the other, with the problem in words.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from dashboard.connections import errors
from dashboard.connections import service as connections
from dashboard.connections.clients import ONE_TRY, client_for
from dashboard.connections.models import WORKATO_API
from dashboard.connections.vault import SecretUnreadable
from dashboard.person import Person
from dashboard.sync import compare, readiness
from dashboard.sync.render import TemplateError, render
from dashboard.timeutil import utcnow

# Keys a member record may carry for when the person last did something (UNCONFIRMED which
# one Workato sends: shown when present).
ACTIVITY_KEYS = ("last_activity_at", "last_active_at", "last_sign_in_at", "last_login_at")
NOT_SHOWN = ("password",)  # never in a page, should a SCIM server echo one
INVITATION_HINT = (
    "Workato holds the SCIM account, but {who} is not a member of the workspace yet: they "
    "have not accepted the invitation email. If the link in it opens Workato's sign-in page "
    "instead of your workspace, they already have a Workato account with this email: they "
    "should sign in with it (or reset its password), then accept the invitation."
)


@dataclass
class Live:
    read_at: datetime
    onelogin: dict[str, Any] | None = None  # OneLogin's user
    onelogin_problem: str | None = None
    has_app: bool | None = None
    granting_roles: list[str] = field(default_factory=list)
    provisioning: dict[str, str] | None = None  # OneLogin's own state for the app
    role_fields: dict[str, str | None] = field(default_factory=dict)
    workato: dict[str, Any] | None = None  # the SCIM resource, redacted
    workato_problem: str | None = None
    differences: dict[str, list[Any]] = field(default_factory=dict)  # [Workato, OneLogin]
    unrendered: list[str] = field(default_factory=list)  # role fields the template omits
    member: dict[str, Any] | None = None  # Workato's developer API, when connected
    member_problem: str | None = None
    member_checked: bool = False
    hint: str | None = None

    @property
    def last_activity(self) -> str | None:
        member = self.member or {}
        return next((str(member[k]) for k in ACTIVITY_KEYS if member.get(k)), None)


def read(person: Person, role_fields: list[str]) -> Live:
    live = Live(read_at=utcnow(), unrendered=readiness.unrendered_role_fields())
    try:
        onelogin, scim, app_id = readiness.clients()
    except readiness.NotReady as exc:
        live.onelogin_problem = live.workato_problem = str(exc)
        return live
    desired = None
    with onelogin:
        try:
            desired = _onelogin_side(live, onelogin, app_id, person, role_fields)
        except (errors.ConnectionProblem, TemplateError, readiness.NotReady) as problem:
            live.onelogin_problem = str(problem)
    with scim:
        try:
            found = scim.get_user(person.scim_id) if person.scim_id else None
            found = found or scim.find_user(person.user_name)
        except errors.ConnectionProblem as problem:
            live.workato_problem = str(problem)
        else:
            if found is None:
                live.workato_problem = "Workato has no user with this userName."
            else:
                live.workato = {k: v for k, v in found.raw.items() if k not in NOT_SHOWN}
                if desired:
                    live.differences = compare.differences(desired, found.raw)
    _member(live, person)
    return live


def _onelogin_side(live: Live, onelogin, app_id: int, person: Person, role_fields) -> dict | None:
    user = None
    if person.onelogin_id is not None:
        try:
            user = onelogin.user(person.onelogin_id)
        except errors.ConnectionProblem as problem:
            if problem.kind != errors.NOT_FOUND:
                raise
    if user is None:
        live.onelogin_problem = (
            "OneLogin has no such user (deleted there?)."
            if person.onelogin_id is not None
            else "Not known to OneLogin: an orphan, in Workato only."
        )
        return None
    live.onelogin = user
    attributes = user.get("custom_attributes") or {}
    live.role_fields = {f: attributes.get(f) for f in role_fields}
    apps = {a["id"]: a for a in onelogin.user_apps(user["id"])}
    live.has_app = app_id in apps
    if live.has_app:
        app = apps[app_id]
        live.provisioning = {
            k: app[k] for k in ("provisioning_state", "provisioning_status") if app.get(k)
        }
    held = set(user.get("role_ids") or [])
    live.granting_roles = [r["name"] for r in onelogin.app_roles(app_id) if r["id"] in held]
    parameters = dict(onelogin.app(app_id).get("parameters") or {})
    return render(readiness.scim_json_template(), user, parameters)


def _member(live: Live, person: Person) -> None:
    connection = connections.with_secret(WORKATO_API)
    if connection is None:
        return
    live.member_checked = True
    try:
        with client_for(connection, retry=ONE_TRY) as client:
            live.member = client.member(person.email or person.user_name)
    except (errors.ConnectionProblem, SecretUnreadable) as problem:
        live.member_problem = str(problem)
        return
    workato_active = bool(live.workato and live.workato.get("active"))
    if live.member is None and workato_active:
        live.hint = INVITATION_HINT.format(who=person.display_name or person.user_name)
