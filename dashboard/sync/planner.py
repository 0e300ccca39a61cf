"""The planner: what OneLogin says (desired) against what Workato holds (actual), one
decision per person. A pure function of its inputs: no Flask, no database, no HTTP.

The rules (README, "How the sync decides"), safe by default like OneLogin's own link:
- granted the app and active in OneLogin: create, reactivate, update or nothing;
- granted the app but suspended in OneLogin: suspend in Workato; never created if absent;
- seen with the app in an earlier sync, now without it or deleted in OneLogin: suspend;
- every other active Workato user is an orphan: reported, never touched by a sync.
Users are matched on userName (as the template renders it), ignoring case.

`decide` gives the decisions one at a time, as it makes them, so that a plan of 100,000
people need not hold them (sync.preview writes them as they come); `plan` collects them,
for a plan of a few people.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Container, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import quote

from dashboard.connections.scim_models import WORKATO_ROLE, ScimUser
from dashboard.sync import compare
from dashboard.sync.compact import DECIDED, RENAMED, WorkatoUsers
from dashboard.sync.render import TemplateError, render, without_missing

CREATE, UPDATE, SUSPEND, REACTIVATE, NOOP, ORPHAN = ACTIONS = (
    "create",
    "update",
    "suspend",
    "reactivate",
    "noop",
    "orphan",
)
WRITES = (CREATE, UPDATE, SUSPEND, REACTIVATE)
IN_SYNC, DRIFT, NOT_PROVISIONED, SUSPENDED = "in_sync", "drift", "not_provisioned", "suspended"
PENDING, FAILED, ORPHANED = "pending", "failed", "orphaned"
STATES = (IN_SYNC, DRIFT, NOT_PROVISIONED, SUSPENDED, PENDING, FAILED, ORPHANED)
KNOWN, UNKNOWN = "known", "unknown"  # an orphan: known to OneLogin (without the app) or not

# OneLogin user statuses that mean "no access": 2 suspended (DESIGN.md §2). Locked (3) and
# the password states are temporary and keep the Workato account active.
SUSPENDED_IN_ONELOGIN = frozenset({2})


@dataclass(frozen=True, slots=True)  # slots: a plan may hold 100,000 of them
class Decision:
    key: str  # userName, case-folded: the match key
    user_name: str
    action: str
    state: str
    reason: str
    onelogin_id: int | None = None
    onelogin_status: int | None = None
    has_app: bool = False
    scim_id: str | None = None
    workato_active: bool | None = None
    email: str | None = None
    display_name: str = ""
    roles: dict[str, str | None] = field(default_factory=dict)
    changes: dict[str, list[Any]] = field(default_factory=dict)
    desired: dict[str, Any] | None = None  # the rendered resource, None where unset
    request: dict[str, Any] | None = None  # method, path and body of the write
    danger: str | None = None
    orphan_kind: str | None = None
    error: str | None = None
    had_app_before: bool = False  # seen with the app in an earlier plan (people.had_app)

    def as_json(self) -> dict[str, Any]:
        keys = (
            "user_name",
            "action",
            "state",
            "reason",
            "onelogin_id",
            "scim_id",
            "email",
            "changes",
            "request",
            "danger",
            "orphan_kind",
            "error",
        )
        return {k: getattr(self, k) for k in keys}


@dataclass
class Plan:
    decisions: list[Decision]
    counts: dict[str, int]

    @property
    def writes(self) -> list[Decision]:
        return [d for d in self.decisions if d.action in WRITES]

    def count(self, action: str) -> int:
        return self.counts[action]


def plan(
    template: Mapping[str, Any],
    onelogin_users: Iterable[Mapping[str, Any]],
    app_user_ids: set[int],
    parameters: Mapping[str, Mapping[str, Any]],
    workato_users: Iterable[ScimUser],
    had_app: Mapping[int, str],
    *,
    patch: bool,
    role_fields: tuple[str, ...] = (),
) -> Plan:
    """Every decision, sorted by key, for a plan of a few (one user, a re-check at Apply);
    a full plan takes `decide`'s decisions as they come instead. Raises TemplateError."""
    decided = decide(
        template,
        onelogin_users,
        app_user_ids,
        parameters,
        WorkatoUsers.of(workato_users, template, patch=patch),
        dict(had_app),
        patch=patch,
        role_fields=role_fields,
    )
    # Only a write needs its rendered resource later: a no-op's is let go.
    ordered = sorted(
        (
            d if d.action in WRITES or d.desired is None else replace(d, desired=None)
            for d in decided
        ),
        key=lambda d: d.key,
    )
    counts = Counter(d.action for d in ordered)
    return Plan(ordered, {a: counts.get(a, 0) for a in ACTIONS})


def decide(
    template: Mapping[str, Any],
    onelogin_users: Iterable[Mapping[str, Any]],
    app_user_ids: Container[int],
    parameters: Mapping[str, Mapping[str, Any]],
    workato: WorkatoUsers,
    had_app: dict[int, str],
    *,
    patch: bool,
    role_fields: tuple[str, ...] = (),
) -> Iterator[Decision]:
    """One decision per person, each as soon as it is made: OneLogin's users in the order
    given, then the people deleted in OneLogin, then the Workato users nobody claimed. Keeps
    only the match's bookkeeping, never a decision. `had_app` (OneLogin id -> the key seen
    with the app in an earlier plan) is used up: an entry goes once its user is seen.
    `role_fields` are the OneLogin custom attributes each decision reports as the person's
    roles (what an admin edits), whether or not the template renders them; without, the
    rendered ones. Raises TemplateError, when first asked, if the template cannot be
    rendered for anyone."""
    from dashboard.sync.render import check

    check(template, parameters)
    decided: set[str] = set()  # keys decided that Workato does not hold (it marks its own)
    known: dict[str, _Known] = {}  # a OneLogin username, email or userName -> its user

    for user in onelogin_users:
        user_id = user["id"]
        earlier = had_app.pop(user_id, None)
        desired = render(template, user, parameters)
        has_app = user_id in app_user_ids
        if has_app or earlier is not None:
            yield _match(user, has_app, earlier, desired, workato, decided, patch, role_fields)
        # Only the names an orphan may still be looked up by are kept; the first user wins.
        aliases = (user.get("username"), user.get("email"), desired.get("userName"))
        wanted = {a.casefold() for a in aliases if isinstance(a, str) and a}
        wanted = {a for a in wanted if a not in known and workato.wants_alias(a)}
        if wanted:
            label = _display(user) or str(user.get("username") or user.get("email"))
            who = _Known(user_id, user.get("status"), label, has_app or earlier is not None)
            known.update(dict.fromkeys(wanted, who))

    for user_id, key in had_app.items():  # not seen in OneLogin: deleted there
        if key in workato and not workato.marks(key) & DECIDED:
            workato.mark(key, DECIDED)
            yield _decide_deleted(user_id, workato.get(key), patch)

    claimed: set[int] = set()
    for seen in workato.unmarked():
        yield _decide_unmatched(seen, known, claimed)


@dataclass(frozen=True, slots=True)
class _Known:
    """A OneLogin user an orphan may turn out to be."""

    id: int
    status: int | None
    label: str  # their name, else their username or email
    decided: bool  # decided for in their own right (they hold or held the app)


def _match(
    user: Mapping[str, Any],
    has_app: bool,
    earlier: str | None,
    desired: dict[str, Any],
    workato: WorkatoUsers,
    decided: set[str],
    patch: bool,
    role_fields: tuple[str, ...],
) -> Decision:
    """The decision for a OneLogin user who holds or held the app, marking what it takes."""
    had = earlier is not None
    name = desired.get("userName")
    if not isinstance(name, str) or not name:
        failed = _unrenderable(user, has_app, had=had)
    elif (key := name.casefold()) in decided or workato.marks(key) & DECIDED:
        failed = _unrenderable(user, has_app, clash=name, had=had)
    else:
        seen = None if workato.marks(key) & RENAMED else workato.get(key)
        if seen is None and earlier and earlier != key and earlier in workato:
            # Renamed in OneLogin (a new email, say): the same person, so the same Workato
            # account, whose userName the update changes (DESIGN.md §6: keyed by OneLogin id).
            seen = workato.get(earlier)
            workato.mark(earlier, RENAMED)
        if key in workato:
            workato.mark(key, DECIDED)
        else:
            decided.add(key)
        return _decide_known(user, has_app, desired, seen, patch, role_fields, had)
    decided.add(failed.key)
    return failed


def _decide_known(
    user: Mapping[str, Any],
    has_app: bool,
    desired: dict[str, Any],
    workato: ScimUser | None,
    patch: bool,
    role_fields: tuple[str, ...] = (),
    had: bool = False,
) -> Decision:
    status = user.get("status")
    suspended = status in SUSPENDED_IN_ONELOGIN
    base = _person(user, desired, has_app, workato, role_fields) | {"had_app_before": had}
    if not has_app:
        if workato is None or not workato.active:
            return Decision(**base, action=NOOP, state=SUSPENDED, reason="No longer has the app.")
        return _suspend(
            base,
            workato,
            patch,
            "No longer has the Workato app in OneLogin.",
            "Active in Workato although OneLogin no longer grants the app.",
        )
    if suspended:
        if workato is None:
            return Decision(
                **base,
                action=NOOP,
                state=SUSPENDED,
                reason="Suspended in OneLogin and never provisioned: not created.",
            )
        if not workato.active:
            return Decision(**base, action=NOOP, state=SUSPENDED, reason="Suspended on both sides.")
        return _suspend(
            base,
            workato,
            patch,
            "Suspended in OneLogin.",
            "Active in Workato although suspended in OneLogin.",
        )
    if workato is None:
        body = {**without_missing(desired), "active": True}
        return Decision(
            **base,
            action=CREATE,
            state=NOT_PROVISIONED,
            reason="Has the app in OneLogin; not in Workato yet.",
            request={"method": "POST", "path": "/Users", "body": body},
        )
    changes = compare.differences(desired, workato.raw)
    if not workato.active:
        changes = {"active": [False, True], **changes}
        return Decision(
            **base,
            action=REACTIVATE,
            state=DRIFT,
            reason="Active in OneLogin but suspended in Workato.",
            changes=changes,
            request=write_request(workato, desired, changes, patch),
        )
    if changes:
        return Decision(
            **base,
            action=UPDATE,
            state=DRIFT,
            reason="Workato holds other values than OneLogin.",
            changes=changes,
            request=write_request(workato, desired, changes, patch),
        )
    return Decision(**base, action=NOOP, state=IN_SYNC, reason="In sync.")


def _decide_deleted(user_id: int, workato: ScimUser, patch: bool) -> Decision:
    base = _workato_person(workato) | {"onelogin_id": user_id, "had_app_before": True}
    if not workato.active:
        return Decision(**base, action=NOOP, state=SUSPENDED, reason="Deleted in OneLogin.")
    return _suspend(
        base,
        workato,
        patch,
        "Deleted in OneLogin.",
        "Active in Workato although the user was deleted in OneLogin.",
    )


def _suspend(base: dict, workato: ScimUser, patch: bool, reason: str, danger: str) -> Decision:
    """The one way a sync suspends: `active: false`, flagged as dangerous until done."""
    return Decision(
        **base,
        action=SUSPEND,
        state=DRIFT,
        reason=reason,
        changes={"active": [True, False]},
        request=active_request(workato, False, patch),
        danger=danger,
    )


def _decide_unmatched(
    workato: ScimUser, known_names: Mapping[str, _Known], claimed: set[int]
) -> Decision:
    base = _workato_person(workato)
    aliases = [workato.user_name, workato.primary_email]
    match = next(
        (known_names[a.casefold()] for a in aliases if a and a.casefold() in known_names), None
    )
    known = None
    if match is not None:
        known = match.label
        # One OneLogin user, one person (shown on their page): not one decided for already.
        if not match.decided and match.id not in claimed:
            claimed.add(match.id)
            base |= {"onelogin_id": match.id, "onelogin_status": match.status}
        if match.status in SUSPENDED_IN_ONELOGIN:
            known += " (suspended in OneLogin)"
    kind = KNOWN if known else UNKNOWN
    if not workato.active:
        return Decision(
            **base,
            action=NOOP,
            state=SUSPENDED,
            reason="Suspended in Workato; not granted the app.",
            orphan_kind=kind,
        )
    if known:
        return Decision(
            **base,
            action=ORPHAN,
            state=ORPHANED,
            reason=f"Known to OneLogin as {known}; not granted the Workato app.",
            orphan_kind=KNOWN,
            danger=(
                f"Active in Workato, but {known} does not have the Workato app in OneLogin: "
                "possibly a leaver removed before the dashboard existed. Suspend if so."
            ),
        )
    return Decision(
        **base,
        action=ORPHAN,
        state=ORPHANED,
        reason="Not known to OneLogin (for example the workspace owner). Left alone.",
        orphan_kind=UNKNOWN,
    )


def _unrenderable(
    user: Mapping[str, Any], has_app: bool, clash: str | None = None, *, had: bool = False
) -> Decision:
    if clash:
        error = f'The template renders userName "{clash}" for two OneLogin users.'
    else:
        error = "The template renders no userName for this user (is the mapped field empty?)."
    return Decision(
        key=f"#onelogin-{user['id']}",
        user_name=str(user.get("email") or user.get("username") or user["id"]),
        action=NOOP,
        state=FAILED,
        reason=error,
        onelogin_id=user["id"],
        onelogin_status=user.get("status"),
        has_app=has_app,
        email=user.get("email"),
        display_name=_display(user),
        error=error,
        had_app_before=had,
    )


def _person(
    user: Mapping[str, Any],
    desired: dict[str, Any],
    has_app: bool,
    workato: ScimUser | None,
    role_fields: tuple[str, ...],
) -> dict[str, Any]:
    name = desired["userName"]
    if role_fields:
        held = user.get("custom_attributes") or {}
        roles = {f: held.get(f) or None for f in role_fields}
    else:
        roles = dict(desired.get(WORKATO_ROLE) or {})
    return {
        "key": name.casefold(),
        "user_name": name,
        "onelogin_id": user["id"],
        "onelogin_status": user.get("status"),
        "has_app": has_app,
        "scim_id": workato.id if workato else None,
        "workato_active": workato.active if workato else None,
        "email": user.get("email"),
        "display_name": _display(user),
        "roles": roles,
        "desired": desired,
    }


def _workato_person(workato: ScimUser) -> dict[str, Any]:
    name = workato.name or {}
    return {
        "key": workato.user_name.casefold(),
        "user_name": workato.user_name,
        "scim_id": workato.id,
        "workato_active": workato.active,
        "email": workato.primary_email,
        "display_name": " ".join(
            str(p) for p in (name.get("givenName"), name.get("familyName")) if p
        ),
        "roles": dict(workato.roles),
    }


def user_path(scim_id: str) -> str:
    return "/Users/" + quote(scim_id, safe="")


def _display(user: Mapping[str, Any]) -> str:
    return " ".join(str(p) for p in (user.get("firstname"), user.get("lastname")) if p)


def write_request(
    workato: ScimUser, desired: dict[str, Any], changes: dict[str, list[Any]], patch: bool
) -> dict[str, Any]:
    path = user_path(workato.id)
    if patch:
        return {
            "method": "PATCH",
            "path": path,
            "body": compare.patch_body(compare.patch_operations(changes)),
        }
    body = {**without_missing(desired), "id": workato.id, "active": True}
    return {"method": "PUT", "path": path, "body": body}


def active_request(workato: ScimUser, active: bool, patch: bool) -> dict[str, Any]:
    """The request that suspends (`active: false`) or reactivates a Workato user, changing
    nothing else."""
    path = user_path(workato.id)
    if patch:
        operations = [{"op": "replace", "path": "active", "value": active}]
        return {"method": "PATCH", "path": path, "body": compare.patch_body(operations)}
    # meta and groups are read-only (RFC 7643 §4.1): they do not belong in a PUT.
    body = {k: v for k, v in workato.raw.items() if k not in ("meta", "groups")}
    return {"method": "PUT", "path": path, "body": {**body, "active": active}}


__all__ = ["Decision", "Plan", "TemplateError", "plan"]  # TemplateError: for callers
