"""`flask sync worker` as a real process beside the test, on the test's database.

worker = start_worker(app, "--once")      # stderr piped: read it for what it said
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def worker_env(app, **settings: str) -> dict[str, str]:
    """The environment a worker needs to share the app's database and connections: the
    machine's own DASHBOARD_/SAML_ settings never leak in."""
    configured = app.extensions["dashboard.settings"]
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DASHBOARD_", "SAML_", "DATABASE_", "SECRET_"))
    }
    env.update(
        {
            "DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
            "SECRET_KEY": "test-secret-key",
            "DASHBOARD_INSTANCE_PATH": app.instance_path,
            "DASHBOARD_SYNC_EXECUTOR": "worker",
            "DASHBOARD_SYNC_CONCURRENCY": "1",
            "DASHBOARD_SYNC_RATE": "0",
            # No scheduled reconcile unless a test asks for one (tests/test_schedule.py).
            "DASHBOARD_RECONCILE_EVERY": "0",
            "SAML_IDP_METADATA_FILE": str(configured.SAML_IDP_METADATA_FILE),
            "SAML_SP_BASE_URL": configured.SAML_SP_BASE_URL,
            **settings,
        }
    )
    return env


def start_worker(app, *args: str, **settings: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "flask", "--app", "app", "sync", "worker", *args],
        cwd=ROOT,
        env=worker_env(app, **settings),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
