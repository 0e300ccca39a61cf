"""Start-up: a broken SAML configuration stops the server with a clear message; commands
that serve no pages work without one; demo routes exist only in demo mode."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from saml2.mdstore import MetadataStore

from dashboard import create_app
from dashboard.settings import ConfigError, Settings
from tests.support.pysaml_idp import make_key_pair

ROOT = Path(__file__).resolve().parent.parent


def flask_cli(*args: str, env: dict[str, str], timeout: int = 120) -> subprocess.CompletedProcess:
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SAML_", "DASHBOARD_")) and k not in ("DATABASE_URL", "SECRET_KEY")
    }
    return subprocess.run(
        [sys.executable, "-m", "flask", "--app", "app", *args],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture
def bare_env(tmp_path: Path) -> dict[str, str]:
    return {
        "DASHBOARD_INSTANCE_PATH": str(tmp_path / "instance"),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}",
    }


def test_db_upgrade_works_without_any_saml_configuration(bare_env, tmp_path):
    result = flask_cli("db", "upgrade", env=bare_env)
    assert result.returncode == 0, result.stderr
    with sqlite3.connect(tmp_path / "cli.db") as conn:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
    assert {"accounts", "audit", "login_sessions", "saml_requests"} <= tables


def test_flask_run_refuses_to_start_without_saml_configuration(bare_env):
    result = flask_cli("run", "--port", "0", env=bare_env)
    assert result.returncode == 1
    assert "SAML_SP_BASE_URL is not set" in result.stderr
    assert "Traceback" not in result.stderr


def test_flask_run_names_the_broken_metadata_file(bare_env, tmp_path):
    broken = tmp_path / "idp.xml"
    broken.write_text("<html>this is the login page, not metadata</html>")
    env = {
        **bare_env,
        "SAML_SP_BASE_URL": "https://dash.example.com",
        "SAML_IDP_METADATA_FILE": str(broken),
        "SAML_ADMIN_VALUES": "Admins",
    }
    result = flask_cli("run", "--port", "0", env=env)
    assert result.returncode == 1
    assert f"SAML_IDP_METADATA_FILE='{broken}' lacks the IdP entity id" in result.stderr


def settings(**values) -> Settings:
    base = {
        "SECRET_KEY": "k",
        "DATABASE_URL": "sqlite://",
        "SAML_SP_BASE_URL": "https://d.example",
        "SAML_ADMIN_VALUES": "Admins",
    }
    return Settings(**{**base, **values})


def test_missing_metadata_file_setting_is_explained(tmp_path):
    with pytest.raises(ConfigError, match="SAML_IDP_METADATA_FILE is not set"):
        create_app(settings(), instance_path=str(tmp_path))


def test_unreadable_metadata_file_is_explained(tmp_path):
    with pytest.raises(ConfigError, match="cannot be read"):
        create_app(
            settings(SAML_IDP_METADATA_FILE=tmp_path / "nope.xml"), instance_path=str(tmp_path)
        )


def test_metadata_that_is_not_xml_is_explained(tmp_path):
    path = tmp_path / "idp.xml"
    path.write_text("not xml at all")
    with pytest.raises(ConfigError, match="is not SAML metadata XML"):
        create_app(settings(SAML_IDP_METADATA_FILE=path), instance_path=str(tmp_path))


def test_metadata_without_a_signing_certificate_is_explained(tmp_path, idp_metadata_file):
    text = idp_metadata_file.read_text()
    start, end = text.index("<ns0:KeyDescriptor"), text.index("</ns0:KeyDescriptor>")
    path = tmp_path / "idp.xml"
    path.write_text(text[:start] + text[end + len("</ns0:KeyDescriptor>") :])
    with pytest.raises(ConfigError, match="lacks a signing certificate"):
        create_app(settings(SAML_IDP_METADATA_FILE=path), instance_path=str(tmp_path))


def test_no_admin_values_is_explained(tmp_path, idp_metadata_file):
    with pytest.raises(ConfigError, match="SAML_ADMIN_VALUES is empty"):
        create_app(
            settings(SAML_IDP_METADATA_FILE=idp_metadata_file, SAML_ADMIN_VALUES=""),
            instance_path=str(tmp_path),
        )


def test_base_url_must_be_a_url(tmp_path, idp_metadata_file):
    with pytest.raises(ConfigError, match="is not a base URL"):
        create_app(
            settings(SAML_IDP_METADATA_FILE=idp_metadata_file, SAML_SP_BASE_URL="dash"),
            instance_path=str(tmp_path),
        )


def test_sp_cert_without_key_is_explained(tmp_path, idp_metadata_file):
    with pytest.raises(ConfigError, match="both SAML_SP_CERT_FILE and SAML_SP_KEY_FILE"):
        create_app(
            settings(SAML_IDP_METADATA_FILE=idp_metadata_file, SAML_SP_CERT_FILE=idp_metadata_file),
            instance_path=str(tmp_path),
        )


def test_comma_separated_values_are_split():
    parsed = settings(SAML_ADMIN_VALUES="IT Admins, Security ,", SAML_VIEWER_VALUES="Helpdesk")
    assert parsed.SAML_ADMIN_VALUES == ["IT Admins", "Security"]
    assert parsed.SAML_VIEWER_VALUES == ["Helpdesk"]


def test_sp_metadata_is_valid_for_an_independent_parser(client, app):
    response = client.get("/saml/metadata")
    assert response.status_code == 200
    assert response.mimetype == "application/samlmetadata+xml"
    store = MetadataStore(attrc=None, config=None)
    store.load("inline", response.get_data(as_text=True))
    entity = "http://localhost/saml/metadata"
    acs = store.assertion_consumer_service(entity)
    assert [a["location"] for a in acs] == ["http://localhost/saml/acs"]
    assert acs[0]["binding"] == "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"
    slo = store.single_logout_service(
        entity, binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect", typ="spsso"
    )
    assert [s["location"] for s in slo] == ["http://localhost/saml/sls"]


class TestSignedRequests:
    @pytest.fixture
    def app(self, make_app, tmp_path):
        key, cert = make_key_pair(tmp_path, "sp")
        return make_app(SAML_SP_CERT_FILE=cert, SAML_SP_KEY_FILE=key)

    def test_sp_key_signs_authn_requests_and_appears_in_metadata(self, app, client, idp):
        metadata = client.get("/saml/metadata").get_data(as_text=True)
        assert "KeyDescriptor" in metadata and 'AuthnRequestsSigned="true"' in metadata
        location = client.get("/saml/login").location
        assert "Signature=" in location and "SigAlg=" in location
        # pysaml2 verifies the signature with the certificate from our metadata.
        from urllib.parse import parse_qs, urlsplit

        query = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
        request = idp.server.parse_authn_request(
            query["SAMLRequest"],
            "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect",
            relay_state=query.get("RelayState"),
            sigalg=query["SigAlg"],
            signature=query["Signature"],
        )
        assert request.message.id


def test_sandbox_routes_do_not_exist_outside_demo_mode(client, app):
    assert not [r for r in app.url_map.iter_rules() if r.rule.startswith("/sandbox")]
    assert client.get("/sandbox/idp/sso").status_code == 404


def test_secret_key_file_is_created_private_and_reused(tmp_path, idp_metadata_file):
    values = {"SECRET_KEY": None, "SAML_IDP_METADATA_FILE": idp_metadata_file}
    first = create_app(settings(**values), instance_path=str(tmp_path))
    second = create_app(settings(**values), instance_path=str(tmp_path))
    assert first.config["SECRET_KEY"] == second.config["SECRET_KEY"]
    assert len(first.config["SECRET_KEY"]) >= 40
    assert (tmp_path / "secret_key").stat().st_mode & 0o777 == 0o600


def test_a_malformed_setting_stops_the_start_naming_the_variable(bare_env):
    env = {**bare_env, "DASHBOARD_ROLE_FIELDS": "workato_role,workato-role-prod"}
    result = flask_cli("run", "--port", "0", env=env)
    assert result.returncode == 1
    assert "Invalid setting: DASHBOARD_ROLE_FIELDS" in result.stderr
    assert "workato-role-prod" in result.stderr and "Traceback" not in result.stderr


def test_commands_that_serve_no_pages_do_not_start_the_demo_sandbox(bare_env, tmp_path):
    """`flask db upgrade` in demo mode skips seeding the OneLogin and Workato stand-ins."""
    result = flask_cli("db", "upgrade", env={**bare_env, "DASHBOARD_DEMO": "1"})
    assert result.returncode == 0, result.stderr
    instance = tmp_path / "instance"
    assert (instance / "demo-idp" / "metadata.xml").exists()  # sign-in still configured
    assert not (instance / "sandbox-credentials.json").exists()


# --- safe defaults (issue 13) -------------------------------------------------------------


@pytest.mark.parametrize(
    "base_url", ["https://dashboard.example.com", "http://0.0.0.0:5000", "http://10.0.0.5:5000"]
)
def test_demo_mode_refuses_to_start_on_a_base_url_others_can_reach(tmp_path, base_url):
    """Its identity provider signs anyone in as an admin."""
    with pytest.raises(ConfigError, match="DASHBOARD_DEMO is on, but SAML_SP_BASE_URL") as found:
        create_app(
            settings(DASHBOARD_DEMO=True, SAML_SP_BASE_URL=base_url), instance_path=str(tmp_path)
        )
    assert f"({base_url}) is not a loopback address" in found.value.message
    assert not (tmp_path / "demo-idp").exists()  # refused before the demo IdP was made


def test_flask_run_in_demo_mode_on_a_public_base_url_stops_naming_dashboard_demo(bare_env):
    env = {**bare_env, "DASHBOARD_DEMO": "1", "SAML_SP_BASE_URL": "https://dash.example.com"}
    result = flask_cli("run", "--port", "0", env=env)
    assert result.returncode == 1
    assert "DASHBOARD_DEMO is on, but SAML_SP_BASE_URL" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "base_url",
    [None, "http://127.0.0.1:5000", "http://localhost:5000", "http://[::1]:8080"],
)
def test_demo_mode_starts_on_a_loopback_base_url(base_url):
    settings(DASHBOARD_DEMO=True, SAML_SP_BASE_URL=base_url).refuse_public_demo()


def test_demo_mode_answers_this_machine_only(make_app):
    """Also when the server listens on every interface, which the base URL cannot say."""
    app = make_app(DASHBOARD_DEMO=True, SAML_IDP_METADATA_FILE=None)
    client = app.test_client()
    remote = client.get("/", environ_base={"REMOTE_ADDR": "203.0.113.9"})
    assert remote.status_code == 403
    assert "DASHBOARD_DEMO" in remote.get_data(as_text=True)
    assert (
        client.get("/sandbox/idp/sso", environ_base={"REMOTE_ADDR": "203.0.113.9"}).status_code
        == 403
    )
    assert client.get("/").status_code == 302  # from 127.0.0.1: on to sign-in


def test_an_existing_instance_folder_and_database_are_made_private(tmp_path, idp_metadata_file):
    instance = tmp_path / "instance"
    instance.mkdir()
    instance.chmod(0o755)
    database = instance / "dashboard.db"
    database.touch()
    database.chmod(0o644)
    create_app(
        settings(DATABASE_URL=None, SAML_IDP_METADATA_FILE=idp_metadata_file),
        instance_path=str(instance),
    )
    assert instance.stat().st_mode & 0o777 == 0o700
    assert database.stat().st_mode & 0o777 == 0o600


def test_a_new_sqlite_database_is_created_private(bare_env, tmp_path):
    result = flask_cli("db", "upgrade", env=bare_env)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "instance").stat().st_mode & 0o777 == 0o700
    for made in tmp_path.glob("cli.db*"):  # with its -wal and -shm files, if left
        assert made.stat().st_mode & 0o777 == 0o600, made


def test_a_missing_audit_signing_key_file_stops_the_start(tmp_path, idp_metadata_file):
    missing = tmp_path / "nope.pem"
    with pytest.raises(ConfigError, match=r"DASHBOARD_AUDIT_SIGNING_KEY_FILE names .*nope\.pem"):
        create_app(
            settings(
                SAML_IDP_METADATA_FILE=idp_metadata_file, DASHBOARD_AUDIT_SIGNING_KEY_FILE=missing
            ),
            instance_path=str(tmp_path),
        )


def test_an_audit_signing_key_that_is_not_ed25519_stops_the_start(tmp_path, idp_metadata_file):
    rsa_key, _cert = make_key_pair(tmp_path, "sp")
    with pytest.raises(ConfigError, match="is not an unencrypted Ed25519 private key"):
        create_app(
            settings(
                SAML_IDP_METADATA_FILE=idp_metadata_file, DASHBOARD_AUDIT_SIGNING_KEY_FILE=rsa_key
            ),
            instance_path=str(tmp_path),
        )


@pytest.mark.parametrize(
    "name, value",
    [
        ("SECRET_KEY", "REPLACE-ME"),
        ("DATABASE_URL", "postgresql://dashboard:REPLACE-ME@db.example.com/dashboard"),
        ("DASHBOARD_METRICS_TOKEN", "REPLACE-ME"),
        ("DASHBOARD_SMTP_URL", "smtp://alerts%40example.com:REPLACE-ME@smtp.example.com:587"),
    ],
)
def test_a_placeholder_left_from_the_env_example_stops_the_start(monkeypatch, name, value):
    """deploy/dashboard.env.example's REPLACE-ME, copied and not filled in, is a key anyone can
    guess: refused, naming the setting and never its value."""
    from dashboard.settings import ConfigError, load

    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as refused:
        load()
    assert name in refused.value.message and "REPLACE-ME: fill it in" in refused.value.message
    assert "example.com" not in refused.value.message
