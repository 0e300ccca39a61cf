"""The OneLogin side of the benchmark: a tenant of n users who all hold the Workato app
(through "Workato Users", with `workato_role` values), served by the simulator from a child
process so that the benchmark's own memory is the dashboard's.

    with Simulator(10000) as simulator:    # simulator.url: the OneLogin API's base URL
        simulator.ask("drift", 0.01)         # 1% of the users get another workato_role
        simulator.ask("calls")               # API calls the simulator has answered
"""

from __future__ import annotations

import itertools
import multiprocessing

from dashboard.sandbox.onelogin import OneLoginState, User
from tests.support.onelogin import running
from tests.support.sync_world import empty_tenant

ROLES = ("Operator", "Analyst", "Admin")


def tenant(n: int) -> OneLoginState:
    """The demo tenant's app, roles and fields, with n people all holding the Workato app."""
    state = empty_tenant()
    state.rate_limit = 10**9  # OneLogin's 5,000 calls/hour is not what is measured here
    role = next(r for r in state.roles.values() if r.name == "Workato Users")
    roles = itertools.cycle(ROLES)
    for i in range(1, n + 1):
        # Built directly: add_user looks up max(id) each time, quadratic for 100,000.
        user_id, name = 60000000 + i, f"bench.user{i:06d}"
        user = User(user_id, name, f"{name}@example.com", "Bench", f"User{i:06d}")
        user.custom_attributes = {"workato_role": next(roles), "workato_role_test": "Analyst"}
        state.users[user_id] = user
    role.user_ids = MemberList(state.users)
    return state


class MemberList(list):
    """A role's member list whose `in` is a set lookup. The simulator asks `user.id in
    role.user_ids` for every user it renders: a list scan, quadratic at 100,000 users.
    This speeds up the stand-in only; the product code measured is unchanged."""

    def __init__(self, items) -> None:
        super().__init__(items)
        self.members = set(self)

    def __contains__(self, item) -> bool:
        return item in self.members


def drift(state: OneLoginState, share: float) -> int:
    """Give every k-th user the next role, so that `share` of them change; how many did."""
    changed = list(state.users.values())[:: max(1, round(1 / share))]
    for user in changed:
        old = user.custom_attributes["workato_role"]
        user.custom_attributes["workato_role"] = ROLES[(ROLES.index(old) + 1) % len(ROLES)]
    return len(changed)


class Simulator:
    """The OneLogin simulator with n users, served from a child process, so that the
    benchmark's memory is the dashboard's own. Asked through a pipe to drift and to count."""

    def __init__(self, n: int) -> None:
        self.pipe, child = multiprocessing.Pipe()
        self.process = multiprocessing.get_context("fork").Process(
            target=self._serve, args=(n, child), daemon=True
        )

    def __enter__(self) -> Simulator:
        self.process.start()
        self.url = self.pipe.recv()
        return self

    def __exit__(self, *exc: object) -> None:
        self.pipe.send(("stop", None))
        self.process.join(timeout=30)

    def ask(self, command: str, argument: float | None = None):
        self.pipe.send((command, argument))
        return self.pipe.recv()

    @staticmethod
    def _serve(n: int, pipe) -> None:
        state = tenant(n)
        with running(state) as url:
            pipe.send(url)
            while (message := pipe.recv())[0] != "stop":
                command, argument = message
                pipe.send(drift(state, argument) if command == "drift" else state.calls.total())
