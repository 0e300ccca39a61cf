"""The deployment files in deploy/ (issue 16) are what the README says: systemd accepts
each unit, gunicorn accepts the web unit's command line and loads app:app with it, and the
settings example names only real settings, loads as the app's settings, and holds no secret.

The units expect the dashboard checked out in /opt/dashboard, and `systemd-analyze verify`
wants each ExecStart program to exist: the tests check a copy of the units in which
/opt/dashboard/.venv/bin is the virtualenv running the tests and /opt/dashboard is this
checkout. Without systemd-analyze those tests are skipped, with the reason, except under
CI=true, where they fail (as the PostgreSQL pass does).
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import typing
from pathlib import Path

import pytest
from pydantic import SecretStr

from dashboard.settings import ConfigError, Settings, load

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
INSTALL = "/opt/dashboard"  # where the units expect the checkout
UNITS = ("dashboard-migrate.service", "dashboard-web.service", "dashboard-worker.service")
ENV_EXAMPLE = DEPLOY / "dashboard.env.example"
PLACEHOLDER = "REPLACE-ME"
# NAME=value or NAME="value": the part of systemd's EnvironmentFile syntax the example uses
# (no $, backslash or single quote, whose meaning differs between readers).
ENV_LINE = re.compile(
    r'(?P<name>[A-Z][A-Z0-9_]*)=(?:"(?P<quoted>[^"\\$`]*)"|(?P<plain>[^"\'\\$`]*))'
)
# What a production install must set (README, "Running in production").
PRODUCTION = {
    "DATABASE_URL",
    "DASHBOARD_INSTANCE_PATH",
    "SECRET_KEY",
    "DASHBOARD_ENCRYPTION_KEY",
    "DASHBOARD_AUDIT_SIGNING_KEY_FILE",
    "SAML_SP_BASE_URL",
    "SAML_IDP_METADATA_FILE",
    "SAML_ADMIN_VALUES",
    "SAML_VIEWER_VALUES",
    "DASHBOARD_SYNC_EXECUTOR",
    "DASHBOARD_RATELIMIT_STORAGE_URL",
    "DASHBOARD_PROXY_COUNT",
    "DASHBOARD_ALERT_WEBHOOK_URL",
    "DASHBOARD_SMTP_URL",
    "DASHBOARD_METRICS_TOKEN",
}


def systemd_analyze() -> str:
    found = shutil.which("systemd-analyze")
    if found is None:
        message = "systemd-analyze is not installed (Debian's systemd package has it)"
        if os.environ.get("CI") == "true":
            pytest.fail(message + " (CI=true: the unit checks are required)")
        pytest.skip(message)
    return found


def here(unit_text: str) -> str:
    """A unit as installed from this checkout, with the virtualenv running the tests."""
    venv_bin = str(Path(sys.executable).parent)
    return unit_text.replace(f"{INSTALL}/.venv/bin", venv_bin).replace(INSTALL, str(ROOT))


@pytest.fixture(scope="module")
def units_here(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("units")
    for name in UNITS:
        (folder / name).write_text(here((DEPLOY / name).read_text()))
    return folder


def verify(unit: Path) -> list[str]:
    """What systemd-analyze verify says about the unit (and the units it names of ours):
    an error or a warning each, nothing when it accepts them."""
    result = subprocess.run(
        [systemd_analyze(), "verify", "--man=no", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    said = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    # Complaints about the machine's own units are not about ours.
    ours = [line for line in said if "dashboard-" in line or str(unit.parent) in line]
    return ours if result.returncode == 0 else [f"exit {result.returncode}", *said]


def directives(unit_text: str, name: str) -> list[str]:
    """The values of a directive, continuation lines joined."""
    joined = unit_text.replace("\\\n", " ")
    return [
        line.split("=", 1)[1].strip() for line in joined.splitlines() if line.startswith(f"{name}=")
    ]


# --- the units ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", UNITS)
def test_systemd_accepts_the_unit(units_here: Path, name: str):
    assert verify(units_here / name) == []


def test_a_unit_systemd_would_not_accept_is_caught(units_here: Path, tmp_path: Path):
    """The check itself can fail: a misspelt hardening option is only a warning to systemd,
    and a program that is not there an error."""
    text = (units_here / "dashboard-worker.service").read_text()
    misspelt = tmp_path / "dashboard-misspelt.service"
    misspelt.write_text(text.replace("ProtectHome=yes", "ProtectHome=yes\nProtectHoem=yes"))
    assert any("ProtectHoem" in line for line in verify(misspelt))
    missing = tmp_path / "dashboard-missing.service"
    missing.write_text(text.replace(str(Path(sys.executable).parent), "/nowhere/bin"))
    assert any("/nowhere/bin/flask" in line for line in verify(missing))


def test_the_web_and_worker_start_after_the_upgrade_and_stop_after_their_own_grace():
    web = (DEPLOY / "dashboard-web.service").read_text()
    worker = (DEPLOY / "dashboard-worker.service").read_text()
    for unit in (web, worker):
        assert "dashboard-migrate.service" in directives(unit, "Requires")
        assert "dashboard-migrate.service" in " ".join(directives(unit, "After"))
        assert directives(unit, "KillSignal") == ["SIGTERM"]
    argv = shlex.split(directives(web, "ExecStart")[0])
    graceful = int(argv[argv.index("--graceful-timeout") + 1])
    # systemd's SIGKILL comes only after gunicorn's own graceful stop has had its time.
    assert int(directives(web, "TimeoutStopSec")[0].removesuffix("s")) > graceful
    assert directives(worker, "ExecStart") == [f"{INSTALL}/.venv/bin/flask --app app sync worker"]


def test_gunicorn_accepts_the_web_units_command_line_and_loads_the_app(
    units_here: Path, tmp_path: Path, idp_metadata_file: Path
):
    argv = shlex.split(
        directives((units_here / "dashboard-web.service").read_text(), "ExecStart")[0]
    )
    # A thread started before the fork would not exist in the workers (app.py starts one).
    assert "--preload" not in argv
    assert "--forwarded-allow-ips" in argv
    env = {
        "PATH": os.environ["PATH"],
        "DATABASE_URL": f"sqlite:///{tmp_path / 'dashboard.db'}",
        "DASHBOARD_INSTANCE_PATH": str(tmp_path / "instance"),
        "DASHBOARD_SYNC_EXECUTOR": "worker",
        "SECRET_KEY": "test-secret-key",
        "SAML_SP_BASE_URL": "https://provisioning.example.com",
        "SAML_IDP_METADATA_FILE": str(idp_metadata_file),
        "SAML_ADMIN_VALUES": "Admins",
    }

    def check(env: dict[str, str]) -> subprocess.CompletedProcess:
        return subprocess.run(
            [*argv, "--check-config"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    checked = check(env)
    assert checked.returncode == 0, checked.stderr
    # --check-config really makes the app: without its SAML settings it stops, saying why.
    unconfigured = check({k: v for k, v in env.items() if k != "SAML_IDP_METADATA_FILE"})
    assert unconfigured.returncode == 1
    assert "SAML_IDP_METADATA_FILE" in unconfigured.stderr


# --- the settings example -------------------------------------------------------------------


def env_example() -> dict[str, str]:
    values: dict[str, str] = {}
    for number, line in enumerate(ENV_EXAMPLE.read_text().splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        match = ENV_LINE.fullmatch(line)
        assert match, f"dashboard.env.example line {number} is not NAME=value: {line!r}"
        assert match["name"] not in values, f"{match['name']} is set twice"
        values[match["name"]] = match["quoted"] if match["quoted"] is not None else match["plain"]
    return values


def documented() -> set[str]:
    """The settings in the README's Configuration tables."""
    readme = (ROOT / "README.md").read_text()
    return {
        name
        for cell in re.findall(r"^\| (`[^|]+)\|", readme, re.M)
        for name in re.findall(r"`([A-Z][A-Z0-9_]+)`", cell)
    }


def test_the_settings_example_names_only_settings_that_exist():
    unknown = set(env_example()) - set(Settings.model_fields) - documented()
    assert unknown == set()


def test_the_settings_example_sets_what_a_production_install_needs():
    assert PRODUCTION - set(env_example()) == set()


def test_the_settings_example_loads_as_the_apps_settings(monkeypatch: pytest.MonkeyPatch):
    """Filled in, the example is what the app loads; left as it is, the start refuses it."""
    for name, value in env_example().items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match="still holds the example's REPLACE-ME"):
        load()
    for name, value in env_example().items():
        monkeypatch.setenv(name, value.replace(PLACEHOLDER, "filled-in-by-the-admin"))
    settings = load()
    assert settings.DASHBOARD_SYNC_EXECUTOR == "worker"
    assert settings.DASHBOARD_PROXY_COUNT == 1
    assert not settings.DASHBOARD_DEMO
    assert settings.session_cookie_secure  # https: Secure cookies, and HSTS from the app
    assert settings.SAML_ADMIN_VALUES == ["Workato Dashboard Admins"]


def test_the_settings_example_holds_placeholders_for_every_secret():
    values = env_example()
    secrets = {
        name
        for name, field in Settings.model_fields.items()
        if SecretStr in (field.annotation, *typing.get_args(field.annotation))
    }
    assert secrets & set(values), "the example sets no secret at all"
    for name in secrets & set(values):
        assert PLACEHOLDER in values[name], name
    assert f":{PLACEHOLDER}@" in values["DATABASE_URL"]  # its password


def test_the_units_and_the_settings_example_agree_on_the_paths():
    values = env_example()
    for name in UNITS:
        unit = (DEPLOY / name).read_text()
        assert directives(unit, "EnvironmentFile") == ["/etc/dashboard/dashboard.env"], name
        assert directives(unit, "WorkingDirectory") == [INSTALL], name
        # systemd makes /var/lib/<StateDirectory> the dashboard user's, and writable.
        assert [f"/var/lib/{d}" for d in directives(unit, "StateDirectory")] == [
            values["DASHBOARD_INSTANCE_PATH"]
        ], name
