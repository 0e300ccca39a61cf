"""A Redis database of its own for one test, on the real Redis of this machine.

Rate limits shared between instances are counted in Redis (DASHBOARD_RATELIMIT_STORAGE_URL);
tests of that use the server on 127.0.0.1:6379 (`.ci/run` starts it). Each test claims one of
its numbered databases (1-15; the claims are keys in database 0, so concurrent test runs on
this machine never share one), starts it empty and leaves it empty. Without a server the test
is skipped, except under CI=true, where it fails: that pass is required there.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import redis

HOST, PORT = "127.0.0.1", 6379
DATABASES = range(1, 16)
CLAIM_SECONDS = 600  # a crashed test's claim lapses by itself


def _server() -> redis.Redis:
    server = redis.Redis(host=HOST, port=PORT, db=0, socket_connect_timeout=3)
    try:
        server.ping()
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        message = f"Redis is not reachable at {HOST}:{PORT}: {exc}"
        if os.environ.get("CI") == "true":
            pytest.fail(message + " (CI=true: the Redis tests are required)")
        pytest.skip(message)
    return server


@contextmanager
def redis_database() -> Iterator[str]:
    """The URL of an empty Redis database nobody else is using, emptied again after."""
    server = _server()
    mine = secrets.token_hex(8)
    number = next((n for n in DATABASES if _claim(server, n, mine)), None)
    if number is None:
        pytest.fail(f"every Redis database {DATABASES.start}-{DATABASES.stop - 1} is in use")
    database = redis.Redis(host=HOST, port=PORT, db=number)
    database.flushdb()
    try:
        yield f"redis://{HOST}:{PORT}/{number}"
    finally:
        database.flushdb()
        database.close()
        if server.get(_claim_key(number)) == mine.encode():
            server.delete(_claim_key(number))
        server.close()


def _claim_key(number: int) -> str:
    return f"dashboard-tests:db:{number}"


def _claim(server: redis.Redis, number: int, mine: str) -> bool:
    return bool(server.set(_claim_key(number), mine, nx=True, ex=CLAIM_SECONDS))
