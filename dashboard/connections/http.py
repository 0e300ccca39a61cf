"""The HTTP plumbing every client shares: one pooled session, timeouts, retries of
transient failures with exponential backoff and jitter (honouring Retry-After), and
translation of failures into ConnectionProblem. No Flask here."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import requests
from requests.adapters import HTTPAdapter

from dashboard.connections import errors

USER_AGENT = "onelogin-workato-dashboard"


@dataclass
class RetryPolicy:
    attempts: int = 4  # in all, the first try included
    base_delay: float = 0.5  # seconds; doubled each retry, plus up to 100% jitter
    max_delay: float = 30.0
    sleep: Callable[[float], None] = time.sleep  # tests pass a recorder

    def delay(self, attempt: int, problem: errors.ConnectionProblem) -> float:
        if problem.retry_after is not None:
            return min(problem.retry_after, self.max_delay)
        backoff = self.base_delay * (2 ** (attempt - 1))
        return min(backoff + random.uniform(0, backoff), self.max_delay)  # noqa: S311


@dataclass
class Http:
    """Calls one service at `base_url`. `describe` turns an HTTP error answer into a
    ConnectionProblem in that service's terms."""

    service: str
    base_url: str
    describe: Callable[[requests.Response], errors.ConnectionProblem]
    timeout: float = 10.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    session: requests.Session = field(default_factory=requests.Session)

    def __post_init__(self) -> None:
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=16)
        self.session.mount("https://", adapter)
        self.session.mount("http://", adapter)
        self.session.headers["User-Agent"] = USER_AGENT

    def url(self, path: str) -> str:
        return path if path.startswith(("https://", "http://")) else self.base_url + path

    def request(
        self, method: str, path: str, *, retry: bool = True, **kwargs: Any
    ) -> requests.Response:
        """The response for a 2xx answer; ConnectionProblem otherwise, after retrying
        transient failures when `retry` is set (never for a non-idempotent call that may
        have been applied: the caller decides)."""
        attempts = self.retry.attempts if retry else 1
        for attempt in range(1, attempts + 1):
            try:
                return self._once(method, path, **kwargs)
            except errors.ConnectionProblem as problem:
                if not problem.transient or attempt == attempts:
                    raise
                self.retry.sleep(self.retry.delay(attempt, problem))
        raise AssertionError("unreachable")

    def _once(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        url = self.url(path)
        kwargs.setdefault("timeout", self.timeout)
        try:
            response = self.session.request(method, url, allow_redirects=False, **kwargs)
        except requests.RequestException as exc:
            raise errors.from_exception(self.service, url, exc, self.timeout) from None
        if response.status_code >= 400:
            raise self.describe(response)
        if 300 <= response.status_code < 400:
            # A redirect usually means a login page or another host: not the API.
            raise errors.bad_response(self.service, f"redirect {response.status_code}")
        return response

    def json(self, response: requests.Response) -> Any:
        try:
            return response.json()
        except ValueError:
            raise errors.bad_response(self.service, "not JSON") from None
