"""What the demo's Workato workspace holds: everyone OneLogin once provisioned into it, plus
its owner, whom OneLogin never knew. Built from the OneLogin tenant's own history, and
loaded through the SCIM API itself, as OneLogin's connector would have."""

from __future__ import annotations

from werkzeug.test import Client

from dashboard.connections.scim_models import WORKATO_ROLE, build_user
from dashboard.sandbox.onelogin import OneLoginState
from dashboard.sandbox.onelogin_seed import PROVISIONED, ROLE_FIELDS, SUSPENDED_IN_APP

OWNER = {"email": "workspace.owner@example.com", "given": "Workspace", "family": "Owner"}
# Every n-th provisioned person was changed in OneLogin since: Workato holds an older role.
DRIFT_EVERY = 23
# Provisioned, but never accepted Workato's invitation (the walkthrough's troubleshooting
# case: an existing Workato account with the same email).
NOT_JOINED = "grace.kim@example.com"
ENVIRONMENTS = (
    ("workato_role", "dev"),
    ("workato_role_test", "test"),
    ("workato_role_prod", "prod"),
)


def workato_users(state: OneLoginState) -> list[dict]:
    provisioned = [e["user_id"] for e in state.events if e.get("event_type_id") == PROVISIONED]
    suspended = {e["user_id"] for e in state.events if e.get("event_type_id") == SUSPENDED_IN_APP}
    users = []
    for number, user_id in enumerate(dict.fromkeys(provisioned)):
        person = state.users[user_id]
        roles = {f: person.custom_attributes.get(f) for f in ROLE_FIELDS}
        if number % DRIFT_EVERY == DRIFT_EVERY - 1 and roles.get("workato_role"):
            roles["workato_role"] = "Operator" if roles["workato_role"] != "Operator" else "Analyst"
        users.append(
            build_user(
                person.email,
                given_name=person.firstname,
                family_name=person.lastname,
                email=person.email,
                active=user_id not in suspended,
                roles={k: v for k, v in roles.items() if v},
            )
        )
    users.append(
        build_user(
            OWNER["email"],
            given_name=OWNER["given"],
            family_name=OWNER["family"],
            email=OWNER["email"],
            roles={"workato_role": "Admin"},
        )
    )
    return users


def members(users: list[dict]) -> list[dict]:
    """The workspace's members as Workato's developer API lists them: everyone active in
    Workato who accepted the invitation, with their role in each environment."""
    found = []
    for number, user in enumerate(users, start=1):
        email = user["userName"]
        if not user.get("active", True) or email == NOT_JOINED:
            continue
        roles = user.get(WORKATO_ROLE) or {}
        found.append(
            {
                "id": 20000 + number,
                "grant_type": "team",
                "name": " ".join(
                    filter(
                        None,
                        (
                            (user.get("name") or {}).get("givenName"),
                            (user.get("name") or {}).get("familyName"),
                        ),
                    )
                ),
                "email": email,
                "external_id": None,
                "role_name": roles.get("workato_role"),
                "env_roles": [
                    {"environment_type": env, "name": roles[field]}
                    for field, env in ENVIRONMENTS
                    if roles.get(field)
                ],
                "time_zone": "UTC",
            }
        )
    return found


def load(scim_app, token: str, users: list[dict]) -> None:
    client = Client(scim_app)
    headers = {"Authorization": f"Bearer {token}"}
    for user in users:
        response = client.post("/v2/Users", json=user, headers=headers)
        if response.status_code != 201:
            raise RuntimeError(f"the demo's SCIM stand-in refused a seed user: {response.text}")
