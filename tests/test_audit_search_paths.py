"""The Audit page at scale (issues 14 and 15): whichever way a page is found (an equality
filter's index, several merged, the user's, the time index), every combination of the
filters gives exactly the entries a plain query gives, newest first by when they happened,
page after page, also among entries that happened at the same instant and events imported
long after they happened; and a page that stops looking says where, and goes on from
there."""

from __future__ import annotations

import itertools
import random
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import and_, func, insert, select, tuple_

from dashboard.audit import search, walks
from dashboard.audit.models import AuditEntry
from dashboard.extensions import db

AUDIT = AuditEntry.__table__
START = datetime(2026, 1, 1, tzinfo=UTC)
BUSY, RARE = "busy.user@example.com", "rare.user@example.com"
ADMIN = "alan.admin@example.com"
# (share, source, actor, actions, with a user), as the dashboard's own entries go.
KINDS = [
    (60, "sync", ["sync"], ["sync.update", "sync.update", "sync.create", "sync.suspend"], True),
    (12, "dashboard", [ADMIN, "grace.admin@example.com", "anonymous"],
     ["auth.sign_in", "auth.refused"], False),
    (10, "dashboard", [ADMIN, "grace.admin@example.com", "cli:ops"],
     ["roles.edit", "roles.edit", "access.grant", "access.remove_app"], True),
    (10, "onelogin", ["onelogin", "ol.admin@example.com"], ["onelogin.user_updated"], True),
    (8, "workato", ["builder@example.com"], ["workato.member_role_changed"], True),
]  # fmt: skip
USERS = [BUSY] * 12 + [f"user{n:02d}@example.com" for n in range(30)] + [RARE]


def seed(app, count: int = 1500, imported: int = 120) -> None:
    """`count` entries recorded as they happened from 1 January 2026 (over four months),
    four at a time at the same instant, 8 hours apart (a run's items can share a
    microsecond: the page's order then goes by id); then `imported` OneLogin and Workato
    events recorded last (the highest ids) though they happened in January and February,
    each at an instant some of the first entries share, as an import of their history
    brings them."""
    rng = random.Random(14)
    with app.app_context():  # after what a sign-in recorded
        base = db.session.scalar(select(func.max(AUDIT.c.seq))) or 0
    rows = []
    for n in range(count + imported):
        late = n >= count
        _, source, actors, actions, targeted = rng.choices(KINDS, [k[0] for k in KINDS])[0]
        if late:
            source = rng.choice(["onelogin", "workato"])
            _, source, actors, actions, targeted = next(k for k in KINDS if k[1] == source)
        hours = 8 * rng.randrange(3 * 59) if late else 2 * (n - n % 4)
        at = START + timedelta(hours=hours)
        rows.append(
            {
                "occurred_at": at,
                "recorded_at": START + timedelta(hours=2 * n),
                "actor": rng.choice(actors),
                "source": source,
                "action": rng.choice(actions),
                "outcome": "success",
                "target_user": rng.choice(USERS) if targeted else None,
                "details": {"n": n},
                "seq": base + n + 1,
                "prev_hash": "0" * 64,
                "hash": "0" * 64,
            }
        )
    with app.app_context():
        db.session.execute(insert(AuditEntry), rows)
        db.session.commit()


def reference(filters: search.Filters) -> list[walks.Key]:
    """The entries the filters match, newest first by when they happened (then by id), by
    the plainest query there is."""
    conditions = []
    if filters.user:
        conditions.append(AUDIT.c.target_user == filters.user)
    if filters.actor:
        conditions.append(AUDIT.c.actor == filters.actor)
    if filters.action.endswith("."):
        conditions.append(AUDIT.c.action.startswith(filters.action, autoescape=True))
    elif filters.action:
        conditions.append(AUDIT.c.action == filters.action)
    if filters.source:
        conditions.append(AUDIT.c.source == filters.source)
    if filters.since:
        conditions.append(AUDIT.c.occurred_at >= filters.since_at)
    if filters.until:
        conditions.append(AUDIT.c.occurred_at < filters.until_at)
    if filters.before:
        before = filters.before
        conditions.append(tuple_(AUDIT.c.occurred_at, AUDIT.c.id) < (before.at, before.id))
    query = select(AUDIT.c.occurred_at, AUDIT.c.id).where(and_(True, *conditions))
    query = query.order_by(AUDIT.c.occurred_at.desc(), AUDIT.c.id.desc())
    return [walks.Key(at, ident) for at, ident in db.session.execute(query)]


def every_page(filters: search.Filters, size: int) -> tuple[list[walks.Key], int]:
    """Every page's entries, following each page's keyset; and how many pages stopped
    looking."""
    ids: list[walks.Key] = []
    stopped = 0
    page = search.page(filters, size)
    while True:
        assert len(page.entries) <= size
        ids += [walks.Key(e.occurred_at, e.id) for e in page.entries]
        if page.searched is not None:
            stopped += 1
            low, _ = page.searched
            assert page.next_before == low
        if page.next_before is None:
            return ids, stopped
        page = search.page(replace(filters, before=page.next_before), size)


TIMES = {
    "": {},
    "since mid-February": {"since": "2026-02-15"},
    "until mid-March": {"until": "2026-03-14T12:00"},
    "ten days in January": {"since": "2026-01-10", "until": "2026-01-19"},
    "across two month ends": {"since": "2026-01-20T06:00", "until": "2026-03-03"},
}
DEEP = walks.Key(START + timedelta(days=30), 800)  # a keyset for filters matching nothing
COMBINATIONS = list(
    itertools.product(
        ["", BUSY, RARE],
        ["", "sync", ADMIN],
        ["", "sync.update", "roles.edit", "access."],
        ["", "dashboard", "sync", "onelogin"],
        TIMES,
    )
)


# CAP 40: nearly every walk is broad and pages stop looking after 40 rows, in chunks of 12;
# the default: pages find what they look for. The same entries either way.
@pytest.mark.parametrize("cap, chunk", [(40, 12), (walks.CAP, walks.CHUNK)])
def test_every_combination_of_filters_gives_exactly_what_a_plain_query_gives(
    app, cap, chunk, monkeypatch
):
    monkeypatch.setattr(walks, "CAP", cap)
    monkeypatch.setattr(walks, "CHUNK", chunk)
    seed(app)
    stopped = 0
    with app.app_context():
        for user, actor, action, source, time in COMBINATIONS:
            filters = search.Filters(user=user, actor=actor, action=action, source=source,
                                     **TIMES[time])  # fmt: skip
            expected = reference(filters)
            found, pages_stopped = every_page(filters, size=25)
            assert found == expected, filters
            stopped += pages_stopped
            # A deep page: below the middle of what matches (or of the table).
            middle = expected[len(expected) // 2] if expected else DEEP
            deep = replace(filters, before=middle)
            assert every_page(deep, size=25)[0] == reference(deep), deep
    # The small cap made some pages stop looking; the default, none at this size.
    assert (stopped > 0) == (cap == 40)


def test_a_time_range_of_late_recorded_entries_is_found_whole(app):
    """Imported events recorded after everything else, though they happened in January and
    February: a range holding only a few of them, far apart among the ids, gives them all,
    newest first by when they happened."""
    seed(app, count=300, imported=40)  # the 300 end on 25 January
    with app.app_context():
        filters = search.Filters(since="2026-02-01", until="2026-03-01")
        expected = reference(filters)
        assert expected and min(key.id for key in expected) > 300  # only imported ones
        assert [key.id for key in expected] != sorted((key.id for key in expected), reverse=True)
        assert every_page(filters, size=10) == (expected, 0)


def test_a_page_that_stops_looking_says_where_and_the_link_goes_on(admin_client, app, monkeypatch):
    """Broad filters that rarely meet: the page looks through a bounded number of entries,
    shows the matches among them, says which entries it looked through, and its link looks
    further; following the links gives every match."""
    monkeypatch.setattr(walks, "CAP", 40)
    seed(app)
    filters = search.Filters(user=BUSY, action="roles.edit")
    with app.app_context():
        expected = reference(filters)
    assert 0 < len(expected) < 40

    body = admin_client.get("/audit?" + "&".join(f"{k}={v}" for k, v in filters.args().items()))
    text = body.get_data(as_text=True)
    stamp = r'<time datetime="[^"]+">([\d-]+ [\d:]+)</time>'
    searched = re.search(
        rf"No (?:more )?matching entries among the entries from {stamp} back to {stamp} \(UTC\)",
        text,
    )
    assert searched is not None, text
    assert "to stay fast" in text and "narrow the filters" in text
    assert "No entry matches these filters." not in text  # not said: it did not look at all
    further = re.search(r'<a href="([^"]+)"[^>]*rel="next">Look further', text)
    assert further is not None
    # It goes on below the oldest entry looked through, named by its time and id.
    before = re.search(r"before=([^&]+)", further.group(1).replace("&amp;", "&")).group(1)
    oldest = walks.Key.parse(before)
    assert oldest is not None and f"{oldest.at:%Y-%m-%d %H:%M:%S}" == searched.group(2)
    assert searched.group(1) >= searched.group(2)

    expected = [key.id for key in expected]
    shown: list[int] = []
    url = further.group(1).replace("&amp;", "&")
    shown += [int(n) for n in re.findall(r"<dt>Entry</dt><dd>#(\d+)</dd>", text)]
    while url:
        text = admin_client.get(url).get_data(as_text=True)
        shown += [int(n) for n in re.findall(r"<dt>Entry</dt><dd>#(\d+)</dd>", text)]
        link = re.search(r'<a href="([^"]+)"[^>]*rel="next">', text)
        url = link.group(1).replace("&amp;", "&") if link else None
    assert shown == expected
