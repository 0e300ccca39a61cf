"""Giving and taking away a user's Workato access in OneLogin, then reconciling that one user
at once, so the admin sees the Workato account created or suspended, not "at the next sync".

The walkthrough's ways, each done in OneLogin (the source of truth) and then provisioned:
- grant: add the user to a OneLogin role that grants the Workato app;
- remove app access: take them out of every role that grants it;
- deactivate: set their OneLogin status to suspended (2);
- delete: delete them in OneLogin (the admin types their email to confirm).
Each of the last three ends with the Workato account suspended (`active: false`): never
deleted, so their recipes and connections stay with the team.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from dashboard import audit
from dashboard.connections import errors
from dashboard.extensions import db
from dashboard.person import Person
from dashboard.sync import one_user, readiness

REMOVE_APP, DEACTIVATE, DELETE = METHODS = ("remove_app", "deactivate", "delete")
SUSPENDED = 2  # OneLogin's user status
SEARCH_LIMIT = 20
SEARCH_FIELDS = ("email", "firstname", "lastname", "username")


BAD_INPUT, UPSTREAM = 400, 502  # AccessRefused.status: the request, or OneLogin


class AccessRefused(Exception):
    """Not done (or done only in part, as the message says); the message says why and what
    would do. `status` is the HTTP status a page answers with."""

    def __init__(self, message: str, status: int = 409) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Done:
    """What a grant or a removal did: in OneLogin, then in Workato."""

    onelogin: str  # what changed in OneLogin, in words
    result: one_user.OneUser | None = None  # the reconciliation's steps
    workato: str = ""  # why Workato was not reconciled, when it was not


@dataclass(frozen=True)
class Candidate:
    """A OneLogin user who may be given the app."""

    onelogin_id: int
    name: str
    email: str
    status: int | None


def find(text: str) -> tuple[list[Candidate], list[dict]]:
    """OneLogin users whose email, first name, last name or username contains `text`, less
    those the last sync saw with the app; and the roles that grant the app (id, name). One
    client, and only when asked: the page itself reads nothing from OneLogin."""
    text = text.strip().replace("*", "")
    if len(text) < 2:
        return [], []
    onelogin, app_id = readiness.onelogin_client()
    found: dict[int, Candidate] = {}
    try:
        with onelogin:
            roles = sorted(onelogin.app_roles(app_id), key=lambda r: r["name"].casefold())
            for name in SEARCH_FIELDS:
                for user in onelogin.users(**{name: f"*{text}*"}):
                    found.setdefault(user["id"], _candidate(user))
                    if len(found) >= SEARCH_LIMIT * 2:
                        break
    except errors.ConnectionProblem as problem:
        raise AccessRefused(str(problem), UPSTREAM) from None
    holding = set(
        db.session.scalars(
            select(Person.onelogin_id).where(
                Person.onelogin_id.in_(list(found)), Person.has_app.is_(True)
            )
        )
    )
    ordered = sorted(found.values(), key=lambda c: (c.name.casefold(), c.email.casefold()))
    return [c for c in ordered if c.onelogin_id not in holding][:SEARCH_LIMIT], roles


def grant(onelogin_id: int, role_id: int, actor: str) -> Done:
    """Add the user to a role that grants the app, then provision them now. Raises
    AccessRefused (audited) when the role does not grant the app or OneLogin fails."""
    onelogin, app_id = readiness.onelogin_client()
    who = str(onelogin_id)  # until OneLogin says who this is
    try:
        with onelogin:
            user = onelogin.user(onelogin_id)
            who = user.get("email") or user.get("username") or who
            roles = {r["id"]: r["name"] for r in onelogin.app_roles(app_id)}
            if role_id not in roles:
                message = "That OneLogin role does not grant the Workato app: choose one that does."
                _audit("access.grant", actor, who, "refused", {"error": message})
                raise AccessRefused(message, BAD_INPUT)
            onelogin.add_to_role(role_id, [onelogin_id])
    except errors.ConnectionProblem as problem:
        _audit("access.grant", actor, who, "failed", {"error": str(problem)})
        raise AccessRefused(str(problem), UPSTREAM) from None
    _audit("access.grant", actor, who, "success", {"role": roles[role_id]})
    done = Done(f"Added to the OneLogin role {roles[role_id]}, which grants the Workato app.")
    return _reconcile(done, who, actor, None)


def deprovision(person: Person, method: str, actor: str, typed_email: str = "") -> Done:
    """Remove the person's access in OneLogin the chosen way, then reconcile them so their
    Workato account is suspended (or say why Workato waits for the next sync). Raises
    AccessRefused (audited): before any change for a request that cannot apply, or when
    OneLogin fails, saying what was already changed."""
    who = person.email or person.user_name

    def refuse(message: str, status: int = BAD_INPUT) -> AccessRefused:
        _audit(f"access.{method}", actor, who, "refused", {"error": message})
        return AccessRefused(message, status)

    if method not in METHODS:
        raise refuse(f"Unknown way to remove access: {method}.")
    if person.onelogin_id is None:
        raise refuse(
            "OneLogin does not know this user: suspend them in Workato directly instead.", 409
        )
    if method == DELETE and typed_email.strip().casefold() != who.casefold():
        raise refuse(f"Type {who} to confirm deleting them in OneLogin.")
    onelogin, app_id = readiness.onelogin_client()
    removed: list[str] = []  # roles already left when a later change fails
    try:
        with onelogin:
            said, details = _remove(onelogin, app_id, person.onelogin_id, method, removed)
    except errors.ConnectionProblem as problem:
        message = str(problem)
        if removed:
            message = f"Removed from {', '.join(removed)} only, then: {message}"
        _audit(f"access.{method}", actor, who, "failed", {"error": message, "removed": removed})
        raise AccessRefused(message, UPSTREAM) from None
    except AccessRefused as refused:
        raise refuse(str(refused), refused.status) from None
    _audit(f"access.{method}", actor, who, "success", details)
    return _reconcile(Done(said), who, actor, (person.onelogin_id, person.user_name))


def _remove(
    onelogin, app_id: int, user_id: int, method: str, removed: list[str]
) -> tuple[str, dict]:
    """Make the change in OneLogin; what it did, in words and as audit details. Appends
    each role left to `removed` as it goes."""
    if method == DEACTIVATE:
        onelogin.set_status(user_id, SUSPENDED)
        return "Deactivated in OneLogin (status: suspended).", {"status": "suspended"}
    if method == DELETE:
        try:
            onelogin.delete_user(user_id)
        except errors.ConnectionProblem as problem:
            # A retry after a lost answer finds the user gone: the delete was done.
            if problem.kind != errors.NOT_FOUND:
                raise
        return "Deleted in OneLogin.", {"onelogin_id": user_id}
    held = set(onelogin.user(user_id).get("role_ids") or [])
    granting = [r for r in onelogin.app_roles(app_id) if r["id"] in held]
    if not granting:
        raise AccessRefused(
            "No OneLogin role gives this user the Workato app (it may be assigned to them "
            "directly): remove it in OneLogin under Users > the user > Applications, or "
            "deactivate the user.",
            409,
        )
    for role in granting:
        onelogin.remove_from_role(role["id"], [user_id])
        removed.append(role["name"])
    plural = "s" if len(removed) > 1 else ""
    return f"Removed from the OneLogin role{plural} {', '.join(removed)}.", {"roles": removed}


def _reconcile(done: Done, who: str, actor: str, known: tuple[int, str] | None) -> Done:
    try:
        done.result = one_user.provision(who, actor, known=known)
    except (readiness.NotReady, readiness.Refused) as exc:
        done.workato = f"Workato was not reconciled: {exc} The next sync will do it."
    return done


def _audit(action: str, actor: str, who: str, outcome: str, details: dict) -> None:
    audit.record(action, actor=actor, outcome=outcome, target_user=who, details=details)
    db.session.commit()


def _candidate(user: dict) -> Candidate:
    name = " ".join(p for p in (user.get("firstname"), user.get("lastname")) if p)
    return Candidate(
        user["id"], name or user.get("username") or "", user.get("email") or "", user.get("status")
    )
