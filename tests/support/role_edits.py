"""What the role-edit tests (tests/role_edits/) share: the people they edit (the world of
tests/role_edits/conftest.py is the one `populate` makes), how an admin's browser posts the
forms, and what OneLogin, Workato and the audit table then hold."""

from __future__ import annotations

import html
import io
import re

from sqlalchemy import select

from dashboard.audit.models import AuditEntry
from dashboard.extensions import db
from dashboard.sync import runner, service
from tests.support import forms
from tests.support.signin import ADMIN_EMAIL
from tests.support.sync_world import roles_of

ADMIN = ADMIN_EMAIL  # who admin_client is signed in as, and so the actor audited
FIELDS = ("workato_role", "workato_role_test", "workato_role_prod")
WRITES = "set_custom_attributes"  # the OneLogin call that writes role fields

JONAS = "jonas.weber@example.com"
RUI = "rui.costa@example.com"
KWAME = "kwame.mensah@example.com"
MAYA = "maya.chen@example.com"
LIN = "lin.chen@example.com"

CONFIGURED = "the configured roles (DASHBOARD_KNOWN_ROLES)"
VALID = "Valid roles: Admin, Analyst, Operator."

BULK = "/users/roles/bulk"

HEADER = "email,workato_role,workato_role_test,workato_role_prod"
MIXED = "\n".join(
    [
        HEADER,
        f"{RUI},Operator,,",  # 2: good
        "nobody@example.com,Admin,,",  # 3: unknown email
        f"{KWAME.upper()},analyst,,",  # 4: wrong case (the email's case does not matter)
        f"{MAYA},,Developer,",  # 5: unknown role
        f"{JONAS},,-,",  # 6: `-` clears workato_role_test; empty leaves workato_role
        f"{LIN},,,",  # 7: all empty: no change
        "",
    ]
)


# --- the world ---------------------------------------------------------------------------


def populate(world) -> None:
    """Jonas holds the wrong case, Rui an unknown role, Kwame none, Maya valid roles (all
    four in Workato); Lin is OneLogin's only, not provisioned yet."""
    world.jonas = world.person("Jonas", "Weber", workato_role="admin", workato_role_test="Analyst")
    world.add_workato_user(JONAS, workato_role="admin", workato_role_test="Analyst")
    world.rui = world.person("Rui", "Costa", workato_role="Developer")
    world.add_workato_user(RUI, workato_role="Developer")
    world.kwame = world.person("Kwame", "Mensah")
    world.add_workato_user(KWAME)
    world.maya = world.person("Maya", "Chen", workato_role="Analyst", workato_role_test="Operator")
    world.add_workato_user(MAYA, workato_role="Analyst", workato_role_test="Operator")
    world.lin = world.person("Lin", "Chen", workato_role="Operator")


def sync(app) -> None:
    """Preview and apply a sync, worked here."""
    with app.app_context():
        run, _plan = service.make_plan(ADMIN)
        if run.total:
            service.apply(run.id, ADMIN, start=False)
            runner.process(run.id)


def plan(app) -> None:
    with app.app_context():
        service.make_plan(ADMIN)


# --- what the admin's browser sends and reads ---------------------------------------------


def post(client, url: str, htmx: bool = True, **data):
    """As a browser with htmx posts the forms here."""
    return forms.post(client, url, htmx, **data)


def upload(client, text: str, name: str = "roles.csv"):
    """The import page's file form, as a browser sends it."""
    data = {
        "csrf_token": forms.token(client),
        "file": (io.BytesIO(text.encode()), name, "text/csv"),
    }
    return client.post("/users/roles/import", data=data, content_type="multipart/form-data")


def text_of(body: str) -> str:
    """The page's text, tags dropped and whitespace folded, for reading messages."""
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", body))).strip()


def previewed_csv(body: str) -> str:
    """The file the import preview's Apply button sends back."""
    found = re.search(r'<input type="hidden" name="csv" value="([^"]*)">', body)
    assert found, body
    return html.unescape(found.group(1))


# --- what OneLogin, Workato and the audit table hold ---------------------------------------


def onelogin_roles(world, email: str) -> dict[str, str | None]:
    """The role fields OneLogin holds for the user now."""
    user = next(u for u in world.tenant.users.values() if u.email == email)
    return {f: user.custom_attributes.get(f) for f in FIELDS}


def everyone_in_onelogin(world) -> dict[str, dict[str, str | None]]:
    return {u.email: onelogin_roles(world, u.email) for u in world.tenant.users.values()}


def onelogin_writes(world) -> list[str]:
    return [line for line in world.tenant.log if WRITES in line]


def workato_roles(world, email: str) -> dict[str, str]:
    return roles_of(world.workato_user(email))


def role_edits(app) -> list[dict]:
    """The roles.edit audit entries, oldest first."""
    with app.app_context():
        entries = db.session.scalars(
            select(AuditEntry).where(AuditEntry.action == "roles.edit").order_by(AuditEntry.id)
        )
        return [
            {
                "actor": e.actor,
                "outcome": e.outcome,
                "user": e.target_user,
                "details": e.details,
            }
            for e in entries
        ]


def success(user: str, changes: dict, workato: str = "at the next sync") -> dict:
    """The roles.edit entry a confirmed change leaves."""
    return {
        "actor": ADMIN,
        "outcome": "success",
        "user": user,
        "details": {"changes": changes, "workato": workato},
    }


def refused(user: str | None, users: int, **details) -> dict:
    """The roles.edit entry a refused edit leaves: `user` for one user, None for several;
    `details` is problems={field: message} or error=message."""
    return {
        "actor": ADMIN,
        "outcome": "refused",
        "user": user,
        "details": {**details, "users": users},
    }
