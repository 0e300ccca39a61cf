"""The Users page at scale (issue 14): every combination of its search, state and role
filters, on the first page and below any key, lists exactly the people the plain query
lists (lower(x) LIKE lower('%q%'), in key order), whichever way the database is made to
find them: SQLite's LIKE alone, PostgreSQL's trigram index, a state and a role together."""

from __future__ import annotations

import itertools
import random
import re
from datetime import UTC, datetime

import pytest
from sqlalchemy import insert, or_, select

from dashboard.extensions import db
from dashboard.person import Person
from dashboard.users import service

FIRST = ["Ada", "alan", "GRACE", "Hedy", "Ünal", "élodie", "Søren", "Kelvin", "İlkay", "Jo_"]
LAST = ["Lovelace", "TURING", "hopper", "Lamarr", "Öztürk", "Dupont", "Kierkegaard", "100%"]
STATES = ["in_sync"] * 8 + ["drift", "failed", "orphaned", "pending"]
ROLES = ["Analyst"] * 5 + ["Operator", "Admin", "Security Reviewer", None]


def seed(app, count: int = 700) -> None:
    """`count` people with names in several alphabets and cases, some with an email of
    their own or none, spread over states and roles as a directory has them."""
    rng = random.Random(14)
    rows = []
    for n in range(count):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        user_name = f"{first}.{last}{n}@Example.com"
        email = rng.choice([user_name, f"{last[:3]}{n}@corp.example.com", None])
        rows.append(
            {
                "key": user_name.casefold(),
                "user_name": user_name,
                "display_name": f"{first} {last}",
                "email": email,
                "state": rng.choice(STATES),
                "role": rng.choice(ROLES),
                "action": "noop",
                "seen_at": datetime(2026, 11, 30, tzinfo=UTC),
            }
        )
    with app.app_context():
        db.session.execute(insert(Person), rows)
        db.session.commit()


def reference(filters: service.Filters) -> list[str]:
    """The keys the filters list, by the plainest query there is."""
    query = select(Person.key)
    if filters.q:
        query = query.where(
            or_(
                *(
                    column.icontains(filters.q, autoescape=True)
                    for column in (Person.user_name, Person.email, Person.display_name)
                )
            )
        )
    if filters.state:
        query = query.where(Person.state == filters.state)
    if filters.role == service.NO_ROLE:
        query = query.where(Person.role.is_(None))
    elif filters.role:
        query = query.where(Person.role == filters.role)
    if filters.after:
        query = query.where(Person.key > filters.after)
    return list(db.session.scalars(query.order_by(Person.key)))


def every_page(filters: service.Filters, size: int) -> list[str]:
    keys: list[str] = []
    while True:
        page = service.page(filters, size)
        assert len(page.people) <= size
        keys += [person.key for person in page.people]
        if page.next_after is None:
            return keys
        filters = service.Filters(filters.q, filters.state, filters.role, page.next_after)


SEARCHES = ["", "a", "lovelace", "TURING", "ünal", "ÜNAL", "élodie", "øren", "k", "ilkay",
            "İlkay", "jo_", "100%", "corp.example", "alan.hopper1", "zzq"]  # fmt: skip
COMBINATIONS = list(
    itertools.product(
        SEARCHES,
        ["", "in_sync", "failed", "orphaned"],
        ["", "Analyst", "Security Reviewer", service.NO_ROLE],
    )
)


def test_every_combination_of_search_state_and_role_lists_exactly_the_plain_querys_people(app):
    seed(app)
    with app.app_context():
        middle = sorted(db.session.scalars(select(Person.key)))[350]
        for q, state, role in COMBINATIONS:
            filters = service.Filters(q=q, state=state, role=role)
            assert every_page(filters, size=40) == reference(filters), filters
            deep = service.Filters(q=q, state=state, role=role, after=middle)
            assert every_page(deep, size=40) == reference(deep), deep
            # The bulk edit's "every user the filters match" is the same people.
            ids = service.matching_ids(filters, 1000)
            assert len(ids) == len(reference(filters))


@pytest.mark.parametrize("query", ["q=ünal&state=in_sync", "q=LOVELACE&role=Analyst", "q=zzq"])
def test_the_page_lists_what_the_plain_query_lists(admin_client, app, query):
    seed(app, 300)
    args = dict(part.split("=") for part in query.split("&"))
    with app.app_context():
        expected = reference(service.Filters(**args))[: service.PAGE_SIZE]
        user_names = dict(db.session.execute(select(Person.key, Person.user_name)).all())
    body = admin_client.get(f"/users?{query}").get_data(as_text=True)
    listed = re.findall(r'<div class="sub user-name">([^<· ]+)', body)
    assert listed == [user_names[key] for key in expected]
    if not expected:
        assert "No user matches" in body


def test_a_one_or_two_letter_search_says_how_far_it_looked_and_goes_on(
    admin_client, app, monkeypatch
):
    """No trigram holds one or two letters: on PostgreSQL a page looks through
    SHORT_WINDOW users at most, then says how far it looked and offers to look further.
    SQLite reads everyone (cheaply) and never stops early. Following the links lists every
    match, in key order, either way."""
    monkeypatch.setattr(service, "SHORT_WINDOW", 60)
    seed(app, 400)
    with app.app_context():
        expected = reference(service.Filters(q="LV"))  # Kelvin, about one in ten
        user_names = dict(db.session.execute(select(Person.key, Person.user_name)).all())
        postgres = db.engine.dialect.name == "postgresql"
    assert 10 < len(expected) < 60

    url, listed, said = "/users?q=LV", [], []
    while url:
        body = admin_client.get(url).get_data(as_text=True)
        listed += re.findall(r'<div class="sub user-name">([^<· ]+)', body)
        said += re.findall(r"users match “LV” up to ([^ ]+) \(by user name\)\. A search of one "
                           r"or two letters looks through 60 users at a time", body)  # fmt: skip
        link = re.search(r'href="(/users\?[^"]+)"[^>]*rel="next">([^<]+)<', body)
        url = link.group(1).replace("&amp;", "&") if link else None
        if link:
            assert link.group(2) == ("Look further" if said else f"Next {service.PAGE_SIZE} users")
    assert listed == [user_names[key] for key in expected]
    assert bool(said) == postgres
