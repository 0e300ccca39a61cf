"""Signed digests of the audit trail (issue 13): someone who can write to the database but
holds none of the dashboard's keys changes an entry and recomputes every later hash and the
head; the chain alone still holds, the signed digests do not. Digests are signed on the
first write an hour after the last one, at a run's end, before a prune and on demand; a
changed, foreign or removed digest fails verification; the digest file keeps a copy the
database cannot take back; and an export checks with the public key alone."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import delete, insert, select, update

from dashboard import audit
from dashboard.audit import chain, digests, retention
from dashboard.audit.models import AuditCheckpoint, AuditDigest, AuditEntry
from dashboard.extensions import db
from dashboard.sync import runner, service
from dashboard.timeutil import utcnow
from tests.support.audit_attacks import rewrite
from tests.support.sync_world import World

ACTOR = "ada.admin@example.com"
README = Path(__file__).resolve().parent.parent / "README.md"


def write(app, count: int, action: str = "test.thing") -> None:
    with app.app_context():
        for n in range(count):
            audit.record(action, actor=ACTOR, outcome="success", details={"n": n})
            db.session.commit()


def cli(app, *args: str):
    return app.test_cli_runner().invoke(args=["audit", *args])


def signed(app) -> list[dict]:
    """Every digest in the database, oldest first, as exported."""
    with app.app_context():
        found = db.session.scalars(select(AuditDigest).order_by(AuditDigest.number))
        return [digests.as_json(d) for d in found]


def verify(app) -> dict:
    result = cli(app, "verify", "--json")
    document = json.loads(result.output)
    assert result.exit_code == (0 if document["ok"] else 1)
    return document


def test_a_chain_rewritten_with_every_hash_and_the_head_recomputed_fails_on_a_digest(app):
    """The attack the chain alone misses: the rewrite holds link by link, not against the
    digest signed before it."""
    write(app, 5)
    assert cli(app, "digest").exit_code == 0
    rewrite(app, 2, actor="mallory@example.com", details={"n": 99})
    with app.app_context():
        assert chain.verify().ok  # every link holds: the chain alone is fooled
    found = verify(app)
    assert found["ok"] is False and found["seq"] == 5
    assert found["problem"].startswith("The chain no longer matches digest #2 (signed ")
    assert "Entries up to #5 were changed" in found["problem"]


def test_the_first_write_signs_a_digest_and_the_first_write_an_hour_later_the_next(
    app, monkeypatch
):
    write(app, 3)
    first = signed(app)
    assert [(d["number"], d["seq"], d["reason"]) for d in first] == [(1, 1, "hourly")]
    assert first[0]["prev_digest_hash"] == chain.GENESIS
    later = utcnow() + timedelta(minutes=61)
    monkeypatch.setattr(digests, "utcnow", lambda: later)
    write(app, 2)
    both = signed(app)
    assert [(d["number"], d["seq"], d["reason"]) for d in both] == [
        (1, 1, "hourly"),
        (2, 4, "hourly"),  # the write that found it due, covered by its own digest
    ]
    assert both[1]["prev_digest_hash"] == both[0]["digest_hash"]
    found = verify(app)
    assert (found["ok"], found["checked"], found["digests"], found["signed_up_to"]) == (
        True,
        5,
        2,
        4,
    )


def test_flask_audit_verify_says_how_far_the_digests_sign(app):
    write(app, 3)
    assert cli(app, "digest").exit_code == 0
    result = cli(app, "verify")
    assert result.exit_code == 0
    assert "3 entries, every link holds. 2 signed digests match it, the newest up to entry #3" in (
        result.output
    )


def test_a_digest_changed_to_fit_a_rewrite_fails_its_signature(app):
    write(app, 3)
    assert cli(app, "digest").exit_code == 0
    rewrite(app, 3, outcome="failed")
    with app.app_context():
        new_head = db.session.scalar(select(AuditEntry.hash).where(AuditEntry.seq == 3))
        db.session.execute(
            update(AuditDigest.__table__).where(AuditDigest.number == 2).values(head_hash=new_head)
        )
        db.session.commit()
    found = verify(app)
    assert found["ok"] is False
    assert "Digest #2 (signed " in found["problem"]
    assert "does not match its signature" in found["problem"]


@pytest.mark.parametrize("claims_our_key", [True, False], ids=["our-key-id", "own-key-id"])
def test_digests_signed_again_with_another_key_fail(app, claims_our_key):
    """The attacker rewrites the chain and replaces every digest with ones of their own,
    made exactly as the README describes, signed with a key of their own."""
    write(app, 3)
    assert cli(app, "digest").exit_code == 0
    ours = signed(app)
    rewrite(app, 1, actor="mallory@example.com")
    theirs = Ed25519PrivateKey.generate()
    raw = theirs.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    key_id = ours[0]["key_id"] if claims_our_key else hashlib.sha256(raw).hexdigest()
    with app.app_context():
        heads = dict(db.session.execute(select(AuditEntry.seq, AuditEntry.hash)).all())
        db.session.execute(delete(AuditDigest.__table__))
        previous = chain.GENESIS
        for old in ours:
            record = {**old, "head_hash": heads[old["seq"]], "prev_digest_hash": previous}
            record["key_id"] = key_id
            message = json.dumps(
                {k: record[k] for k in digests.SIGNED}, sort_keys=True, separators=(",", ":")
            ).encode()
            record["digest_hash"] = hashlib.sha256(message).hexdigest()
            record["signature"] = theirs.sign(message).hex()
            record["signed_at"] = datetime.fromisoformat(record["signed_at"])
            db.session.execute(insert(AuditDigest.__table__).values(**record))
            previous = record["digest_hash"]
        db.session.commit()
    found = verify(app)
    assert found["ok"] is False and "Digest #1 (signed " in found["problem"]
    if claims_our_key:
        assert "does not match its signature" in found["problem"]
    else:
        assert "was signed with another key" in found["problem"]


def test_a_digest_removed_between_two_others_is_found(app):
    write(app, 1)
    assert cli(app, "digest").exit_code == 0
    assert cli(app, "digest").exit_code == 0
    with app.app_context():
        db.session.execute(delete(AuditDigest.__table__).where(AuditDigest.number == 2))
        db.session.commit()
    found = verify(app)
    assert found["ok"] is False
    assert found["problem"] == (
        "Digest #2 is missing (digests 2 to 2 were removed from the database)."
    )


class TestDigestFile:
    @pytest.fixture
    def folder(self, tmp_path) -> Path:
        path = tmp_path / "digests"
        path.mkdir()
        return path

    @pytest.fixture
    def app(self, make_app, folder):
        return make_app(DASHBOARD_AUDIT_DIGEST_DIR=str(folder))

    def kept(self, folder: Path) -> list[dict]:
        path = folder / digests.FILE_NAME
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []

    def test_each_digest_is_appended_once_committed_as_the_database_has_it(self, app, folder):
        write(app, 2)
        assert cli(app, "digest").exit_code == 0
        assert self.kept(folder) == signed(app)
        assert [d["number"] for d in self.kept(folder)] == [1, 2]
        assert (folder / digests.FILE_NAME).stat().st_mode & 0o777 == 0o600

    def test_a_write_rolled_back_leaves_neither_digest_nor_line(self, app, folder):
        with app.app_context():
            audit.record("test.thing", actor=ACTOR, outcome="success")
            db.session.rollback()
        assert signed(app) == [] and self.kept(folder) == []
        write(app, 1)
        assert [d["seq"] for d in self.kept(folder)] == [1]

    def test_the_newest_digest_removed_with_a_rewrite_is_found_in_the_file(self, app, folder):
        """Without the file this goes unseen: the database's digests still chain."""
        write(app, 3)
        assert cli(app, "digest").exit_code == 0
        with app.app_context():
            db.session.execute(delete(AuditDigest.__table__).where(AuditDigest.number == 2))
            db.session.commit()
        rewrite(app, 2, outcome="failed")
        found = verify(app)
        assert found["ok"] is False
        path = folder / digests.FILE_NAME
        assert found["problem"] == (
            f"Digest #2, kept in {path}, is not in the database: it was removed."
        )

    def test_a_digest_folder_that_does_not_exist_stops_the_start(self, make_app, tmp_path):
        from dashboard.settings import ConfigError

        with pytest.raises(ConfigError, match=r"DASHBOARD_AUDIT_DIGEST_DIR names .* not a folder"):
            make_app(DASHBOARD_AUDIT_DIGEST_DIR=str(tmp_path / "nowhere"))


def test_a_prune_signs_a_digest_first_and_what_remains_verifies_against_it(app):
    write(app, 3)
    with app.app_context():
        cut = utcnow()
    write(app, 1)
    with app.app_context():
        assert retention.prune(cut, ACTOR).up_to_seq == 3
    assert [(d["reason"], d["seq"]) for d in signed(app)] == [("hourly", 1), ("prune", 4)]
    found = verify(app)
    assert found["ok"] is True and found["digests"] == 2
    # What the prune left is still held to the digest it signed.
    rewrite(app, 4, details={"n": 7})
    broken = verify(app)
    assert broken["ok"] is False
    assert broken["problem"].startswith("The chain no longer matches digest #2")


@pytest.mark.parametrize("signed_as_a_prune", [False, True])
def test_a_checkpoint_forged_with_secret_key_does_not_hide_removed_entries(app, signed_as_a_prune):
    """Someone holding the database and SECRET_KEY (not the signing key) writes a checkpoint
    past the newest digest and removes what it stands for: verify fails. A real prune's
    checkpoint, carrying the signing key's signature, verifies."""
    write(app, 6)
    assert cli(app, "digest").exit_code == 0  # signs up to entry #6
    write(app, 2)
    with app.app_context():
        if signed_as_a_prune:
            retention.prune(utcnow() + timedelta(seconds=1), ACTOR)
        else:
            last = db.session.scalars(select(AuditEntry).where(AuditEntry.seq == 8)).one()
            forged = AuditCheckpoint(
                up_to_seq=8,
                last_hash=last.hash,
                pruned=8,
                before=utcnow(),
                created_by="mallory@example.com",
                signature="",
            )
            forged.signature = chain.sign(forged)  # SECRET_KEY's HMAC: accepted by the chain
            db.session.add(forged)
            db.session.execute(delete(AuditEntry).where(AuditEntry.seq <= 8))
            db.session.commit()
            assert chain.verify().ok
    found = verify(app)
    if signed_as_a_prune:
        assert found["ok"] is True
    else:
        assert found["ok"] is False
        assert "not signed with this installation's audit signing key" in found["problem"]


def test_a_chain_that_no_longer_matches_its_digests_is_not_pruned(app):
    write(app, 3)
    assert cli(app, "digest").exit_code == 0
    rewrite(app, 1, actor="mallory@example.com")
    refused = pytest.raises(retention.PruneRefused, match="no longer matches digest #1 ")
    with app.app_context(), refused:
        retention.prune(utcnow() + timedelta(seconds=1), ACTOR)
    assert [e["seq"] for e in signed(app)] == [1, 3]  # nothing signed, nothing removed


def test_a_sync_run_ends_with_a_digest_of_its_finished_entry(make_app):
    app = make_app(DASHBOARD_SYNC_EXECUTOR="worker", DASHBOARD_SYNC_RATE=0)
    with World.small(app) as world:
        world.person("Ada", "Lovelace", workato_role="Admin")
        with app.app_context():
            run, _plan = service.make_plan(ACTOR)
            service.apply(run.id, ACTOR, start=False)
            runner.process(run.id)
            finished = db.session.scalar(
                select(AuditEntry.seq).where(AuditEntry.action == "sync.run.finished")
            )
    newest = signed(app)[-1]
    assert (newest["reason"], newest["seq"]) == ("run", finished)
    assert verify(app)["ok"] is True


def test_flask_audit_digest_prints_a_digest_the_public_key_checks(app):
    write(app, 2)
    result = cli(app, "digest", "--json")
    assert result.exit_code == 0
    document = json.loads(result.output)
    assert document == signed(app)[-1]
    assert (document["number"], document["seq"], document["reason"]) == (2, 2, "command")
    pem = cli(app, "public-key")
    assert pem.exit_code == 0 and pem.output.startswith("-----BEGIN PUBLIC KEY-----")
    key = serialization.load_pem_public_key(pem.output.encode())
    message = json.dumps(
        {k: document[k] for k in digests.SIGNED}, sort_keys=True, separators=(",", ":")
    ).encode()
    key.verify(bytes.fromhex(document["signature"]), message)  # raises when it does not hold
    human = cli(app, "digest")
    assert human.exit_code == 0 and human.output.startswith("Signed digest #3: the chain up to")


def test_the_signing_key_is_made_private_in_the_instance_folder_and_kept(make_app, app):
    path = Path(app.instance_path) / "audit_signing_key.pem"
    assert path.stat().st_mode & 0o777 == 0o600
    before = cli(app, "public-key").output
    again = make_app()  # another instance folder: another key
    assert cli(again, "public-key").output != before
    same = make_app(DASHBOARD_AUDIT_SIGNING_KEY_FILE=str(path))
    assert cli(same, "public-key").output == before


def readme_script() -> str:
    text = README.read_text()
    found = re.search(r"```python\n(# verify-export\.py .*?)```", text, re.S)
    assert found, "the README's verify-export.py script is missing"
    return found.group(1)


def test_an_export_checks_with_the_public_key_alone_as_the_readme_shows(app, tmp_path):
    """The README's script, run as the security team would: Python and `cryptography` only,
    over the JSON Lines export, the digests and the public key."""
    script = tmp_path / "verify-export.py"
    script.write_text(readme_script())
    write(app, 4)
    assert cli(app, "digest").exit_code == 0
    write(app, 1)  # after the newest digest: not signed yet

    def check() -> subprocess.CompletedProcess:
        files = {
            "audit.jsonl": ("export", "--format", "jsonl"),
            "digests.jsonl": ("export", "--digests"),
            "key.pem": ("public-key",),
        }
        for name, args in files.items():
            result = cli(app, *args)
            assert result.exit_code == 0, result.output
            (tmp_path / name).write_text(result.stdout)
        return subprocess.run(
            [sys.executable, "-I", str(script), *files],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )

    good = check()
    assert good.returncode == 0, good.stderr
    assert good.stdout.strip() == (
        "5 entries chain; signed up to entry #4 (1 newer entries not signed yet)."
    )
    rewrite(app, 3, details={"n": 42})
    bad = check()
    assert bad.returncode == 1
    assert bad.stderr.strip() == "Entry #4 is not what digest #2 signed."


def test_export_digests_takes_no_filter(app):
    result = cli(app, "export", "--digests", "--user", "ada@example.com")
    assert result.exit_code == 2
    assert "--digests writes every digest as JSON Lines" in result.output


def test_the_audit_page_links_the_digests_and_the_public_key(viewer_client, app):
    page = viewer_client.get("/audit").get_data(as_text=True)
    assert 'href="/audit/digests.jsonl"' in page and 'href="/audit/public-key.pem"' in page
    lines = viewer_client.get("/audit/digests.jsonl")
    assert lines.status_code == 200 and lines.mimetype == "application/x-ndjson"
    assert [json.loads(line) for line in lines.get_data(as_text=True).splitlines()] == signed(app)
    assert len(signed(app)) == 1  # the viewer's sign-in, the first entry, signed
    key = viewer_client.get("/audit/public-key.pem")
    assert key.status_code == 200
    assert key.get_data(as_text=True) == cli(app, "public-key").output
