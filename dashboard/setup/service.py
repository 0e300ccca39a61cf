"""Running the checklist, recording confirmations, storing the SCIM template.

Pages read the stored results (`checklist()`); only `run()` calls OneLogin and Workato.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import datetime

from flask import current_app
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from dashboard import audit
from dashboard.connections import errors
from dashboard.connections import service as connections
from dashboard.connections.clients import ONE_TRY, client_for
from dashboard.connections.models import ONELOGIN, SCIM, WORKATO_API
from dashboard.connections.service import TITLES
from dashboard.connections.vault import SecretUnreadable
from dashboard.extensions import db
from dashboard.person import Person
from dashboard.setup import facts as gathered
from dashboard.setup import template as scim_template
from dashboard.setup.checks import (
    BY_ID,
    CANNOT_CHECK,
    FAILING,
    ITEMS,
    NEEDS_CONFIRMATION,
    VERIFIED,
    Context,
    Item,
    Outcome,
)
from dashboard.setup.models import CheckResult, Confirmation, ScimTemplate
from dashboard.timeutil import utcnow


@dataclass(frozen=True)
class ItemResult:
    id: str
    group: str
    title: str
    state: str
    message: str
    checked_at: datetime | None
    manual: bool
    confirmed_by: str | None = None
    confirmed_at: datetime | None = None

    def as_json(self) -> dict:
        document = asdict(self)
        for key in ("checked_at", "confirmed_at"):
            document[key] = document[key].isoformat() if document[key] else None
        return document


SCIM_DISABLED = "SCIM is disabled on Connections; re-enable it there to check this."


def _people_states() -> dict[str, int]:
    rows = db.session.execute(db.select(Person.state, db.func.count()).group_by(Person.state))
    return {state: n for state, n in rows}


def _settings():
    return current_app.extensions["dashboard.settings"]


def role_fields() -> list[str]:
    return list(_settings().DASHBOARD_ROLE_FIELDS)


def current_template() -> ScimTemplate | None:
    return db.session.scalar(db.select(ScimTemplate).order_by(ScimTemplate.id.desc()).limit(1))


def save_template(body: str, actor: str) -> list[str]:
    """Store a template that parses (else TemplateUnreadable); its remaining problems."""
    parsed = scim_template.parse(body)
    db.session.add(ScimTemplate(body=body, saved_by=actor, saved_at=utcnow()))
    problems = scim_template.problems(parsed, role_fields())
    audit.record(
        "setup.template_saved", actor=actor, outcome="success", details={"problems": problems}
    )
    db.session.commit()
    return problems


def _fetchers_and_presets(groups: set[str]):
    """Clients for the groups the items need; Missing facts for what is not configured."""
    fetchers, preset = {}, {}
    stored = connections.all_by_kind()

    def missing(fact: str, message: str) -> None:
        preset[fact] = gathered.Missing(message)

    def client_or_missing(kind: str, fact: str):
        connection = stored[kind]
        if connection is None or not connection.has_secret:
            missing(fact, f"Configure the {TITLES[kind]} on Connections first.")
            return None
        try:
            return client_for(connection, retry=ONE_TRY)
        except SecretUnreadable as exc:
            # Not "cannot check": monitoring must see that every live check is dead.
            preset[fact] = errors.ConnectionProblem("secret_unreadable", TITLES[kind], str(exc))
            return None

    if "onelogin" in groups and (client := client_or_missing(ONELOGIN, "onelogin_reachable")):
        fetchers["onelogin"] = gathered.onelogin_facts(
            client, stored[ONELOGIN].app_id, role_fields()
        )
    if "scim" in groups:
        if stored[SCIM] is not None and not stored[SCIM].enabled:
            missing("scim_reachable", SCIM_DISABLED)
        elif client := client_or_missing(SCIM, "scim_reachable"):
            fetchers["scim"] = gathered.scim_facts(client)
    if "workato_api" in groups and (client := client_or_missing(WORKATO_API, "workato_roles")):
        fetchers["workato_api"] = gathered.workato_roles_facts(client)
    return fetchers, preset


def run(item_ids: list[str] | None = None) -> list[ItemResult]:
    """Check the items (all by default) now, store and return the outcomes."""
    items = [BY_ID[i] for i in item_ids] if item_ids else list(ITEMS)
    groups = {group for item in items for group in item.facts}
    fetchers, preset = _fetchers_and_presets(groups)
    facts = gathered.gather(fetchers, _settings().DASHBOARD_CHECK_TIMEOUT_SECONDS, preset)
    _note_connections(facts, fetchers)
    template = current_template()
    context = Context(
        role_fields=role_fields(),
        known_roles_fallback=list(_settings().DASHBOARD_KNOWN_ROLES),
        template_body=template.body if template else None,
        people_states=_people_states(),
    )
    now = utcnow()
    scim_disabled = _scim_disabled()
    for item in items:
        # While SCIM is disabled checklist() says so; storing that would outlive re-enabling.
        if not item.manual and not (scim_disabled and "scim" in item.facts):
            _store(item.id, _evaluate(item, facts, context), now)
    db.session.commit()
    wanted = {item.id for item in items}
    return [r for r in checklist() if r.id in wanted]


GROUP_CONNECTION = {"onelogin": ONELOGIN, "scim": SCIM, "workato_api": WORKATO_API}


def _note_connections(facts: gathered.Facts, fetchers: dict) -> None:
    """Each connection the check called, as it answered: the Overview shows it as checked
    (not "Not tested"), and the alerts and metrics see a connection go down."""
    now = utcnow()
    for group in fetchers:
        _title, gate = gathered.SERVICES[group]
        answer = facts.get(gate)
        if isinstance(answer, gathered.Missing):
            continue
        kind = GROUP_CONNECTION[group]
        if gathered.absent(answer):
            connections.note_health(kind, False, answer.message, now)
        else:
            url = connections.get(kind).base_url
            connections.note_health(kind, True, f"Answered a setup check at {url}.", now)


def _evaluate(item: Item, facts: gathered.Facts, context: Context) -> Outcome:
    try:
        return item.check(facts, context)
    except Exception as exc:  # a check must end in an outcome, whatever a service sent
        return Outcome(
            FAILING,
            f"A service answered, but not as expected ({type(exc).__name__}"
            "); test the connections, and check their base URLs.",
        )


def _store(item_id: str, outcome: Outcome, now) -> None:
    """Insert or update in one statement: two re-checks at once must not collide."""
    values = {
        "item_id": item_id,
        "state": outcome.state,
        "message": outcome.message,
        "checked_at": now,
    }
    insert = _dialect_insert()(CheckResult).values(**values)
    db.session.execute(insert.on_conflict_do_update(index_elements=["item_id"], set_=values))


def _dialect_insert():
    name = db.session.get_bind().dialect.name
    return {"postgresql": postgresql_insert, "sqlite": sqlite_insert}[name]


def _scim_disabled() -> bool:
    scim = connections.get(SCIM)
    return scim is not None and not scim.enabled


def checklist() -> list[ItemResult]:
    """Every item with its last stored outcome; no remote call."""
    stored = {r.item_id: r for r in db.session.scalars(db.select(CheckResult))}
    confirmed = {c.item_id: c for c in db.session.scalars(db.select(Confirmation))}
    scim_disabled = _scim_disabled()
    results = []
    for item in ITEMS:
        if scim_disabled and "scim" in item.facts:
            # Shown as it is now, not as the last check before it was disabled.
            results.append(
                ItemResult(
                    item.id, item.group, item.title, CANNOT_CHECK, SCIM_DISABLED, None, False
                )
            )
            continue
        results.append(_result(item, stored.get(item.id), confirmed.get(item.id)))
    return results


def _result(item: Item, stored: CheckResult | None, confirmation: Confirmation | None):
    if item.manual:
        if confirmation is None:
            return ItemResult(
                item.id,
                item.group,
                item.title,
                NEEDS_CONFIRMATION,
                "No API can show this: check it in OneLogin, then confirm it here.",
                None,
                True,
            )
        return ItemResult(
            item.id,
            item.group,
            item.title,
            VERIFIED,
            f"Confirmed by {confirmation.confirmed_by}.",
            confirmation.confirmed_at,
            True,
            confirmation.confirmed_by,
            confirmation.confirmed_at,
        )
    if stored is None:
        return ItemResult(
            item.id, item.group, item.title, "cannot_check", "Not checked yet.", None, False
        )
    return ItemResult(
        item.id, item.group, item.title, stored.state, stored.message, stored.checked_at, False
    )


class NotConfirmable(ValueError):
    pass


def _manual(item_id: str) -> Item:
    item = BY_ID.get(item_id)
    if item is None or not item.manual:
        raise NotConfirmable(f"“{item_id}” is not an item an admin confirms.")
    return item


def confirm(item_id: str, actor: str) -> None:
    _manual(item_id)
    insert = _dialect_insert()(Confirmation.__table__).values(
        item_id=item_id, confirmed_by=actor, confirmed_at=utcnow()
    )
    # Two admins confirming at once: the first confirmation stands, audited once.
    inserted = db.session.execute(
        insert.on_conflict_do_nothing().returning(Confirmation.__table__.c.item_id)
    ).first()
    if inserted is not None:
        audit.record("setup.confirmed", actor=actor, outcome="success", details={"item": item_id})
    db.session.commit()


def withdraw(item_id: str, actor: str) -> None:
    _manual(item_id)
    confirmation = db.session.get(Confirmation, item_id)
    if confirmation is None:
        return
    was_confirmed_by = confirmation.confirmed_by
    # One statement, so that two withdrawals at once delete (and audit) once.
    deleted = db.session.execute(
        db.delete(Confirmation).where(Confirmation.item_id == item_id)
    ).rowcount
    if deleted:
        audit.record(
            "setup.confirmation_withdrawn",
            actor=actor,
            outcome="success",
            details={"item": item_id, "was_confirmed_by": was_confirmed_by},
        )
    db.session.commit()


def values_to_paste() -> dict[str, str | None]:
    scim = connections.get(SCIM)
    return {
        "scim_base_url": scim.base_url if scim else None,
        "schema_urn": scim_template.WORKATO_ROLE,
        "extension_block": json.dumps(
            {scim_template.WORKATO_ROLE: scim_template.extension_block(role_fields())}, indent=2
        )[1:-1].strip(),
        "template": scim_template.default_template(role_fields()),
    }
