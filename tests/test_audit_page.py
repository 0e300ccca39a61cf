"""The Audit page: filters by user, actor, action, source and time, alone and combined; keyset
pages newest first by when things happened; each entry's details; exports (the page's CSV
and JSON Lines links and `flask audit export`) holding exactly what the page shows, in the
hash chain's order; who may read them."""

from __future__ import annotations

import csv
import io
import itertools
import json
import re
from datetime import UTC, datetime, timedelta

import pytest
from freezegun import freeze_time
from sqlalchemy import event, insert, select

from dashboard import audit
from dashboard.audit import chain, search, walks
from dashboard.audit.models import AuditEntry
from dashboard.extensions import db
from dashboard.person import Person
from tests.support.forms import HTMX
from tests.support.people import person_id

ADA = "alan.admin@example.com"  # not the signed-in admin, whose sign-in is audited too
OPS = "cli:ops"
BOB = "bob.stone@example.com"
CARA = "cara.field@example.com"
START = datetime(2026, 3, 1, tzinfo=UTC)
WHAT = [  # (source, actor, action)
    ("dashboard", ADA, "roles.edit"),
    ("dashboard", ADA, "access.grant"),
    ("dashboard", OPS, "access.remove_app"),
    ("sync", "sync", "sync.update"),
    ("onelogin", "onelogin", "onelogin.user_updated"),
    ("workato", "builder@example.com", "workato.member_role_changed"),
]


def seed(app, count: int = 120) -> list[dict]:
    """`count` entries through audit.record, 90 minutes apart from START: every kind of
    entry about Bob, Cara or nobody. Returns them as written, oldest first, with their ids."""
    written = []
    with app.app_context():
        for n, ((source, actor, action), user) in enumerate(
            zip(
                itertools.islice(itertools.cycle(WHAT), count),
                itertools.cycle([BOB, CARA, BOB, None, CARA]),
            )
        ):
            at = START + timedelta(minutes=90 * n)
            with freeze_time(at):
                entry = audit.record(
                    action,
                    actor=actor,
                    outcome="success",
                    target_user=user,
                    source=source,
                    details={"n": n, "workato_role": ["Analyst", "Admin"]},
                )
                db.session.commit()
            written.append(
                {"id": entry.id, "at": at, "source": source, "actor": actor, "action": action}
                | {"user": user}
            )
    return written


def matching(written: list[dict], **filters) -> list[int]:
    """The ids the filters should give, newest first, worked out here in Python."""
    since = search.parse_time(filters["since"]) if "since" in filters else None
    until = search.parse_time(filters["until"], end=True) if "until" in filters else None
    action = filters.get("action", "")

    def keep(e: dict) -> bool:
        return (
            filters.get("user", e["user"]) == e["user"]
            and filters.get("actor", e["actor"]) == e["actor"]
            and filters.get("source", e["source"]) == e["source"]
            and (
                e["action"].startswith(action)
                if action.endswith(".")
                else action in ("", e["action"])
            )
            and (since is None or e["at"] >= since)
            and (until is None or e["at"] < until)
        )

    return [e["id"] for e in reversed(written) if keep(e)]


def walk(app, size: int = 7, **filters) -> list[int]:
    """Every page the service gives for these filters, followed by its keyset."""
    ids: list[int] = []
    with app.app_context():
        found = search.page(search.Filters(**filters), size)
        while True:
            assert len(found.entries) <= size
            ids += [e.id for e in found.entries]
            if found.next_before is None:
                return ids
            found = search.page(search.Filters(**filters, before=found.next_before), size)


def ids_on(body: str) -> list[int]:
    return [int(n) for n in re.findall(r"<dt>Entry</dt><dd>#(\d+)</dd>", body)]


def walk_pages(client, url: str) -> list[int]:
    """The entry ids on every page of the Audit page, following its "Older entries" link."""
    ids: list[int] = []
    while url:
        body = client.get(url).get_data(as_text=True)
        ids += ids_on(body)
        older = re.search(r'<a href="([^"]+)"[^>]*rel="next">Older entries', body)
        url = older.group(1).replace("&amp;", "&") if older else None
    return ids


def all_ids(app) -> list[int]:
    """Every entry (the seeded ones and those the test client's sign-in wrote, today), newest
    first by when they happened."""
    with app.app_context():
        newest_first = AuditEntry.occurred_at.desc(), AuditEntry.id.desc()
        return list(db.session.scalars(select(AuditEntry.id).order_by(*newest_first)))


# --- filters ---------------------------------------------------------------------------------

ALONE = [
    {"user": BOB},
    {"actor": ADA},
    {"action": "roles.edit"},
    {"action": "access."},
    {"source": "onelogin"},
    {"since": "2026-03-04"},
    {"until": "2026-03-02"},  # a date: the whole of 2 March included
    {"since": "2026-03-02T12:00", "until": "2026-03-04T06:00:00Z"},
    {"user": "bob.stone"},  # exact, not "contains": nothing
    {"action": "nothing."},  # a prefix no action has
]
COMBINED = [
    {"user": BOB, "action": "access."},
    {"user": CARA, "source": "dashboard", "since": "2026-03-03"},
    {"actor": ADA, "action": "roles.edit", "until": "2026-03-05"},
    {"actor": "sync", "source": "dashboard"},  # broad, and never together
    {"action": "access.", "source": "dashboard", "since": "2026-03-02", "until": "2026-03-06"},
    {"user": BOB, "actor": OPS, "action": "access.remove_app", "source": "dashboard"},
]


@pytest.mark.parametrize("filters", ALONE, ids=lambda f: ",".join(f"{k}={v}" for k, v in f.items()))
def test_each_filter_alone_narrows_to_exactly_its_entries(app, filters):
    written = seed(app)
    expected = matching(written, **filters)
    assert walk(app, **filters) == expected
    assert len(expected) < len(written)


# CAP 1: every filter counts as broad (the database chooses, from the newest in the time
# range); the default: the filter matching the fewest is walked. The same entries either way.
@pytest.mark.parametrize("cap", [1, walks.CAP])
@pytest.mark.parametrize(
    "filters", COMBINED, ids=lambda f: ",".join(f"{k}={v}" for k, v in f.items())
)
def test_filters_combine_to_exactly_the_entries_matching_all(app, filters, cap, monkeypatch):
    monkeypatch.setattr(walks, "CAP", cap)
    written = seed(app)
    assert walk(app, **filters) == matching(written, **filters)


def test_since_is_inclusive_and_until_exclusive_a_date_until_including_its_day(app):
    written = seed(app, 40)  # 1 March 00:00 to 3 March 10:30
    at = {e["at"]: e["id"] for e in written}
    midnight, before_it = (
        at[datetime(2026, 3, 2, tzinfo=UTC)],
        at[datetime(2026, 3, 1, 22, 30, tzinfo=UTC)],
    )
    assert walk(app, since="2026-03-02")[-1] == midnight  # its first entry, at 00:00
    assert walk(app, until="2026-03-02T00:00")[0] == before_it  # that one left out
    assert walk(app, until="2026-03-01")[0] == before_it  # the whole of 1 March
    assert walk(app, since="2026-03-02T01:00+01:00")[-1] == midnight  # an offset: in UTC


def test_the_page_and_the_htmx_partial_show_the_filtered_entries(admin_client, app):
    written = seed(app)
    page = admin_client.get("/audit?user=bob.stone%40example.com&action=access.")
    assert page.status_code == 200
    body = page.get_data(as_text=True)
    assert ids_on(body) == matching(written, user=BOB, action="access.")
    assert 'value="bob.stone@example.com"' in body  # the form shows what is filtered
    form = re.search(r'<form class="filters audit-filters"[^>]*>', body).group(0)
    assert 'hx-get="/audit" hx-target="#audit-results" hx-push-url="true"' in form

    partial = admin_client.get("/audit?source=onelogin", headers=HTMX).get_data(as_text=True)
    assert "<html" not in partial and "<form" not in partial
    assert ids_on(partial) == matching(written, source="onelogin")


def test_bad_filter_values_are_ignored_and_said(admin_client, app):
    written = seed(app, 10)
    url = "/audit?source=ldap&since=yesterday&until=2026-02-30&before=12abc&actor=" + ADA
    body = admin_client.get(url).get_data(as_text=True)
    assert ids_on(body) == matching(written, actor=ADA)  # the actor filter still applies
    for said in ("source: “ldap” is not one of", "since: “yesterday” is not", "until: “2026-02-30”",
                 "before: “12abc” is not a place in the list"):  # fmt: skip
        assert said in body


def test_nothing_matching_gives_a_short_empty_state(admin_client, app):
    seed(app, 10)
    body = admin_client.get("/audit?action=nothing.").get_data(as_text=True)
    assert "No entry matches these filters." in body and "Clear filters" in body
    assert ids_on(body) == []


# --- pages -----------------------------------------------------------------------------------


def test_keyset_pages_walk_every_entry_once_newest_first_without_offset(admin_client, app):
    seed(app, 130)
    everything = all_ids(app)  # 130 plus the sign-in's own entries
    statements: list[tuple] = []
    with app.app_context():
        event.listen(db.engine, "before_cursor_execute", lambda *a: statements.append(a[2:4]))
    ids = walk_pages(admin_client, "/audit")
    assert ids == everything
    assert len(ids) > 2 * search.PAGE_SIZE  # three pages at least
    # SQLite's dialect writes every LIMIT as "LIMIT ? OFFSET ?", with 0; nothing skips rows.
    offsets = [params for sql, params in statements if "OFFSET" in sql.upper()]
    assert statements and all(isinstance(p, tuple) and p[-1] == 0 for p in offsets)


def test_pages_across_many_entries_of_one_instant_neither_skip_nor_repeat(admin_client, app):
    """A run's items can share a microsecond: 120 entries at one instant (a page boundary
    falls among them twice), with 30 recorded between them that happened an hour before.
    Pages give the 120 first, in the order recorded newest first, then the 30: each once."""
    at = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
    with app.app_context():
        batches = [(at, 60), (at - timedelta(hours=1), 30), (at, 60)]
        for when, count in batches:
            audit.record_all([{"action": "sync.update", "actor": "sync", "outcome": "success",
                               "source": "sync", "occurred_at": when}] * count)  # fmt: skip
        db.session.commit()
        same = list(db.session.scalars(select(AuditEntry.id).where(AuditEntry.occurred_at == at)))
        earlier = list(db.session.scalars(select(AuditEntry.id).where(AuditEntry.occurred_at < at)))
    assert len(same) == 120 and len(earlier) == 30
    ids = walk_pages(admin_client, "/audit?source=sync")
    assert ids == sorted(same, reverse=True) + sorted(earlier, reverse=True)
    assert walk(app, size=7, actor="sync") == ids  # and on another walk, smaller pages


def test_filtered_pages_keep_their_filters(admin_client, app):
    written = seed(app, 310)
    expected = matching(written, source="sync")
    assert len(expected) == search.PAGE_SIZE + 2  # one full page, then two entries
    body = admin_client.get("/audit?source=sync").get_data(as_text=True)
    older = re.search(r'<a href="([^"]+)"[^>]*rel="next"', body).group(1).replace("&amp;", "&")
    last = next(e for e in written if e["id"] == expected[search.PAGE_SIZE - 1])
    # The keyset: the page's last entry, by when it happened and its id.
    assert last["at"] == datetime(2026, 3, 1, 22, 30, tzinfo=UTC)
    assert older == f"/audit?source=sync&before=2026-03-01T22:30:00.000000Z~{last['id']}"
    assert walk_pages(admin_client, "/audit?source=sync") == expected


def test_each_entry_expands_to_its_details(admin_client, app):
    with app.app_context():
        audit.record(
            "roles.edit",
            actor=ADA,
            outcome="success",
            target_user=BOB,
            details={"changes": {"workato_role": [None, "Analyst"]}, "note": "from the CSV"},
        )
        db.session.commit()
    body = admin_client.get(f"/audit?user={BOB}").get_data(as_text=True)
    details = re.search(r'<details class="entry-details">(.*?)</details>', body, re.S).group(1)
    assert "<summary>" in details and "changes: workato_role: — → Analyst" in details
    for field in ("<dt>Source</dt><dd>dashboard</dd>", f"<dt>User</dt><dd>{BOB}</dd>",
                  "<dt><code>note</code></dt><dd>from the CSV</dd>"):  # fmt: skip
        assert field in details


# --- exports ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "query", ["", "?user=bob.stone%40example.com&action=access.", "?since=2026-03-04"]
)
def test_csv_and_jsonl_exports_hold_exactly_what_the_pages_show(admin_client, app, query):
    seed(app, 130)
    shown = walk_pages(admin_client, "/audit" + query)
    as_csv = admin_client.get("/audit/export.csv" + query)
    assert as_csv.mimetype == "text/csv"
    assert re.fullmatch(r'attachment; filename="audit-\d{8}-\d{6}\.csv"',
                        as_csv.headers["Content-Disposition"])  # fmt: skip
    table = list(csv.DictReader(io.StringIO(as_csv.get_data(as_text=True))))
    as_jsonl = admin_client.get("/audit/export.jsonl" + query)
    assert as_jsonl.headers["Content-Disposition"].endswith('.jsonl"')
    lines = [json.loads(line) for line in as_jsonl.get_data(as_text=True).splitlines()]
    # Every page's entries, in the chain's order (as recorded).
    assert [int(row["id"]) for row in table] == sorted(shown)
    assert [line["id"] for line in lines] == sorted(shown)
    assert [line["seq"] for line in lines] == sorted(line["seq"] for line in lines)


def test_exports_carry_every_field_as_recorded(admin_client, app):
    written = seed(app, 5)
    first = written[0]
    table = list(csv.reader(io.StringIO(admin_client.get("/audit/export.csv?user=" + BOB).text)))
    assert table[0] == ["id", "occurred_at", "actor", "source", "action", "outcome",
                        "target_user", "source_ip", "details",
                        "seq", "prev_hash", "hash"]  # fmt: skip
    assert table[1][:9] == [str(first["id"]), "2026-03-01T00:00:00.000000+00:00", ADA,
                            "dashboard", "roles.edit", "success", BOB, "",
                            '{"n": 0, "workato_role": ["Analyst", "Admin"]}']  # fmt: skip
    with app.app_context():
        stored = db.session.get(AuditEntry, first["id"])
        chained = [str(stored.seq), stored.prev_hash, stored.hash]
        assert stored.hash == chain.hash_of(stored)  # what the security team can recompute
    assert table[1][9:] == chained
    line = json.loads(admin_client.get("/audit/export.jsonl?user=" + BOB).text.splitlines()[0])
    assert line == {
        "id": first["id"],
        "occurred_at": "2026-03-01T00:00:00.000000+00:00",
        "actor": ADA,
        "source": "dashboard",
        "action": "roles.edit",
        "outcome": "success",
        "target_user": BOB,
        "source_ip": None,
        "details": {"n": 0, "workato_role": ["Analyst", "Admin"]},
        "seq": int(chained[0]),
        "prev_hash": chained[1],
        "hash": chained[2],
    }


def test_a_formula_looking_cell_is_quoted_in_csv_and_left_as_is_in_jsonl(admin_client, app):
    actors = ['=HYPERLINK("http://evil.example","x")', "+1", "-2+3", "@SUM(A1)", "\tx", "\rx"]
    with app.app_context():
        for actor in actors:
            audit.record("test.formula", actor=actor, outcome="success", target_user="=1+1")
        db.session.commit()
    table = list(csv.DictReader(io.StringIO(admin_client.get("/audit/export.csv").text)))
    rows = [row for row in table if row["action"] == "test.formula"]
    assert [row["actor"] for row in rows] == ["'" + actor for actor in actors]
    assert {row["target_user"] for row in rows} == {"'=1+1"}
    lines = admin_client.get("/audit/export.jsonl?action=test.formula").text.splitlines()
    assert [json.loads(line)["actor"] for line in lines] == actors


def test_the_cli_export_with_since_matches_the_page(admin_client, app):
    seed(app, 130)
    shown = walk_pages(admin_client, "/audit?since=2026-03-04")
    runner = app.test_cli_runner()
    result = runner.invoke(args=["audit", "export", "--format", "jsonl", "--since", "2026-03-04"])
    assert result.exit_code == 0, result.output
    assert [json.loads(line)["id"] for line in result.stdout.splitlines()] == sorted(shown)
    assert result.stderr == f"{len(shown)} entries written.\n"

    result = runner.invoke(args=["audit", "export", "--since", "2026-03-04", "--source", "sync"])
    assert result.exit_code == 0
    table = list(csv.DictReader(io.StringIO(result.stdout)))
    with app.app_context():
        expected = [
            e.id for e in search.page(search.Filters(since="2026-03-04", source="sync")).entries
        ]
    assert [int(row["id"]) for row in table] == sorted(expected)


@pytest.mark.parametrize(
    "args",
    [
        ["--since", "last tuesday"],
        ["--until", "2026-13-01"],
        ["--format", "xml"],
        ["--source", "ldap"],
    ],
)
def test_the_cli_export_refuses_wrong_usage_with_exit_2(app, args):
    result = app.test_cli_runner().invoke(args=["audit", "export", *args])
    assert result.exit_code == 2
    assert result.stdout == ""


def test_the_cli_export_says_what_it_does(app):
    result = app.test_cli_runner().invoke(args=["audit", "export", "--help"])
    assert result.exit_code == 0
    assert "--since" in result.output and "--format [csv|jsonl]" in result.output


# --- who may see it --------------------------------------------------------------------------


def test_viewers_may_read_and_export(viewer_client, app):
    seed(app, 10)
    assert viewer_client.get("/audit?source=sync").status_code == 200
    for url in ("/audit/export.csv", "/audit/export.jsonl?actor=" + ADA):
        response = viewer_client.get(url)
        assert response.status_code == 200
        assert response.headers["Content-Disposition"].startswith("attachment;")
        assert response.get_data(as_text=True)  # read to its end: the stream closes


def test_signed_out_visitors_are_sent_to_sign_in(client):
    for url in ("/audit", "/audit/export.csv", "/audit/export.jsonl"):
        assert client.get(url).status_code == 302


# --- the user page -----------------------------------------------------------------------------


def test_the_user_page_timeline_still_lists_the_users_entries(admin_client, app):
    written = seed(app, 12)
    with app.app_context():
        db.session.execute(
            insert(Person),
            [
                {
                    "key": BOB,
                    "user_name": BOB,
                    "email": BOB,
                    "state": "in_sync",
                    "action": "noop",
                    "seen_at": START,
                }
            ],
        )
        db.session.commit()
    body = admin_client.get(f"/users/{person_id(app, BOB)}").get_data(as_text=True)
    card = body.split('id="timeline-title"')[1]
    bobs = matching(written, user=BOB)
    assert ids_on(card) == bobs
    newest = next(e["action"] for e in written if e["id"] == bobs[0])
    assert re.findall(r"<td><code>([\w.]+)</code></td>", card)[0] == newest
    assert f"<td>{BOB}</td>" not in card  # no User column on one user's own page
