"""The Audit page at scale (issue 14): whichever way a page is found (an equality filter's
index, several merged, the user's, the table, the time index; a time range turned into ids,
month by month), every combination of the filters gives exactly the entries a plain query
gives, newest first, page after page; and a page that stops looking says where, and goes on
from there."""

from __future__ import annotations

import itertools
import random
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import and_, func, insert, select

from dashboard.audit import search, spans, walks
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
    """`count` entries recorded as they happened, 2 hours apart from 1 January 2026 (over
    four months); then `imported` OneLogin and Workato events recorded last (the highest
    ids) though they happened in January and February, as an import of their history
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
        at = START + (timedelta(hours=rng.uniform(0, 24 * 59)) if late else timedelta(hours=2 * n))
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


def reference(filters: search.Filters) -> list[int]:
    """The ids the filters match, newest first, by the plainest query there is."""
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
        conditions.append(AUDIT.c.id < filters.before)
    query = select(AUDIT.c.id).where(and_(True, *conditions)).order_by(AUDIT.c.id.desc())
    return list(db.session.scalars(query))


def every_page(filters: search.Filters, size: int) -> tuple[list[int], int]:
    """Every page's ids, following each page's keyset; and how many pages stopped looking."""
    ids: list[int] = []
    stopped = 0
    page = search.page(filters, size)
    while True:
        assert len(page.entries) <= size
        ids += [e.id for e in page.entries]
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
            middle = expected[len(expected) // 2] if expected else 800
            deep = replace(filters, before=middle)
            assert every_page(deep, size=25)[0] == reference(deep), deep
    # The small cap made some pages stop looking; the default, none at this size.
    assert (stopped > 0) == (cap == 40)


MOMENTS = [None, "2025-12-20", "2026-01-01", "2026-01-10T05:00", "2026-01-31T23:00", "2026-02-01",
           "2026-02-15", "2026-03-14T12:00", "2026-04-30", "2026-05-20", "2026-07-01"]  # fmt: skip


def test_a_time_range_becomes_exactly_the_lowest_and_highest_id_it_holds(app):
    """Whole months by one probe each, the partial months at its ends on the time index, the
    entries recorded late among them, below any keyset: the ids are exactly those of the
    range's first and last entries by id."""
    seed(app)
    with app.app_context():
        times = dict(db.session.execute(select(AUDIT.c.id, AUDIT.c.occurred_at)).all())
        for since, until in itertools.product(MOMENTS, MOMENTS):
            since_at = since and search.parse_time(since)
            until_at = until and search.parse_time(until, end=True)
            for start in (1620, 1500, 900, 400, 60):
                inside = [
                    ident
                    for ident, at in times.items()
                    if ident <= start
                    and (since_at is None or at >= since_at)
                    and (until_at is None or at < until_at)
                ]
                found = spans.span(since_at, until_at, start)
                expected = spans.Span(min(inside), max(inside)) if inside else None
                assert found == expected, (since, until, start)


def test_a_time_range_of_late_recorded_entries_is_found_whole(app):
    """Imported events recorded after everything else, though they happened in January:
    a range holding only a few of them, far apart among the ids, is read on the time index
    and gives them all, newest recorded first."""
    seed(app, count=300, imported=40)  # the 300 end on 25 January
    with app.app_context():
        filters = search.Filters(since="2026-02-01", until="2026-03-01")
        expected = reference(filters)
        assert expected and min(expected) > 300  # only imported ones
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
    searched = re.search(r"No (?:more )?matching entries among entries #(\d+) to #(\d+)", text)
    assert searched is not None, text
    assert "to stay fast" in text and "narrow the filters" in text
    assert "No entry matches these filters." not in text  # not said: it did not look at all
    further = re.search(r'<a href="([^"]+)"[^>]*rel="next">Look further', text)
    assert further is not None
    assert f"before={searched.group(1)}" in further.group(1).replace("&amp;", "&")

    shown: list[int] = []
    url = further.group(1).replace("&amp;", "&")
    shown += [int(n) for n in re.findall(r"<dt>Entry</dt><dd>#(\d+)</dd>", text)]
    while url:
        text = admin_client.get(url).get_data(as_text=True)
        shown += [int(n) for n in re.findall(r"<dt>Entry</dt><dd>#(\d+)</dd>", text)]
        link = re.search(r'<a href="([^"]+)"[^>]*rel="next">', text)
        url = link.group(1).replace("&amp;", "&") if link else None
    assert shown == expected
