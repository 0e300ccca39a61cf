"""Demo mode's stand-ins for OneLogin and Workato, served by the dashboard's own process.

- OneLogin API simulator at /sandbox/onelogin (seeded tenant with problems to find),
- Workato SCIM API (scim2-server with Workato's schemas) at /sandbox/workato/scim/v2,
- Workato developer API simulator at /sandbox/workato-api.

Their credentials are random, made once per instance folder (mode 0600), so that nothing
usable is published; the "Use the demo sandbox" button stores them as the connections
without ever showing them. The tenants live in memory: a restart starts them afresh.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from pathlib import Path

from flask import Flask
from werkzeug.middleware.dispatcher import DispatcherMiddleware

from dashboard.private_files import read_or_create
from dashboard.sandbox import onelogin, onelogin_api, workato_api, workato_scim, workato_seed
from dashboard.sandbox.onelogin_seed import DEMO_CLIENT_ID, WORKATO_APP_ID

ONELOGIN_PATH = "/sandbox/onelogin"
SCIM_PATH = "/sandbox/workato/scim"
WORKATO_API_PATH = "/sandbox/workato-api"


@dataclass(frozen=True)
class Sandbox:
    base_url: str
    onelogin_state: onelogin.OneLoginState
    credentials: dict[str, str]

    @property
    def onelogin_url(self) -> str:
        return self.base_url + ONELOGIN_PATH

    @property
    def scim_url(self) -> str:
        return self.base_url + SCIM_PATH + "/v2"

    @property
    def workato_api_url(self) -> str:
        return self.base_url + WORKATO_API_PATH

    app_id = WORKATO_APP_ID


def _credentials(folder: Path) -> dict[str, str]:
    def make() -> str:
        return json.dumps(
            {
                "onelogin_client_id": "sandbox-" + secrets.token_hex(6),
                "onelogin_client_secret": secrets.token_urlsafe(24),
                "scim_token": secrets.token_urlsafe(24),
                "workato_api_token": secrets.token_urlsafe(24),
            }
        )

    return json.loads(read_or_create(folder / "sandbox-credentials.json", make))


def mount(app: Flask, base_url: str) -> Sandbox:
    """Start the stand-ins inside `app` and return how to reach them."""
    credentials = _credentials(Path(app.instance_path))
    state = onelogin.OneLoginState.seeded()
    # The seed's own credential is published (the tests use it); the demo takes it away.
    state.credentials.pop(DEMO_CLIENT_ID, None)
    state.add_credential(credentials["onelogin_client_id"], credentials["onelogin_client_secret"])
    scim = workato_scim.create_workato_scim_app(credentials["scim_token"])
    seeded = workato_seed.workato_users(state)
    workato_seed.load(scim, credentials["scim_token"], seeded)
    app.wsgi_app = DispatcherMiddleware(
        app.wsgi_app,
        {
            ONELOGIN_PATH: onelogin_api.create_app(state),
            SCIM_PATH: scim,
            WORKATO_API_PATH: workato_api.create_app(
                credentials["workato_api_token"], members=workato_seed.members(seeded)
            ),
        },
    )
    sandbox = Sandbox(base_url, state, credentials)
    app.extensions["dashboard.sandbox"] = sandbox
    return sandbox
