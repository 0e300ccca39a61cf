"""Fixtures: a fresh app per test, on SQLite and on PostgreSQL, and a pysaml2 IdP.

Who is signed in is said by the fixture a test asks for: `admin_client`, `viewer_client`,
or `client` (nobody). Fixtures only: the helpers tests import live in tests/support/.
"""

from __future__ import annotations

import os
import shutil
import socket
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from flask import Flask
from flask.testing import FlaskClient
from flask_migrate import upgrade

from dashboard import create_app
from dashboard.audit.chain import GENESIS
from dashboard.extensions import db
from dashboard.settings import Settings
from tests.support.pysaml_idp import PysamlIdp
from tests.support.signin import ADMIN_EMAIL, ADMINS, VIEWER_EMAIL, VIEWERS, SignIn

BASE_URL = "http://localhost"
POSTGRES_ADMIN_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://127.0.0.1:5432/postgres")


LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")


@pytest.fixture(autouse=True)
def _no_outbound_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test talks to this machine only: a name anywhere else does not resolve."""
    real = socket.getaddrinfo

    def local_only(host, *args, **kwargs):
        name = host.decode() if isinstance(host, bytes) else host
        if name is None or name in LOCAL_HOSTS or name.startswith("127."):
            return real(host, *args, **kwargs)
        raise socket.gaierror(socket.EAI_NONAME, f"the tests may not reach {name}")

    monkeypatch.setattr(socket, "getaddrinfo", local_only)


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings come from each test, never from the machine running the suite."""
    for name in list(os.environ):
        if name.startswith(("SAML_", "DASHBOARD_")) or name in ("DATABASE_URL", "SECRET_KEY"):
            monkeypatch.delenv(name)


# --- the identity provider -------------------------------------------------------------


@pytest.fixture(scope="session")
def idp_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("idp")


@pytest.fixture(scope="session")
def idp_metadata_file(idp_folder: Path) -> Path:
    path = idp_folder / "idp-metadata.xml"
    path.write_text(PysamlIdp(idp_folder).metadata_xml())
    return path


@pytest.fixture
def idp(idp_folder: Path, idp_metadata_file: Path) -> PysamlIdp:
    """The trusted IdP, which trusts every app the test makes."""
    return PysamlIdp(idp_folder)


# --- the database ------------------------------------------------------------------------


@dataclass
class Database:
    kind: str
    url: str  # for PostgreSQL the test database; for SQLite a migrated template file


def _migrate(url: str, idp_metadata_file: Path, instance: Path) -> None:
    app = create_app(_settings(url, idp_metadata_file), instance_path=str(instance))
    with app.app_context():
        upgrade()
        db.engine.dispose()


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def database(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, idp_metadata_file
) -> Iterator[Database]:
    instance = tmp_path_factory.mktemp("migrate")
    if request.param == "sqlite":
        template = instance / "template.db"
        _migrate(f"sqlite:///{template}", idp_metadata_file, instance)
        yield Database("sqlite", str(template))
        return
    try:
        admin = psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        message = f"PostgreSQL is not reachable at {POSTGRES_ADMIN_URL}: {exc}".strip()
        if os.environ.get("CI") == "true":
            pytest.fail(message + " (CI=true: the PostgreSQL pass is required)")
        pytest.skip(message)
    name = f"dashboard_test_{uuid.uuid4().hex[:12]}"
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        url = POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
        try:
            _migrate(url, idp_metadata_file, instance)
            yield Database("postgresql", url)
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def database_url(database: Database, tmp_path: Path) -> Iterator[str]:
    if database.kind == "sqlite":
        copy = tmp_path / "dashboard.db"
        shutil.copy(database.url, copy)
        yield f"sqlite:///{copy}"
        return
    yield database.url
    # Back to the freshly migrated state: empty tables, and the audit chain's head (the one
    # row the migration writes) back at its start.
    tables = ", ".join(t.name for t in db.metadata.sorted_tables if t.name != "audit_chain")
    with psycopg.connect(database.url, autocommit=True) as conn:
        conn.execute(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")
        conn.execute("UPDATE audit_chain SET seq = 0, last_hash = %s", (GENESIS,))


# --- apps and clients ----------------------------------------------------------------


def _settings(database_url: str, idp_metadata_file: Path, **overrides) -> Settings:
    values = {
        "SECRET_KEY": "test-secret-key",
        "DATABASE_URL": database_url,
        "SAML_IDP_METADATA_FILE": idp_metadata_file,
        "SAML_SP_BASE_URL": BASE_URL,
        "SAML_ROLE_ATTRIBUTE": "roles",
        "SAML_ADMIN_VALUES": ADMINS,
        "SAML_VIEWER_VALUES": VIEWERS,
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def make_app(
    database_url: str, idp_metadata_file: Path, idp: PysamlIdp, tmp_path: Path
) -> Iterator[Callable[..., Flask]]:
    """Build an app with settings overridden, its SP trusted by the test IdP; its instance
    folder a new one unless `instance` says where."""
    apps: list[Flask] = []

    def make(instance: Path | None = None, **overrides) -> Flask:
        instance = instance or tmp_path / f"instance{len(apps)}"
        app = create_app(
            _settings(database_url, idp_metadata_file, **overrides), instance_path=str(instance)
        )
        app.config["TESTING"] = True
        if app.extensions["dashboard.saml"] is not None:
            idp.trust_sp(app.extensions["dashboard.saml"].metadata_xml().decode())
        apps.append(app)
        return app

    yield make
    for app in apps:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


@pytest.fixture
def app(make_app) -> Flask:
    return make_app()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def sign_in(client: FlaskClient, idp: PysamlIdp, app: Flask) -> SignIn:
    return SignIn(client, idp, app)


@pytest.fixture
def admin_client(sign_in: SignIn) -> FlaskClient:
    response = sign_in.as_(ADMIN_EMAIL, [ADMINS])
    assert response.status_code == 302, response.get_data(as_text=True)
    return sign_in.client


@pytest.fixture
def viewer_client(sign_in: SignIn) -> FlaskClient:
    response = sign_in.as_(VIEWER_EMAIL, [VIEWERS])
    assert response.status_code == 302, response.get_data(as_text=True)
    return sign_in.client
