"""The demo tenant: a Workato app provisioned over SCIM, a few hundred people, a few problems.

The Workato app is a SAML app (auth_method 2) with provisioning enabled. Its parameters
`workato_role`, `workato_role_test` and `workato_role_prod` map to the custom user fields of
the same short names. People get the app through the "Workato Users" and "Workato Admins"
roles. All addresses are @example.com.

Seeded problems, for the dashboard's checklist and sync to find and an admin to fix:

1. The `workato_role_prod` parameter is not included in the SAML assertion, so Workato never
   sees production roles at sign-in (fix: tick "Include in SAML assertion").
2. Jonas Weber's `workato_role` is "admin": Workato role names are case-sensitive ("Admin").
3. Kwame Mensah has the app but no `workato_role` at all.
4. OneLogin's own provisioning failed for Aiko Tanaka, and a change for Lucas Moreau waits
   for an approval that no API can give.
5. Rui Costa's `workato_role` is "Developer", which is no Workato role.

Besides these named people, `crowd()` adds a few hundred generated ones (a fixed random
seed, so every demo is the same): mostly assigned the app with ordinary roles, some
suspended, some removed from the app after they were provisioned (and still active in
Workato: OneLogin never sent the suspension), some assigned but never provisioned.

Not problems, but states a real tenant has: Elena Petrova is suspended (status 2) and still
holds the app; Noah Williams and Omar Haddad were removed from the app (the events say so);
Hannah Schmidt never had it.

Event type ids 1-5 and their names are OneLogin's (its API docs), and so are 14, 17, 21 and
32, which the simulator logs for changes made through its API or console; the provisioning
ones are illustrative, as DESIGN.md says to confirm names through /api/1/events/types.
"""

from __future__ import annotations

import itertools
import random
from datetime import UTC, datetime, timedelta

from dashboard.sandbox.onelogin import App, OneLoginState, Parameter

WORKATO_APP_ID = 1849201
SLACK_APP_ID = 1849202
DEMO_CLIENT_ID = "demo-onelogin-client"
DEMO_CLIENT_SECRET = "demo-onelogin-secret"  # noqa: S105  (the demo's, published on purpose)
ROLE_FIELDS = ("workato_role", "workato_role_test", "workato_role_prod")
START = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)  # when the history below begins

EVENT_TYPES = (
    (1, "APP_ADDED_TO_ROLE", "App %app% added to role %role%"),
    (2, "APP_REMOVED_FROM_ROLE", "App %app% removed from role %role%"),
    (3, "USER_ASSUMED_USER", "%actor_user% assumed %user%"),
    (4, "USER_ASSIGNED_ROLE", "Assigned %role% to user %user%"),
    (5, "USER_LOGGED_INTO_ONELOGIN", "%user% logged into OneLogin"),
    # Logged by the simulator for changes made through its API or console (onelogin.py).
    (14, "USER_UPDATED", "%actor_user% updated %user%"),
    (17, "USER_DELETED", "%actor_user% deleted %user%"),
    (21, "USER_SUSPENDED", "%actor_user% suspended %user%"),
    (32, "USER_REACTIVATED", "%actor_user% reactivated %user%"),
    (25, "USER_PROVISIONED_IN_APP", "%user% was created in %app%"),
    (26, "USER_PROVISIONING_FAILED_IN_APP", "Creating %user% in %app% failed"),
    (51, "USER_UPDATED_IN_APP", "%user% was updated in %app%"),
    (53, "USER_SUSPENDED_IN_APP", "%user% was suspended in %app%"),
    (54, "PROVISIONING_PENDING_APPROVAL", "A change to %user% in %app% awaits approval"),
    (55, "USER_REMOVED_FROM_ROLE", "Removed %role% from user %user%"),
)
ASSIGNED, PROVISIONED, FAILED, SUSPENDED_IN_APP, PENDING = 4, 25, 26, 53, 54
REMOVED_FROM_ROLE = 55

# first, last, (workato_role, _test, _prod), status, roles held, OneLogin provisioning
PEOPLE = (
    ("Maya", "Chen", ("Admin", "Admin", "Admin"), 1, ("Workato Admins", "Workato Users"), None),
    ("Liam", "O'Connor", ("Analyst", "Analyst", "Analyst"), 1, ("Workato Users",), None),
    ("Priya", "Raman", ("Admin", "Operator", "Operator"), 1, ("Workato Users",), None),
    ("Jonas", "Weber", ("admin", "Analyst", "Analyst"), 1, ("Workato Users",), None),
    ("Sofia", "Alvarez", ("Operator", "Operator", "Operator"), 1, ("Workato Users",), None),
    ("Kwame", "Mensah", (None, None, None), 1, ("Workato Users",), None),
    ("Elena", "Petrova", ("Analyst", "Analyst", None), 2, ("Workato Users",), "suspended"),
    ("Noah", "Williams", ("Operator", "Operator", "Operator"), 1, (), "removed"),
    ("Aiko", "Tanaka", ("Analyst", "Analyst", "Analyst"), 1, ("Workato Users",), "failed"),
    ("Omar", "Haddad", ("Analyst", None, None), 1, (), "removed"),
    ("Grace", "Kim", ("Operator", "Analyst", "Analyst"), 1, ("Workato Users",), None),
    ("Lucas", "Moreau", ("Analyst", "Analyst", "Operator"), 1, ("Workato Users",), "pending"),
    ("Hannah", "Schmidt", (None, None, None), 1, (), "never"),
    ("Rui", "Costa", ("Developer", "Analyst", "Analyst"), 1, ("Workato Users",), None),
)
CROWD_SIZE = 300
FIRST_NAMES = (
    "Ada",
    "Ben",
    "Carla",
    "Dev",
    "Emma",
    "Felix",
    "Gita",
    "Hugo",
    "Ines",
    "Jack",
    "Kai",
    "Lena",
    "Marco",
    "Nina",
    "Oscar",
    "Paula",
    "Quinn",
    "Rosa",
    "Sam",
    "Tara",
    "Umar",
    "Vera",
    "Wei",
    "Xena",
    "Yusuf",
    "Zoe",
    "Arjun",
    "Bea",
    "Chloe",
    "Diego",
)
LAST_NAMES = (
    "Adams",
    "Baker",
    "Costa",
    "Dubois",
    "Evans",
    "Fischer",
    "Garcia",
    "Hansen",
    "Ito",
    "Jensen",
    "Kowalski",
    "Larsen",
    "Meyer",
    "Novak",
    "Okafor",
    "Patel",
    "Quint",
    "Rossi",
    "Silva",
    "Torres",
)
# workato_role, _test and _prod: the usual shapes of a workspace's roles.
ROLE_MIXES = (
    (("Operator", "Operator", "Operator"), 40),
    (("Analyst", "Analyst", "Analyst"), 30),
    (("Analyst", "Operator", "Operator"), 15),
    (("Operator", "Analyst", None), 10),
    (("Admin", "Admin", "Admin"), 5),
)
PROVISIONING = {
    "suspended": ("provisioned", "disabled"),
    "failed": ("provisioning_failed", "enabling_failed"),
    "pending": ("modifying_pending_approval", "enabled"),
}


def workato_app() -> App:
    def role_field(short: str, label: str, in_assertion: bool = True) -> Parameter:
        return Parameter(label, f"custom_attribute_{short}", in_assertion, True)

    parameters = {
        "scimusername": Parameter("SCIM Username", "email", False),
        "workato_role": role_field("workato_role", "Workato role"),
        "workato_role_test": role_field("workato_role_test", "Workato role (test)"),
        # Seeded problem 1: mapped, but not sent in the SAML assertion.
        "workato_role_prod": role_field("workato_role_prod", "Workato role (prod)", False),
    }
    for number, parameter in enumerate(parameters.values()):
        parameter.id = 5502001 + number
    # The connector id is illustrative: "SAML with SCIM Provisioner (core user 2.0)".
    return App(WORKATO_APP_ID, "Workato", 142735, parameters=parameters)


def seed(state: OneLoginState) -> OneLoginState:
    state.add_credential(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET)
    state.event_types = [{"name": n, "description": d, "id": i} for i, n, d in EVENT_TYPES]
    for short in ROLE_FIELDS:
        state.define_attribute(short, short.replace("_", " ").capitalize())
    state.define_attribute("employee_id", "Employee ID")
    state.apps[WORKATO_APP_ID] = workato_app()
    state.apps[SLACK_APP_ID] = App(SLACK_APP_ID, "Slack", 30641, provisioning_enabled=False)
    roles = {
        name: state.add_role(name, apps, [])
        for name, apps in (
            ("Workato Admins", [WORKATO_APP_ID]),
            ("Workato Users", [WORKATO_APP_ID]),
            ("Employees", [SLACK_APP_ID]),
        )
    }
    for first, last, values, status, held, provisioning in PEOPLE:
        user = state.add_user(first, last, status=status, **_present(values))
        for name in ("Employees", *held):
            roles[name].user_ids.append(user.id)
        if provisioning in PROVISIONING:
            state.provisioning[(user.id, WORKATO_APP_ID)] = PROVISIONING[provisioning]
        _history(state, user.id, f"{first} {last}", provisioning)
    crowd(state, roles["Workato Users"], roles["Employees"])
    return state


def crowd(state: OneLoginState, workato_users, employees, size: int = CROWD_SIZE) -> None:
    """A few hundred ordinary people, the same in every demo."""
    pick = random.Random(2025)  # noqa: S311  (demo data, not security)
    taken = {(first, last) for first, last, *_ in PEOPLE}
    names = [n for n in itertools.product(FIRST_NAMES, LAST_NAMES) if n not in taken]
    mixes, weights = zip(*ROLE_MIXES, strict=True)
    for first, last in pick.sample(names, size):
        fate = pick.choices(
            ("assigned", "suspended", "removed", "never", "employee"), (84, 4, 3, 3, 6)
        )[0]
        values = pick.choices(mixes, weights)[0] if fate != "employee" else (None,) * 3
        user = state.add_user(
            first, last, status=2 if fate == "suspended" else 1, **_present(values)
        )
        employees.user_ids.append(user.id)
        if fate in ("assigned", "suspended", "never"):
            workato_users.user_ids.append(user.id)
        if fate == "suspended":
            state.provisioning[(user.id, WORKATO_APP_ID)] = PROVISIONING["suspended"]
        if fate != "employee":
            _history(state, user.id, f"{first} {last}", fate if fate != "assigned" else None)


def _present(values: tuple[str | None, ...]) -> dict[str, str]:
    return {k: v for k, v in zip(ROLE_FIELDS, values, strict=True) if v is not None}


def _history(state: OneLoginState, user_id: int, name: str, provisioning: str | None) -> None:
    """The events OneLogin would have logged for this person, a minute apart."""
    if provisioning == "never":
        return

    def log(event_type: int, **fields: object) -> None:
        when = START + timedelta(minutes=len(state.events))
        state.add_event(
            event_type,
            created_at=when.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
            user_id=user_id,
            user_name=name,
            app_id=WORKATO_APP_ID,
            **{"app-name": "Workato"},
            **fields,
        )

    log(ASSIGNED, role_name="Workato Users", actor_user_name="Maya Chen")
    if provisioning == "failed":
        log(FAILED, error_description="Workato SCIM answered 409: the user already exists")
        return
    log(PROVISIONED)
    if provisioning == "pending":
        log(PENDING)
    if provisioning == "suspended":
        log(SUSPENDED_IN_APP)
    if provisioning == "removed":
        # Taken out of the role; OneLogin's suspension never reached Workato.
        log(REMOVED_FROM_ROLE, role_name="Workato Users", actor_user_name="Maya Chen")
