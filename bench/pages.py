"""A page as a browser gets it: a test client signed in as an admin (as a sign-in leaves
the session, without an identity provider), and one request timed whole, rendering
included."""

from __future__ import annotations

from bench.timing import Timing, timed
from dashboard.auth import sessions
from dashboard.auth.models import Account
from dashboard.extensions import db


def signed_in_client(app):
    """A test client with an admin's session."""
    with app.app_context():
        account = Account(display_name="Bench Admin", email="bench.admin@example.com")
        db.session.add(account)
        login = sessions.start(account, "admin", "bench.admin@example.com", None)
        db.session.commit()
        token = login.token
    client = app.test_client()
    with client.session_transaction() as session:
        session["_user_id"] = token
        session["_fresh"] = True
    return client


def timed_get(client, path: str, repeat: int, *, htmx: bool = False) -> Timing:
    """GET `path` through the whole app (hooks, the page's queries, its template); the
    result is the page's size in bytes."""
    headers = {"HX-Request": "true"} if htmx else {}

    def get() -> int:
        response = client.get(path, headers=headers)
        assert response.status_code == 200, (path, response.status_code)
        return len(response.data)

    return timed(get, repeat, lambda: None)
