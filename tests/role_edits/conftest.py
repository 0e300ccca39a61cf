"""Fixtures of the role-edit tests: an app that works sync runs only when a test says so,
and the populated world (see tests/support/role_edits.py), previewed once."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.role_edits import plan, populate
from tests.support.sync_world import World


@pytest.fixture
def app(make_app, request):
    """Settings for these tests; a test may add its own with indirect parametrisation."""
    overrides = getattr(request, "param", {})
    return make_app(DASHBOARD_SYNC_EXECUTOR="worker", DASHBOARD_SYNC_RATE=0, **overrides)


@pytest.fixture
def world(app) -> Iterator[World]:
    with World.small(app) as world:
        populate(world)
        plan(app)
        yield world
