"""The audit trail's hash chain: every entry carries the previous one's hash, writers never
fork the chain (SQLite and PostgreSQL), verification finds the first entry changed, removed
or inserted behind the application's back, and pruning leaves a signed checkpoint."""

from __future__ import annotations

import hashlib
import itertools
import json
import threading
from datetime import timedelta

import pytest
from sqlalchemy import delete, insert, select, update

from dashboard import audit
from dashboard.audit import chain, retention
from dashboard.audit.models import AuditCheckpoint, AuditEntry
from dashboard.extensions import db
from dashboard.timeutil import utcnow

ACTOR = "ada.admin@example.com"


def write(app, count: int, action: str = "test.thing") -> None:
    with app.app_context():
        for n in range(count):
            audit.record(action, actor=ACTOR, outcome="success", details={"n": n})
            db.session.commit()


def verdict(app) -> chain.Verdict:
    with app.app_context():
        return chain.verify()


def entries(app) -> list[AuditEntry]:
    with app.app_context():
        found = list(db.session.scalars(select(AuditEntry).order_by(AuditEntry.seq)))
        db.session.expunge_all()
        return found


def test_each_entry_carries_the_hash_of_the_one_before(app):
    write(app, 5)
    found = entries(app)
    assert [e.seq for e in found] == [1, 2, 3, 4, 5]
    assert found[0].prev_hash == chain.GENESIS
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(found))
    assert verdict(app) == chain.Verdict(True, 5)


def test_a_row_changed_in_the_database_is_found_at_that_entry(app):
    write(app, 5)
    third = entries(app)[2]
    with app.app_context():
        db.session.execute(
            update(AuditEntry.__table__).where(AuditEntry.id == third.id).values(details={"n": 99})
        )
        db.session.commit()
    found = verdict(app)
    assert not found.ok and found.seq == 3 and found.entry_id == third.id
    assert found.problem == f"Entry {third.id} (#3) was changed after it was written."
    assert found.checked == 2


def test_a_row_removed_in_the_database_is_found_where_it_was(app):
    write(app, 5)
    third = entries(app)[2]
    with app.app_context():
        db.session.execute(delete(AuditEntry.__table__).where(AuditEntry.id == third.id))
        db.session.commit()
    found = verdict(app)
    assert not found.ok and found.seq == 4
    assert "entries 3 to 3 are missing (deleted?)" in found.problem


def test_the_newest_rows_removed_are_found_at_the_head(app):
    write(app, 5)
    with app.app_context():
        db.session.execute(delete(AuditEntry.__table__).where(AuditEntry.seq >= 4))
        db.session.commit()
    found = verdict(app)
    assert not found.ok and found.checked == 3
    assert "ends at entry #3, but 5 were written" in found.problem


def test_a_row_inserted_in_the_database_is_found(app):
    write(app, 3)
    last = entries(app)[-1]
    with app.app_context():
        db.session.execute(
            insert(AuditEntry.__table__).values(
                occurred_at=utcnow(),
                actor="mallory@example.com",
                source="dashboard",
                action="roles.edit",
                outcome="success",
                details={},
                seq=4,
                prev_hash=last.hash,
                hash="f" * 64,  # a writer without our code cannot know the hash to put
            )
        )
        db.session.commit()
    found = verdict(app)
    assert not found.ok and found.seq == 4
    assert "was changed after it was written" in found.problem


def test_a_rewritten_tail_that_skips_the_head_is_found(app):
    """Even an entry inserted with the right hash is found: the head still says 3."""
    write(app, 3)
    last = entries(app)[-1]
    with app.app_context():
        when = utcnow()
        values = dict(
            occurred_at=when,
            actor="mallory@example.com",
            source="dashboard",
            action="roles.edit",
            outcome="success",
            target_user=None,
            source_ip=None,
            details={},
            seq=4,
            prev_hash=last.hash,
        )
        digest = chain.entry_hash(**values)
        db.session.execute(insert(AuditEntry.__table__).values(**values, hash=digest))
        db.session.commit()
    found = verdict(app)
    assert not found.ok and "ends at entry #4, but 3 were written" in found.problem


def test_concurrent_writers_never_fork_the_chain(app):
    """Eight threads, each its own connection and transaction, write at once."""
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            write(app, 10, action=f"test.writer{n}")
        except BaseException as exc:  # reported below: a thread cannot fail the test itself
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert [e.seq for e in entries(app)] == list(range(1, 81))
    assert verdict(app) == chain.Verdict(True, 80)


def test_pruning_leaves_a_signed_checkpoint_and_the_rest_verifies(app):
    write(app, 3)
    with app.app_context():
        cut = utcnow()
    write(app, 1)
    with app.app_context():
        assert retention.preview(cut).count == 3
        pruned = retention.prune(cut, ACTOR)
        checkpoint = db.session.scalar(select(AuditCheckpoint))
        assert (checkpoint.up_to_seq, checkpoint.pruned, checkpoint.created_by) == (3, 3, ACTOR)
    assert (pruned.count, pruned.up_to_seq) == (3, 3)
    remaining = entries(app)
    assert [e.seq for e in remaining] == [4, 5]  # the fourth entry, then the prune's own
    assert remaining[-1].action == "audit.prune"
    assert remaining[-1].details["pruned"] == 3
    assert verdict(app) == chain.Verdict(True, 2)


def test_a_checkpoint_not_signed_with_our_key_fails_verification(app):
    write(app, 3)
    with app.app_context():
        retention.prune(utcnow() + timedelta(seconds=1), ACTOR)
        db.session.execute(update(AuditCheckpoint.__table__).values(pruned=1))
        db.session.commit()
    found = verdict(app)
    assert not found.ok and "is not signed with this installation's SECRET_KEY" in found.problem


def test_a_broken_chain_is_not_pruned(app):
    write(app, 3)
    with app.app_context():
        db.session.execute(update(AuditEntry.__table__).values(actor="someone@else"))
        db.session.commit()
        with pytest.raises(retention.PruneRefused, match="does not verify"):
            retention.prune(utcnow() + timedelta(seconds=1), ACTOR)
    assert len(entries(app)) == 3


# --- the commands -----------------------------------------------------------------------


def cli(app, *args: str):
    return app.test_cli_runner().invoke(args=["audit", *args])


def test_flask_audit_verify_passes_then_names_the_changed_entry(app):
    write(app, 3)
    ok = cli(app, "verify")
    assert ok.exit_code == 0 and "3 entries, every link holds" in ok.output
    second = entries(app)[1]
    with app.app_context():
        db.session.execute(
            update(AuditEntry.__table__).where(AuditEntry.id == second.id).values(outcome="failed")
        )
        db.session.commit()
    broken = cli(app, "verify", "--json")
    assert broken.exit_code == 1
    document = json.loads(broken.output)
    assert document["ok"] is False and (document["seq"], document["id"]) == (2, second.id)


def test_flask_audit_prune_asks_first_then_prunes_and_verifies(app, monkeypatch):
    with monkeypatch.context() as clock:
        # Recorded 40 days ago, as a real installation's entries would have been.
        then = utcnow() - timedelta(days=40)
        clock.setattr(chain, "utcnow", lambda: then)
        write(app, 2, action="test.old")
    nothing = cli(app, "prune", "--older-than-days", "50")
    assert nothing.exit_code == 0
    assert "0 entries were recorded more than 50 days ago" in nothing.output
    assert "nothing to remove" in nothing.output
    off = cli(app, "prune")  # DASHBOARD_AUDIT_RETENTION_DAYS is 0 here
    assert off.exit_code == 0 and "Retention is off" in off.output
    write(app, 3)
    asked = cli(app, "prune", "--older-than-days", "30")
    assert asked.exit_code == 3 and "Run again with --yes" in asked.output
    assert "2 entries were recorded more than 30 days ago" in asked.output
    done = cli(app, "prune", "--older-than-days", "30", "--yes", "--json")
    assert done.exit_code == 0, done.output
    assert json.loads(done.output)["pruned"] == 2
    assert cli(app, "verify").exit_code == 0
    assert [e.action for e in entries(app)] == ["test.thing"] * 3 + ["audit.prune"]


def test_flask_audit_import_without_connections_says_so(app):
    result = cli(app, "import")
    assert result.exit_code == 0
    assert "onelogin: not connected, skipped." in result.output
    assert "workato: not connected, skipped." in result.output


def test_an_export_verifies_on_its_own_as_the_readme_describes(app):
    """The security team's check: only hashlib and json, over the JSON Lines export."""
    write(app, 4)
    exported = cli(app, "export", "--format", "jsonl")
    assert exported.exit_code == 0
    lines = [json.loads(line) for line in exported.stdout.splitlines() if line.strip()]
    assert len(lines) == 4
    prev = "0" * 64
    for entry in sorted(lines, key=lambda e: e["seq"]):
        fields = [entry[k] for k in ("seq", "prev_hash", "occurred_at", "actor", "source")]
        fields += [entry[k] for k in ("action", "outcome", "target_user", "source_ip", "details")]
        text = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        assert entry["prev_hash"] == prev
        assert entry["hash"] == hashlib.sha256(text.encode()).hexdigest()
        prev = entry["hash"]
