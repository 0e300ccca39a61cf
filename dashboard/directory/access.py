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
from dashboard.directory.models import Person
from dashboard.extensions import db
from dashboard.sync import one_user
from dashboard.sync import service as sync

REMOVE_APP, DEACTIVATE, DELETE = METHODS = ("remove_app", "deactivate", "delete")
SUSPENDED = 2  # OneLogin's user status
SEARCH_LIMIT = 20
SEARCH_FIELDS = ("email", "firstname", "lastname", "username")


class AccessRefused(Exception):
    """Not done; the message says why and what would do."""


@dataclass
class Done:
    """What a grant or a removal did: in OneLogin, then in Workato."""

    onelogin: str  # what changed in OneLogin, in words
    result: one_user.OneUser | None = None  # the reconciliation's steps
    workato: str = ""  # why Workato was not reconciled, when it was not

    @property
    def ok(self) -> bool:
        return self.result is not None and self.result.ok


@dataclass(frozen=True)
class Candidate:
    """A OneLogin user who may be given the app."""

    onelogin_id: int
    name: str
    email: str
    status: int | None


def app_roles() -> list[dict]:
    """The OneLogin roles that grant the Workato app (id, name)."""
    onelogin, app_id = sync.onelogin_client()
    try:
        with onelogin:
            return sorted(onelogin.app_roles(app_id), key=lambda r: r["name"].casefold())
    except errors.ConnectionProblem as problem:
        raise AccessRefused(str(problem)) from None


def search(text: str) -> list[Candidate]:
    """OneLogin users whose email, first name, last name or username contains `text`, less
    those the last sync saw with the app."""
    text = text.strip().replace("*", "")
    if len(text) < 2:
        return []
    onelogin, _app_id = sync.onelogin_client()
    found: dict[int, Candidate] = {}
    try:
        with onelogin:
            for name in SEARCH_FIELDS:
                for user in onelogin.users(**{name: f"*{text}*"}):
                    found.setdefault(user["id"], _candidate(user))
                    if len(found) >= SEARCH_LIMIT * 2:
                        break
    except errors.ConnectionProblem as problem:
        raise AccessRefused(str(problem)) from None
    if not found:
        return []
    holding = set(
        db.session.scalars(
            select(Person.onelogin_id).where(
                Person.onelogin_id.in_(list(found)), Person.has_app.is_(True)
            )
        )
    )
    ordered = sorted(found.values(), key=lambda c: (c.name.casefold(), c.email.casefold()))
    return [c for c in ordered if c.onelogin_id not in holding][:SEARCH_LIMIT]


def grant(onelogin_id: int, role_id: int, actor: str) -> Done:
    """Add the user to a role that grants the app, then provision them now."""
    one_user.require_no_run("give access")
    onelogin, app_id = sync.onelogin_client()
    try:
        with onelogin:
            roles = {r["id"]: r["name"] for r in onelogin.app_roles(app_id)}
            if role_id not in roles:
                raise AccessRefused(
                    "That OneLogin role does not grant the Workato app: choose one that does."
                )
            user = onelogin.user(onelogin_id)
            onelogin.add_to_role(role_id, [onelogin_id])
    except errors.ConnectionProblem as problem:
        _audit("access.grant", actor, str(onelogin_id), "failed", {"error": str(problem)})
        raise AccessRefused(str(problem)) from None
    who = user.get("email") or user.get("username") or str(onelogin_id)
    _audit("access.grant", actor, who, "success", {"role": roles[role_id]})
    done = Done(f"Added to the OneLogin role {roles[role_id]}, which grants the Workato app.")
    return _reconcile(done, who, actor, None)


def deprovision(person: Person, method: str, actor: str, typed_email: str = "") -> Done:
    """Remove the person's access in OneLogin the chosen way, then reconcile them so their
    Workato account is suspended. Raises AccessRefused before changing anything when the
    method cannot apply."""
    if method not in METHODS:
        raise AccessRefused(f"Unknown way to remove access: {method}.")
    if person.onelogin_id is None:
        raise AccessRefused(
            "OneLogin does not know this user: suspend them in Workato directly instead."
        )
    expected = (person.email or person.user_name).casefold()
    if method == DELETE and typed_email.strip().casefold() != expected:
        raise AccessRefused(
            f"Type {person.email or person.user_name} to confirm deleting them in OneLogin."
        )
    one_user.require_no_run("remove access")
    onelogin, app_id = sync.onelogin_client()
    who = person.email or person.user_name
    try:
        with onelogin:
            said, details = _remove(onelogin, app_id, person.onelogin_id, method)
    except errors.ConnectionProblem as problem:
        _audit(f"access.{method}", actor, who, "failed", {"error": str(problem)})
        raise AccessRefused(str(problem)) from None
    _audit(f"access.{method}", actor, who, "success", details)
    return _reconcile(Done(said), who, actor, (person.onelogin_id, person.user_name))


def _remove(onelogin, app_id: int, user_id: int, method: str) -> tuple[str, dict]:
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
            "deactivate the user."
        )
    for role in granting:
        onelogin.remove_from_role(role["id"], [user_id])
    names = [r["name"] for r in granting]
    return f"Removed from the OneLogin role{'s' if len(names) > 1 else ''} {', '.join(names)}.", {
        "roles": names
    }


def _reconcile(done: Done, who: str, actor: str, known: tuple[int, str] | None) -> Done:
    try:
        done.result = one_user.provision(who, actor, known=known)
    except (sync.NotReady, sync.Refused) as exc:
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
