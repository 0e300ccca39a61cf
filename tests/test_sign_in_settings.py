"""The sign-in hardening's settings: a wrong value stops the start with the variable named
(and a storage URL's password never repeated)."""

from __future__ import annotations

from pathlib import Path

import pytest

from dashboard.settings import Settings
from tests.test_config import flask_cli


@pytest.fixture
def bare_env(tmp_path: Path) -> dict[str, str]:
    return {
        "DASHBOARD_INSTANCE_PATH": str(tmp_path / "instance"),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}",
    }


@pytest.mark.parametrize(
    ("variable", "value", "said"),
    [
        ("DASHBOARD_SIGNIN_RATE_LIMIT", "lots", "is not a rate limit such as 30/minute"),
        ("DASHBOARD_RATELIMIT_STORAGE_URL", "mysql://:hunter2@db/limits", "'mysql' is not one of"),
    ],
)
def test_a_wrong_sign_in_limit_setting_stops_the_start(bare_env, variable, value, said):
    result = flask_cli("run", "--port", "0", env={**bare_env, variable: value})
    assert result.returncode == 1
    assert f"Invalid setting: {variable}" in result.stderr and said in result.stderr
    assert "hunter2" not in result.stderr and "Traceback" not in result.stderr


def test_role_values_are_not_split_unless_a_delimiter_is_set():
    base = {"SECRET_KEY": "k", "DATABASE_URL": "sqlite://"}
    assert Settings(**base).SAML_ROLE_DELIMITER is None
    assert Settings(**base, SAML_ROLE_DELIMITER="").SAML_ROLE_DELIMITER is None
    assert Settings(**base, SAML_ROLE_DELIMITER=";").SAML_ROLE_DELIMITER == ";"
