"""The Overview warns when a key file sits in the same folder as the SQLite database, where
one backup of that folder holds the secrets and the key that decrypts them (issue 13), and
says nothing when the keys are kept elsewhere, on PostgreSQL, or in demo mode."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from flask import Flask
from pydantic import SecretStr

from dashboard import create_app
from dashboard.extensions import db
from dashboard.pages.safety import keys_beside_database
from dashboard.settings import Settings

WARNING = "keys-beside-database"


@pytest.fixture
def data(database, tmp_path) -> Path:
    """A folder holding a migrated SQLite database, `dashboard.db`."""
    if database.kind != "sqlite":
        pytest.skip("the warning is about a SQLite database file")
    folder = tmp_path / "data"
    folder.mkdir()
    shutil.copy(database.url, folder / "dashboard.db")
    return folder


@pytest.fixture
def build(make_app):
    """Build an app like the test's others, its instance folder and SQLite database where
    the test says (`admin_client` signs in to the class's `app`)."""

    def make(instance: Path, database: Path, **values) -> Flask:
        return make_app(instance=instance, DATABASE_URL=f"sqlite:///{database}", **values)

    return make


def overview(admin_client) -> str:
    page = admin_client.get("/")
    assert page.status_code == 200
    return page.get_data(as_text=True)


class TestTheEmbeddedDefault:
    """The database and the generated keys all in the instance folder."""

    @pytest.fixture
    def app(self, build, data):
        return build(data, data / "dashboard.db")

    def test_the_overview_warns_of_both_keys(self, admin_client, data):
        page = overview(admin_client)
        assert WARNING in page
        key = data.resolve() / "encryption_key"
        assert f"The encryption key of the stored secrets ({key})" in page
        assert "<code>DASHBOARD_ENCRYPTION_KEY</code>" in page
        assert f"({data.resolve() / 'audit_signing_key.pem'})" in page
        assert "Keep the keys apart from the database" in page


class TestKeysKeptElsewhere:
    @pytest.fixture
    def app(self, build, data, tmp_path):
        elsewhere = tmp_path / "keys"
        first = build(elsewhere, data / "dashboard.db")  # makes a signing key there
        return build(
            data,
            data / "dashboard.db",
            DASHBOARD_ENCRYPTION_KEY=SecretStr(Fernet.generate_key().decode()),
            DASHBOARD_AUDIT_SIGNING_KEY_FILE=Path(first.instance_path) / "audit_signing_key.pem",
        )

    def test_no_warning(self, admin_client):
        assert WARNING not in overview(admin_client)


class TestOnlyTheSigningKeyBeside:
    @pytest.fixture
    def app(self, build, data, tmp_path):
        key = Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        (data / "signing.pem").write_bytes(key)
        return build(
            tmp_path / "instance",
            data / "dashboard.db",
            DASHBOARD_AUDIT_SIGNING_KEY_FILE=data / "signing.pem",
        )

    def test_only_it_is_named(self, admin_client, data):
        page = overview(admin_client)
        assert f"The audit trail&#39;s signing key ({data.resolve() / 'signing.pem'})" in page
        assert "<code>DASHBOARD_AUDIT_SIGNING_KEY_FILE</code>" in page
        assert "encryption key" not in page  # in the instance folder, away from the database


def test_no_warning_on_the_usual_test_database(admin_client):
    """PostgreSQL, or a SQLite file outside the instance folder."""
    assert WARNING not in admin_client.get("/").get_data(as_text=True)


def test_demo_mode_is_not_warned(data, tmp_path):
    settings = Settings(
        DASHBOARD_DEMO=True, SECRET_KEY="k", DATABASE_URL=f"sqlite:///{data / 'dashboard.db'}"
    )
    app = create_app(settings, instance_path=str(data))
    try:
        with app.test_request_context():
            assert keys_beside_database() == []
    finally:
        with app.app_context():
            db.engine.dispose()
