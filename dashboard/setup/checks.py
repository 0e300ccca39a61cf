"""The checklist: each step of the vendor walkthrough, in its order and grouping, with a
small check function over the gathered facts. Item ids are stable (JSON, monitoring)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from dashboard.setup import template as scim_template
from dashboard.setup.facts import Facts, Missing, absent
from dashboard.text import did_you_mean

VERIFIED = "verified"
FAILING = "failing"
NEEDS_CONFIRMATION = "needs_confirmation"
CANNOT_CHECK = "cannot_check"

SAML_AUTH_METHOD = 2  # OneLogin's auth_method for SAML 2.0 apps


@dataclass(frozen=True)
class Outcome:
    state: str
    message: str


@dataclass(frozen=True)
class Context:
    """What the checks know besides the facts: configuration and stored values."""

    role_fields: list[str]
    known_roles_fallback: list[str]
    template_body: str | None
    # Provisioning states from the last sync plan or run (people per state); None: no plan.
    people_states: dict[str, int] | None = None


@dataclass(frozen=True)
class Item:
    id: str
    group: str
    title: str
    check: Callable[[Facts, Context], Outcome] | None = None  # None: an admin confirms it
    facts: tuple[str, ...] = ()  # fact groups the check needs

    @property
    def manual(self) -> bool:
        return self.check is None


def _unavailable(value) -> Outcome:
    """An absent fact: not configured -> cannot check; failed or slow -> failing."""
    if isinstance(value, Missing):
        return Outcome(CANNOT_CHECK, value.message)
    return Outcome(FAILING, value.message)


def onelogin_reachable(facts: Facts, ctx: Context) -> Outcome:
    value = facts.get("onelogin_reachable")
    if absent(value):
        return _unavailable(value)
    return Outcome(VERIFIED, "The stored API credential gets a token and reads from OneLogin.")


def _app(facts: Facts):
    return facts.get("onelogin_app")


def app_is_saml(facts: Facts, ctx: Context) -> Outcome:
    app = _app(facts)
    if absent(app):
        return _unavailable(app)
    name = app.get("name") or f"app {app.get('id')}"
    if app.get("auth_method") != SAML_AUTH_METHOD:
        return Outcome(
            FAILING,
            f"“{name}” is not a SAML app (auth_method "
            f"{app.get('auth_method')}). Add the “SAML with SCIM Provisioner (core user "
            "2.0)” app from OneLogin's catalogue and save its id on Connections.",
        )
    return Outcome(VERIFIED, f"“{name}” exists and signs users in with SAML.")


def provisioning_enabled(facts: Facts, ctx: Context) -> Outcome:
    app = _app(facts)
    if absent(app):
        return _unavailable(app)
    if not (app.get("provisioning") or {}).get("enabled"):
        return Outcome(
            FAILING,
            "Provisioning is off. In OneLogin, open the app → Provisioning, "
            "tick “Enable provisioning”, and save.",
        )
    return Outcome(VERIFIED, "Provisioning is enabled on the app.")


def _shortnames(definitions) -> set[str]:
    names = set()
    for definition in definitions:
        if isinstance(definition, str):
            names.add(definition)
        elif isinstance(definition, dict):
            names.add(definition.get("shortname") or definition.get("name") or "")
    return names


def custom_fields_exist(facts: Facts, ctx: Context) -> Outcome:
    definitions = facts.get("custom_fields")
    if absent(definitions):
        return _unavailable(definitions)
    missing = [f for f in ctx.role_fields if f not in _shortnames(definitions)]
    if missing:
        return Outcome(
            FAILING,
            "Missing custom user field(s): " + ", ".join(missing) + ". In "
            "OneLogin, Users → Custom User Fields → New User Field, with exactly these "
            "short names.",
        )
    return Outcome(VERIFIED, "Custom user fields exist: " + ", ".join(ctx.role_fields) + ".")


def _mapped_field(parameter: dict) -> str | None:
    """The custom field short name a parameter takes its value from, if any."""
    mapping = parameter.get("user_attribute_mappings") or ""
    for prefix in ("custom_attribute_", "custom_fields.", "custom_field_"):
        if mapping.startswith(prefix):
            return mapping[len(prefix) :]
    return None


def app_parameters(facts: Facts, ctx: Context) -> Outcome:
    app = _app(facts)
    if absent(app):
        return _unavailable(app)
    parameters = app.get("parameters") or {}
    fixes = []
    for field in ctx.role_fields:
        parameter = parameters.get(field)
        if parameter is None:
            fixes.append(
                f"add a parameter “{field}” (Parameters → +) mapped to the custom field “{field}”"
            )
            continue
        if _mapped_field(parameter) != field:
            fixes.append(
                f"map parameter “{field}” to the custom field “{field}” (it is "
                f"mapped to “{parameter.get('user_attribute_mappings') or 'nothing'}”)"
            )
        if not parameter.get("include_in_saml_assertion"):
            fixes.append(f"tick “Include in SAML assertion” on parameter “{field}”")
    if fixes:
        return Outcome(
            FAILING, "In OneLogin, open the app → Parameters and " + "; ".join(fixes) + "."
        )
    return Outcome(
        VERIFIED,
        "Each role field has a parameter mapped to its custom field and "
        "included in the SAML assertion.",
    )


def scim_accepted(facts: Facts, ctx: Context) -> Outcome:
    value = facts.get("scim_reachable")
    if absent(value):
        return _unavailable(value)
    return Outcome(VERIFIED, "The stored SCIM base URL and token are accepted by Workato.")


def scim_role_schema(facts: Facts, ctx: Context) -> Outcome:
    value = facts.get("scim_role_schema")
    if absent(value):
        return _unavailable(value)
    if value is None:
        return Outcome(
            CANNOT_CHECK,
            "Workato's SCIM API does not publish /Schemas, so whether it "
            "knows the WorkatoRole extension cannot be told from here.",
        )
    if not value:
        return Outcome(
            FAILING,
            f"Workato's SCIM API does not list {scim_template.WORKATO_ROLE}. "
            "Check the SCIM base URL: it must be the one Workato shows.",
        )
    return Outcome(VERIFIED, "Workato's SCIM API knows the WorkatoRole extension.")


def template_maps_roles(facts: Facts, ctx: Context) -> Outcome:
    if ctx.template_body is None:
        return Outcome(
            CANNOT_CHECK,
            "No SCIM JSON template stored yet. Copy it from OneLogin "
            "(app → Configuration → SCIM JSON Template) and paste it below.",
        )
    try:
        parsed = scim_template.parse(ctx.template_body)
    except scim_template.TemplateUnreadable as exc:
        return Outcome(FAILING, str(exc))
    problems = scim_template.problems(parsed, ctx.role_fields)
    if problems:
        return Outcome(FAILING, " ".join(problems) + " Then paste it into OneLogin and here.")
    return Outcome(
        VERIFIED,
        "The template lists the WorkatoRole schema and maps every role field to its custom field.",
    )


def role_values_known(facts: Facts, ctx: Context) -> Outcome:
    values = facts.get("role_values")
    if absent(values):
        return _unavailable(values)
    roles = facts.get("workato_roles")
    source = "Workato's list of roles"
    if absent(roles):
        if not isinstance(roles, Missing):
            return _unavailable(roles)
        roles, source = ctx.known_roles_fallback, "the configured roles (DASHBOARD_KNOWN_ROLES)"
    known = set(roles)
    # Grouped by value: one typo is one user to fix; a value hundreds share is a missing role.
    wrong: dict[str, list[str]] = {}
    for who, fields in sorted(values.items()):
        for field, value in fields.items():
            if value not in known:
                wrong.setdefault(value, []).append(f"{who} ({field})")
    if wrong:
        parts = []
        for value, where in sorted(wrong.items(), key=lambda item: len(item[1])):
            shown = ", ".join(where[:3]) + (f" and {len(where) - 3} more" if len(where) > 3 else "")
            parts.append(f"“{value}”{_did_you_mean(value, roles)}: {shown}")
        return Outcome(
            FAILING,
            f"Role values not in {source} (names are case-sensitive): {'; '.join(parts)}. "
            "Fix them on the users in OneLogin.",
        )
    return Outcome(VERIFIED, f"All {len(values)} assigned users' role values are in {source}.")


def _did_you_mean(value: str, roles: list[str]) -> str:
    meant = did_you_mean(value, roles)
    return f" (did you mean “{meant}”?)" if meant else ""


def users_in_sync(facts: Facts, ctx: Context) -> Outcome:
    """Read from the last plan or run (pages never read the remote APIs for this)."""
    states = ctx.people_states
    if not states:
        return Outcome(CANNOT_CHECK, "Preview a sync on the Sync page to measure this.")
    fine = states.get("in_sync", 0) + states.get("suspended", 0)
    waiting = {
        state: states[state]
        for state in ("not_provisioned", "drift", "pending", "failed")
        if states.get(state)
    }
    if not waiting:
        return Outcome(VERIFIED, f"All {fine} users the app grants are as OneLogin says.")
    listed = ", ".join(f"{n} {state.replace('_', ' ')}" for state, n in waiting.items())
    return Outcome(FAILING, f"{listed}: preview and apply a sync on the Sync page.")


BEFORE = "Before you start"
ONELOGIN_APP = "OneLogin app and provisioning"
WORKATO_SCIM = "Workato SCIM connection"
ROLES = "Role fields"
PROVISION = "Provision users"

ITEMS = (
    Item(
        "data_monitoring",
        BEFORE,
        "Your OneLogin subscription has the Data Monitoring / "
        "Advanced Security & Compliance capability",
    ),
    Item(
        "saml_sso",
        BEFORE,
        "SAML SSO from OneLogin into the Workato workspace is set up and works",
    ),
    Item(
        "onelogin_api",
        BEFORE,
        "The OneLogin API answers with the stored credential",
        onelogin_reachable,
        ("onelogin",),
    ),
    Item(
        "app_saml",
        ONELOGIN_APP,
        "The Workato app exists in OneLogin and uses SAML",
        app_is_saml,
        ("onelogin",),
    ),
    Item(
        "provisioning_enabled",
        ONELOGIN_APP,
        "Provisioning is enabled on the app",
        provisioning_enabled,
        ("onelogin",),
    ),
    Item(
        "deprovision_actions",
        ONELOGIN_APP,
        "“When users are deleted” and “When user accounts are suspended” are both set to Suspend",
    ),
    Item(
        "scim_credentials_in_onelogin",
        ONELOGIN_APP,
        "The SCIM base URL and SCIM bearer token "
        "from Workato are entered in the app's Configuration",
    ),
    Item(
        "scim_api",
        WORKATO_SCIM,
        "The SCIM base URL and token are stored here and accepted by Workato",
        scim_accepted,
        ("scim",),
    ),
    Item(
        "scim_role_schema",
        WORKATO_SCIM,
        "Workato's SCIM API knows the WorkatoRole extension",
        scim_role_schema,
        ("scim",),
    ),
    Item(
        "scim_template",
        WORKATO_SCIM,
        "The SCIM JSON template lists the WorkatoRole schema and maps each role field",
        template_maps_roles,
    ),
    Item(
        "custom_fields",
        ROLES,
        "Custom user fields exist for each role field",
        custom_fields_exist,
        ("onelogin",),
    ),
    Item(
        "app_parameters",
        ROLES,
        "The app has a parameter per role field, mapped to it and included in the SAML assertion",
        app_parameters,
        ("onelogin",),
    ),
    Item(
        "role_values",
        ROLES,
        "Every role value in use is a known Workato role (case matters)",
        role_values_known,
        ("onelogin", "workato_api"),
    ),
    Item(
        "user_provisioning_parameters",
        ROLES,
        "Each role parameter has “Include in User Provisioning” ticked (Parameters → the "
        "parameter)",
    ),
    Item("api_connection", ROLES, "“API connection” is enabled in the app's Configuration"),
    Item("users_in_sync", PROVISION, "Assigned users are in sync with Workato", users_in_sync),
)
BY_ID = {item.id: item for item in ITEMS}
