"""The HTTP plumbing every client shares: one pooled session, timeouts, retries of
transient failures with exponential backoff and jitter (honouring Retry-After), and
translation of failures into ConnectionProblem. No Flask here."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import unquote, urlsplit

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


class Pacing(Protocol):
    """Paces one client's requests: `wait` before each goes out (it may block, or raise a
    ConnectionProblem to stop it), `answered` with each response that comes back, 429s
    included (its status and headers: a rate limit's Retry-After or RateLimit-* fields)."""

    def wait(self) -> None: ...

    def answered(self, response: requests.Response) -> None: ...


@dataclass
class Http:
    """Calls one service at `base_url`. `describe` turns an HTTP error answer into a
    ConnectionProblem in that service's terms. `secrets` are the client's credentials as it
    sends them (token, client secret, access token): the client keeps them current, and no
    ConnectionProblem raised here carries one (see errors.redacted)."""

    service: str
    base_url: str
    describe: Callable[[requests.Response], errors.ConnectionProblem]
    timeout: float = 10.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    session: requests.Session = field(default_factory=requests.Session)
    secrets: tuple[str, ...] = field(default=(), repr=False)
    # Told of every request that goes out and every answer (a sync's client-side rate).
    pace: Pacing | None = None

    def __post_init__(self) -> None:
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=16)
        self.session.mount("https://", adapter)
        self.session.mount("http://", adapter)
        self.session.headers["User-Agent"] = USER_AGENT
        if self.session.trust_env:
            # What the environment says (HTTPS_PROXY, NO_PROXY, REQUESTS_CA_BUNDLE), read
            # once: requests would read it again for every request, a sixth of a sync's CPU.
            # Every request goes to the base URL's host (see `url`).
            env = self.session.merge_environment_settings(self.base_url, {}, None, None, None)
            self.session.proxies.update(env["proxies"])
            self.session.verify = env["verify"]
            self.session.trust_env = False

    def url(self, path: str) -> str:
        """The URL of `path` ("/Users") under the base URL. An absolute URL, such as a
        server-chosen Location, is used only when it lies under the base URL: the credentials
        sent with it must not reach another host (or another path prefix of this one)."""
        if path.startswith("/"):
            return self.base_url + path
        if self.is_under_base(path):
            return path
        raise errors.bad_response(
            self.service, f"a link to {errors.host_of(path)}, outside the base URL {self.base_url}"
        )

    def is_under_base(self, url: str) -> bool:
        """Whether `url` is the base URL or below it: the same scheme and host (in any
        letter case) and port, and a path that equals the base's or continues it after "/"
        without climbing back out ("..")."""
        base, given = urlsplit(self.base_url), urlsplit(url)
        if (given.scheme.lower(), given.netloc.lower()) != (
            base.scheme.lower(),
            base.netloc.lower(),
        ):
            return False
        if any(unquote(part) == ".." for part in given.path.split("/")):
            return False
        return given.path == base.path or given.path.startswith(base.path + "/")

    def scrub(self, problem: errors.ConnectionProblem) -> errors.ConnectionProblem:
        """`problem` without this client's secrets. Every problem `request` raises has been
        through here; a client raising one of its own from a service's words uses it too."""
        return errors.redacted(problem, self.secrets)

    def request(
        self, method: str, path: str, *, retry: bool = True, **kwargs: Any
    ) -> requests.Response:
        """The response for a 2xx answer; ConnectionProblem otherwise, after retrying
        transient failures when `retry` is set (never for a non-idempotent call that may
        have been applied: the caller decides)."""
        try:
            return self._with_retries(method, path, retry, **kwargs)
        except errors.ConnectionProblem as problem:
            raise self.scrub(problem) from None

    def _with_retries(
        self, method: str, path: str, retry: bool, **kwargs: Any
    ) -> requests.Response:
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
        if self.pace is not None:
            self.pace.wait()
        try:
            response = self.session.request(method, url, allow_redirects=False, **kwargs)
        except requests.RequestException as exc:
            raise errors.from_exception(self.service, url, exc, self.timeout) from None
        if self.pace is not None:
            self.pace.answered(response)
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


class ApiClient:
    """What every client shares: it closes the session it made (not one it was given)."""

    _http: Http
    _owns_session: bool

    def close(self) -> None:
        if self._owns_session:
            self._http.session.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
