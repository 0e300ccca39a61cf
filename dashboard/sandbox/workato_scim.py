"""The demo's Workato SCIM stand-in: scim2-server's own WSGI application, serving Workato's
schemas (the WorkatoRole extension) from memory behind a bearer token.

Mount it under a prefix with werkzeug's DispatcherMiddleware; scim2-server builds its URLs
from SCRIPT_NAME, so under `/sandbox/workato/scim` the base URL to save on Connections is
`http://<host>/sandbox/workato/scim/v2`. The tests run the same server as a process
(tests/support/scim_server.py); this is the in-process variant for the demo.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from scim2_models import ResourceType, Schema, ScimProvider, ServiceProviderConfig
from scim2_server.memory import InMemoryStorage
from scim2_server.testserver.application import BEARER_TOKEN_SCHEME, BearerTokenApplication
from scim2_server.utils import load_default_service_provider_config

FOLDER = Path(__file__).parent / "workato"
SCHEMAS_FILE = FOLDER / "workato-scim-schemas.json"
RESOURCE_TYPES_FILE = FOLDER / "workato-scim-resource-types.json"


def create_workato_scim_app(
    token: str,
    *,
    schemas_file: Path = SCHEMAS_FILE,
    resource_types_file: Path = RESOURCE_TYPES_FILE,
    service_provider_config: Mapping[str, Any] | None = None,
) -> BearerTokenApplication:
    """A WSGI app answering SCIM 2.0 like Workato, accepting only `token`. Each call gets
    its own empty in-memory store (nothing is written to disk)."""
    if not token:
        # BearerTokenApplication accepts every request when it has no token.
        raise ValueError("The SCIM stand-in needs a bearer token.")
    schemas = [Schema.model_validate(s) for s in json.loads(schemas_file.read_text())]
    resource_types = [
        ResourceType.model_validate(r) for r in json.loads(resource_types_file.read_text())
    ]
    config = (
        ServiceProviderConfig.model_validate(dict(service_provider_config))
        if service_provider_config is not None
        else load_default_service_provider_config()
    )
    # Announce the scheme, as the scim2-server command does, so that a 401 carries
    # a WWW-Authenticate header.
    config.authentication_schemes = [*(config.authentication_schemes or []), BEARER_TOKEN_SCHEME]
    provider = ScimProvider.from_discovery(schemas, resource_types, config=config)
    return BearerTokenApplication(InMemoryStorage(), provider, bearer_tokens=[token])
