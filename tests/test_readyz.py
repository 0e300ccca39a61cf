"""GET /readyz (issue 16): a load balancer's readiness check. Ready only when the database
answers and its schema is the latest migration; otherwise 503 with the reason, while
/healthz (liveness) stays 200 so nothing restarts a process that only waits for an upgrade."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from flask_migrate import downgrade, upgrade
from sqlalchemy import text

from dashboard import MIGRATIONS
from dashboard.extensions import db
from tests.support.fresh_database import fresh_database
from tests.support.workers import ROOT, worker_env

SCRIPTS = ScriptDirectory(str(MIGRATIONS))
HEAD = SCRIPTS.get_current_head()


@pytest.fixture
def fresh_url(database, tmp_path: Path) -> Iterator[str]:
    with fresh_database(database.kind, tmp_path) as url:
        yield url


def test_readyz_is_503_before_flask_db_upgrade_and_200_after(fresh_url, make_app):
    app = make_app(DATABASE_URL=fresh_url)
    client = app.test_client()  # nobody signed in: the check is open to the load balancer

    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json == {
        "status": "not ready",
        "reason": "the database has no schema: run flask db upgrade",
        "schema": None,
        "expected": HEAD,
    }
    assert client.get("/healthz").status_code == 200  # alive: only waiting for the upgrade

    upgraded = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "app", "db", "upgrade"],
        cwd=ROOT,
        env=worker_env(app),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert upgraded.returncode == 0, upgraded.stderr

    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json == {"status": "ready", "database": "ok", "schema": HEAD}


def test_readyz_is_503_when_the_schema_is_one_migration_behind(fresh_url, make_app):
    app = make_app(DATABASE_URL=fresh_url)
    with app.app_context():
        upgrade()
        downgrade(revision="-1")
        db.session.remove()
    previous = SCRIPTS.get_revision(HEAD).down_revision

    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.json == {
        "status": "not ready",
        "reason": f"the schema is at {previous}, not {HEAD}: run flask db upgrade",
        "schema": previous,
        "expected": HEAD,
    }


def test_readyz_is_503_when_another_deploy_migrated_past_this_version(fresh_url, make_app):
    app = make_app(DATABASE_URL=fresh_url)
    with app.app_context():
        upgrade()
        db.session.execute(text("UPDATE alembic_version SET version_num = '9999'"))
        db.session.commit()
        db.session.remove()

    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.json == {
        "status": "not ready",
        "reason": "the schema is at 9999, newer than this code knows: deploy the newer code",
        "schema": "9999",
        "expected": HEAD,
    }


@pytest.fixture
def refusing_port() -> Iterator[int]:
    """A local port bound but not listening: connecting to it is refused at once."""
    with socket.socket() as bound:
        bound.bind(("127.0.0.1", 0))
        yield bound.getsockname()[1]


def test_readyz_is_503_when_the_database_is_down(database, make_app, refusing_port, tmp_path):
    if database.kind == "sqlite":
        url = f"sqlite:///{tmp_path / 'missing-folder' / 'dashboard.db'}"
    else:
        url = f"postgresql://dashboard:s3cret-pw@127.0.0.1:{refusing_port}/dashboard"
    app = make_app(DATABASE_URL=url)

    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.json["status"] == "not ready"
    assert response.json["reason"].startswith("the database does not answer (")
    assert response.json["schema"] is None and response.json["expected"] == HEAD
    # The reason names the error's kind, never the URL or its password.
    assert "s3cret" not in response.get_data(as_text=True)
    assert "dashboard.db" not in response.get_data(as_text=True)


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections and never says a word (a database host behind a
    firewall that drops packets looks the same to the client: no answer)."""
    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen(8)
        yield listening.getsockname()[1]


def test_readyz_answers_503_in_time_when_the_database_never_answers(make_app, silent_port):
    """Not a hung check: the connection gives up after its 10 s connect timeout, well
    within a load balancer's probe timeout, and the check says so."""
    import time

    app = make_app(DATABASE_URL=f"postgresql://dashboard@127.0.0.1:{silent_port}/dashboard")
    started = time.monotonic()
    response = app.test_client().get("/readyz")
    took = time.monotonic() - started

    assert response.status_code == 503
    assert response.json["reason"].startswith("the database does not answer (")
    assert took < 20, f"/readyz took {took:.0f} s"
