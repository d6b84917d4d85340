"""Checkpoint anchors: the append-only file outside the database, the writer appending every
checkpoint it stores to it, and verification of a store against it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from egress.audit.anchor import FileAnchor, checkpoint_line, parse_line, read_anchor
from egress.audit.checkpoint import Signer, signature_problem
from egress.audit.settings import AuditSettings
from egress.audit.verify import verify_anchored, verify_store
from egress.audit.writer import AuditWriter
from egress.config import load_config
from egress.core.records import Checkpoint
from egress.store.base import SqlStore
from egress.store.sqlite import SqliteStore
from tests.unit.audit import test_chain
from tests.unit.audit.test_chain import entry, execute
from tests.unit.audit.test_checkpoints import rechain

store = test_chain.store  # the fixture: SQLite, and PostgreSQL (marker postgres)

KEY = Ed25519PrivateKey.generate()
PUBLIC = KEY.public_key()


def anchored_write(store: SqlStore, n: int, anchors, every: int = 10) -> AuditWriter:
    settings = AuditSettings(flush_interval_ms=1, max_batch=5, checkpoint_every=every, checkpoint_interval_s=60)
    writer = AuditWriter(store, settings, Signer(KEY), anchors=anchors)
    writer.start()
    for i in range(1, n + 1):
        writer.submit(entry(i))
        if i % 5 == 0:
            time.sleep(0.003)
    writer.close()
    assert writer.written == n
    return writer


def anchored(path: Path) -> list[Checkpoint]:
    log = read_anchor(path)
    assert log.exists and all(line.problem is None for line in log.lines)
    return [line.checkpoint for line in log.lines if line.checkpoint is not None]


# --- the file --------------------------------------------------------------------------------


def test_file_anchor_is_created_private_at_open_and_each_line_verifies_alone(tmp_path):
    path = tmp_path / "anchor" / "audit-checkpoints.jsonl"
    anchor = FileAnchor(path)
    assert path.exists() and path.read_bytes() == b""  # created at start: missing later means deleted
    assert os.stat(path).st_mode & 0o777 == 0o600
    cps = [Signer(KEY).sign(seq, f"{seq:064x}", 1000.0 + seq, seq - 9, bytes(32)) for seq in (10, 20)]
    for cp in cps:
        anchor.append(cp)
    anchor.close()
    lines = path.read_bytes().splitlines()
    assert [parse_line(line) for line in lines] == cps
    assert all(signature_problem(parse_line(line), PUBLIC) is None for line in lines)
    assert lines[0] + b"\n" == checkpoint_line(cps[0])


def test_a_failed_append_raises(tmp_path):
    anchor = FileAnchor(Path("/dev/full"))  # a real ENOSPC on every write
    cp = Signer(KEY).sign(1, "0" * 64, 1.0)
    try:
        anchor.append(cp)
    except OSError as exc:
        assert exc.errno == 28  # ENOSPC
    else:
        raise AssertionError("an append to a full device must raise")
    anchor.close()


APPENDER = """
import sys
from pathlib import Path
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from egress.audit.anchor import FileAnchor
from egress.audit.checkpoint import Signer

key = load_pem_private_key(Path(sys.argv[1]).read_bytes(), password=None)
anchor = FileAnchor(Path(sys.argv[2]))
offset = int(sys.argv[3])
signer = Signer(key)
for i in range(1, 201):
    anchor.append(signer.sign(offset + i, f"{offset + i:064x}", 1.0, offset + i, bytes(32)))
anchor.close()
"""


def test_processes_appending_to_one_file_never_interleave_lines(tmp_path):
    pem = tmp_path / "k.pem"
    pem.write_bytes(
        KEY.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    path = tmp_path / "shared.jsonl"
    procs = [subprocess.Popen([sys.executable, "-c", APPENDER, str(pem), str(path), str(k * 1000)]) for k in range(4)]
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0, 0]
    cps = anchored(path)
    assert len(cps) == 800 and {cp.seq for cp in cps} == {k * 1000 + i for k in range(4) for i in range(1, 201)}
    assert all(signature_problem(cp, PUBLIC) is None for cp in cps)


def test_read_anchor_names_missing_files_torn_and_foreign_lines(tmp_path):
    assert read_anchor(tmp_path / "nope.jsonl").exists is False
    cp = Signer(KEY).sign(3, "a" * 64, 1.0)
    path = tmp_path / "a.jsonl"
    path.write_bytes(checkpoint_line(cp) + b"\n  \n" + b'{"seq": 4}\n' + checkpoint_line(cp)[:40])
    lines = read_anchor(path).lines
    assert [(line.number, line.checkpoint, line.problem) for line in lines] == [
        (1, cp, None),
        (4, None, "not a checkpoint (its fields must be count, first, hash, key_id, root, seq, signature, ts)"),
        (5, None, "not JSON"),
    ]


# --- the writer ------------------------------------------------------------------------------


def test_the_writer_anchors_every_checkpoint_it_stores(store, tmp_path):
    path = tmp_path / "audit-checkpoints.jsonl"
    writer = anchored_write(store, 60, [FileAnchor(path)])
    stored = store.list_checkpoints()
    assert writer.checkpoints == len(stored) >= 6 and stored[-1].seq == 60
    assert anchored(path) == stored  # the same signed fields, in the order they were signed
    report = verify_store(store, PUBLIC, read_anchor(path))
    assert report.ok and report.anchor is not None and report.anchor.anchored == len(stored)
    assert report.anchor.newest == stored[-1] and report.anchor.not_anchored == ()


class FailingOnce(FileAnchor):
    """A file anchor whose first append fails as a full disk would."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.failed = 0

    def append(self, checkpoint: Checkpoint) -> None:
        if not self.failed:
            self.failed += 1
            raise OSError(28, "No space left on device")
        super().append(checkpoint)


def test_an_anchor_that_fails_leaves_the_tail_uncovered_until_a_retry_succeeds(tmp_path):
    db = SqliteStore(tmp_path / "a.db")
    db.migrate()
    good, flaky = tmp_path / "good.jsonl", FailingOnce(tmp_path / "flaky.jsonl")
    settings = AuditSettings(flush_interval_ms=1, checkpoint_every=1000, checkpoint_interval_s=0.05)
    writer = AuditWriter(db, settings, Signer(KEY), anchors=[flaky, FileAnchor(good)])
    writer.start()
    for i in range(1, 4):
        writer.submit(entry(i))
    deadline = time.monotonic() + 10
    while not anchored(tmp_path / "flaky.jsonl") and time.monotonic() < deadline:
        time.sleep(0.01)
    assert flaky.failed == 1  # the first append failed ...
    assert anchored(tmp_path / "flaky.jsonl") == db.list_checkpoints() == anchored(good)  # ... the retry anchored it
    assert [cp.seq for cp in db.list_checkpoints()] == [3]  # signed once, anchored twice
    while writer.uncovered and time.monotonic() < deadline:
        time.sleep(0.01)
    assert writer.uncovered == 0
    writer.close()
    db.close()


def test_a_dead_anchor_keeps_the_tail_counted_as_uncovered(tmp_path):
    db = SqliteStore(tmp_path / "a.db")
    db.migrate()
    settings = AuditSettings(flush_interval_ms=1, checkpoint_every=1000, checkpoint_interval_s=3600)
    writer = AuditWriter(db, settings, Signer(KEY), anchors=[FileAnchor(Path("/dev/full"))])
    writer.start()
    for i in range(1, 6):
        writer.submit(entry(i))
    writer.close()  # the shutdown checkpoint is stored, but cannot be anchored
    assert [cp.seq for cp in db.list_checkpoints()] == [5]
    assert writer.uncovered == 5 and writer.uncovered_age_s > 0
    db.close()


def test_uncovered_counts_the_writers_tail_and_its_age_until_a_checkpoint(tmp_path):
    db = SqliteStore(tmp_path / "a.db")
    db.migrate()
    settings = AuditSettings(flush_interval_ms=1, checkpoint_every=1000, checkpoint_interval_s=3600)
    writer = AuditWriter(db, settings, Signer(KEY), anchors=[FileAnchor(tmp_path / "a.jsonl")])
    assert writer.uncovered == 0 and writer.uncovered_age_s == 0.0
    writer.start()
    for i in range(1, 8):
        writer.submit(entry(i))
    deadline = time.monotonic() + 10
    while writer.written < 7 and time.monotonic() < deadline:
        time.sleep(0.005)
    assert writer.uncovered == 7 and writer.uncovered_age_s > 0
    assert db.list_checkpoints() == []
    writer.close()  # the checkpoint at shutdown covers the tail
    assert writer.uncovered == 0 and writer.uncovered_age_s == 0.0
    assert [cp.seq for cp in anchored(tmp_path / "a.jsonl")] == [7]
    db.close()


# --- verification against an anchor ----------------------------------------------------------


def test_the_same_head_signed_twice_by_racing_processes_is_no_failure(store, tmp_path):
    """Two processes sign one head at once; the store keeps the first, the anchor may hold the
    second: the same statement about the chain (same record, hash and key), no tamper."""
    path = tmp_path / "a.jsonl"
    anchored_write(store, 20, [FileAnchor(path)])
    newest = store.list_checkpoints()[-1]
    racer = Signer(KEY).sign(newest.seq, newest.hash, newest.ts + 0.5, newest.first, bytes.fromhex(newest.root))
    path.write_bytes(path.read_bytes() + checkpoint_line(racer))
    report = verify_store(store, PUBLIC, read_anchor(path))
    assert report.ok, report.anchor


def test_an_anchored_checkpoint_with_another_head_than_the_database_is_named(store, tmp_path):
    path = tmp_path / "a.jsonl"
    anchored_write(store, 20, [FileAnchor(path)])
    newest = store.list_checkpoints()[-1]
    execute(store, "DELETE FROM audit_checkpoints WHERE seq = ?", (newest.seq,))
    other = Signer(KEY).sign(newest.seq, "b" * 64, newest.ts)  # validly signed, another head
    store.append_checkpoint(other)
    report = verify_anchored(store.iter_audit(), store.list_checkpoints(), read_anchor(path), PUBLIC)
    assert not report.ok
    assert report.anchor is not None
    assert (
        f"line 2: the database's checkpoint at record 20 (key {newest.key_id}) has head {'b' * 64}, "
        in (report.anchor.problems[0])
    )


def test_checkpoints_the_anchor_lacks_are_listed_not_failed(store, tmp_path):
    path = tmp_path / "a.jsonl"
    anchored_write(store, 30, [FileAnchor(path)])
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines[1:]))  # as if the first checkpoint was signed before the anchor existed
    report = verify_store(store, PUBLIC, read_anchor(path))
    assert report.ok and report.anchor is not None
    assert [cp.seq for cp in report.anchor.not_anchored] == [parse_line(lines[0]).seq]


def test_anchor_settings(tmp_path):
    config = load_config(None, env={"EGRESS_DATA_DIR": str(tmp_path), "EGRESS_CONFIG": ""})
    assert config.audit.checkpoint_interval_s <= 10
    assert AuditSettings().checkpoint_interval_s <= 10
    assert config.audit_checkpoint_log == tmp_path / "audit-checkpoints.jsonl"
    elsewhere = tmp_path / "worm" / "egress.jsonl"
    moved = config.model_copy(update={"audit": config.audit.model_copy(update={"checkpoint_log": elsewhere})})
    assert moved.audit_checkpoint_log == elsewhere


def test_an_anchored_checkpoint_joins_the_databases_in_the_record_checks(store, tmp_path):
    """Deleted from the database with every later one, an anchored checkpoint still checks the
    record it names: a re-chained rewrite is caught, and the rewritten span is named."""
    path = tmp_path / "a.jsonl"
    anchored_write(store, 30, [FileAnchor(path)])
    seqs = [cp.seq for cp in store.list_checkpoints()]
    assert seqs == [10, 20, 30]
    execute(
        store,
        "UPDATE audit_log SET record = ?, jurisdiction = ? WHERE seq = 15",
        (entry(15, jurisdiction="DE").canonical, "DE"),
    )
    rechain(store, 15)
    execute(store, "DELETE FROM audit_checkpoints WHERE seq > 10")
    alone = verify_store(store, PUBLIC)
    assert alone.ok  # the database alone is fooled ...
    report = verify_store(store, PUBLIC, read_anchor(path))  # ... its anchor is not
    assert report.chain.ok and not report.ok
    brk = report.checkpoint_break
    assert brk is not None and brk.seq == 20
    assert brk.reason.endswith(
        "record 20 no longer has the signed hash "
        f"{anchored(path)[1].hash} (a record in 11..20 was rewritten and every later hash recomputed)"
    )
    assert report.anchor is not None and len(report.anchor.problems) == 2  # lines 2 and 3: not in the database
