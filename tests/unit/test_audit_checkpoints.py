"""Signed checkpoints on real stores: tampering the chain or its checkpoints is detected and named,
including what a chain alone cannot show (a re-chained rewrite, a truncated tail)."""

from __future__ import annotations

import os
import threading
import time
from dataclasses import replace

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from egress.audit.chain import link
from egress.audit.checkpoint import Signer, key_id, load_or_create_signing_key
from egress.audit.export import Export, ExportFilter, export_jsonl, read_export, verify_export
from egress.audit.verify import verify_audit, verify_store
from egress.audit.writer import AuditWriter, WriterSettings
from egress.store.base import SqlStore
from egress.store.sqlite import SqliteStore
from tests.unit import test_audit_chain
from tests.unit.test_audit_chain import entry, execute

store = test_audit_chain.store  # the fixture: SQLite, and PostgreSQL (marker postgres)

KEY = Ed25519PrivateKey.generate()
PUBLIC = KEY.public_key()


def write(store: SqlStore, n: int, every: int = 10, key: Ed25519PrivateKey = KEY) -> AuditWriter:
    settings = WriterSettings(flush_interval_s=0.001, max_batch=5, checkpoint_every=every, checkpoint_interval_s=60)
    writer = AuditWriter(store, settings, Signer(key))
    writer.start()
    for i in range(1, n + 1):
        writer.submit(entry(i))
        if i % 5 == 0:
            time.sleep(0.003)  # let batches commit, so checkpoints fall between records
    writer.close()
    assert writer.written == n
    return writer


def check(store: SqlStore, public=PUBLIC):
    return verify_audit(store.iter_audit(batch=97), store.list_checkpoints(), public)


def test_clean_chain_with_checkpoints_verifies(store):
    writer = write(store, 2000, every=250)
    checkpoints = store.list_checkpoints()
    assert writer.checkpoints == len(checkpoints) >= 8
    assert checkpoints[-1].seq == 2000  # the close() checkpoint covers the whole chain
    report = check(store)
    assert report.ok and report.chain.checked == 2000
    assert report.checkpoints_verified == len(checkpoints) and report.covered_seq == 2000


def test_edited_record_is_named(store):
    write(store, 30)
    execute(store, "UPDATE audit_log SET record = ? WHERE seq = 7", (entry(7, jurisdiction="DE").canonical,))
    report = check(store)
    assert not report.ok and report.breaks[0].seq == 7 and "altered" in report.breaks[0].reason


def test_deleted_record_is_named(store):
    write(store, 30)
    execute(store, "DELETE FROM audit_log WHERE seq = 12")
    report = check(store)
    assert report.breaks[0].seq == 13 and "12..12 are missing" in report.breaks[0].reason


def test_reordered_records_are_named(store):
    write(store, 30)
    execute(store, "UPDATE audit_log SET seq = 1000 WHERE seq = 3")
    execute(store, "UPDATE audit_log SET seq = 3 WHERE seq = 4")
    execute(store, "UPDATE audit_log SET seq = 4 WHERE seq = 1000")
    report = check(store)
    assert report.breaks[0].seq == 3 and "previous-hash" in report.breaks[0].reason


def rechain(store: SqlStore, from_seq: int) -> None:
    """What a careful attacker does after an edit: recompute every later link, so the chain
    alone verifies again."""
    rows = list(store.iter_audit())
    prev = rows[from_seq - 2].hash
    for row in rows[from_seq - 1 :]:
        digest = link(prev, row.entry.canonical)
        execute(store, "UPDATE audit_log SET prev_hash = ?, hash = ? WHERE seq = ?", (prev, digest, row.seq))
        prev = digest


def test_inserted_and_rechained_record_is_caught_by_a_checkpoint(store):
    write(store, 30)  # checkpoints at 10, 20, 30
    for seq in range(30, 14, -1):
        execute(store, "UPDATE audit_log SET seq = ? WHERE seq = ?", (seq + 1, seq))
    fake = entry(99)
    execute(
        store,
        "INSERT INTO audit_log (seq, request_id, ts, user_name, team, api, endpoint, jurisdiction, outcome,"
        " status, record, prev_hash, hash) VALUES (15, ?, ?, 'alice', 't', 'anthropic.messages', 'anthropic', 'US',"
        " 'forwarded', 200, ?, ?, ?)",
        (fake.request_id, fake.ts, fake.canonical, GENESIS, GENESIS),
    )
    rechain(store, 15)
    report = check(store)
    assert report.chain.ok  # the chain alone is fooled ...
    brk = report.checkpoint_break  # ... the checkpoint at 20 is not
    assert brk is not None and brk.seq == 20 and "no longer has the signed hash" in brk.reason


GENESIS = "0" * 64


def test_edited_and_rechained_record_is_caught_by_a_checkpoint(store):
    write(store, 30)
    execute(
        store,
        "UPDATE audit_log SET record = ?, jurisdiction = 'DE' WHERE seq = 23",
        (entry(23, jurisdiction="DE").canonical,),
    )
    rechain(store, 23)
    report = check(store)
    assert report.chain.ok and report.checkpoint_break.seq == 30


def test_truncated_tail_after_a_checkpoint_is_named(store):
    write(store, 30)
    execute(store, "DELETE FROM audit_log WHERE seq > 24")
    report = check(store)
    assert report.chain.ok and not report.ok
    brk = report.checkpoint_break
    assert brk.seq == 25 and "records 25..30 are missing" in brk.reason and "truncated" in brk.reason


def test_forged_checkpoints_are_named(store):
    write(store, 20)
    execute(store, "UPDATE audit_checkpoints SET count = 11 WHERE seq = 10")
    report = check(store)
    assert report.checkpoint_break.seq == 10 and "signature does not verify" in report.checkpoint_break.reason


def test_checkpoint_signed_by_another_key_is_named(store):
    write(store, 20)
    other = Signer(Ed25519PrivateKey.generate())
    store.append_checkpoint(other.sign(15, list(store.iter_audit())[14].hash, time.time()))
    report = check(store)
    assert report.checkpoint_break.seq == 15 and "not by the given public key" in report.checkpoint_break.reason
    # The same forgery claiming the gateway's key id still fails its signature.
    forged = replace(other.sign(16, list(store.iter_audit())[15].hash, time.time()), key_id=key_id(KEY))
    execute(store, "DELETE FROM audit_checkpoints WHERE seq = 15")
    store.append_checkpoint(forged)
    report = check(store)
    assert report.checkpoint_break.seq == 16 and "signature does not verify" in report.checkpoint_break.reason


def test_checkpoints_need_a_public_key(store):
    write(store, 10)
    report = check(store, public=None)
    assert not report.ok and "no public key" in report.checkpoint_break.reason


def test_idle_writer_signs_after_the_interval(tmp_path):
    store = SqliteStore(tmp_path / "a.db")
    store.migrate()
    settings = WriterSettings(flush_interval_s=0.001, checkpoint_every=1000, checkpoint_interval_s=0.05)
    writer = AuditWriter(store, settings, Signer(KEY))
    writer.start()
    for i in range(1, 4):
        writer.submit(entry(i))
    deadline = time.monotonic() + 5
    while not store.list_checkpoints() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert [cp.seq for cp in store.list_checkpoints()] == [3]
    writer.close()  # nothing new: no second checkpoint of the same head
    assert writer.checkpoints == 1 and check(store).ok
    store.close()


def test_signing_key_is_created_once_private_and_shared(tmp_path):
    path = tmp_path / "keys" / "audit-signing.key"
    keys: list[Ed25519PrivateKey] = []
    threads = [threading.Thread(target=lambda: keys.append(load_or_create_signing_key(path))) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(keys) == 8 and len({key_id(k) for k in keys}) == 1
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert key_id(load_or_create_signing_key(path)) == key_id(keys[0])
    assert [p.name for p in path.parent.iterdir()] == ["audit-signing.key"]  # no temporary file left


def exported(store: SqlStore, selector: ExportFilter) -> Export:
    lines = export_jsonl(store.iter_audit(), store.list_checkpoints(), selector, 0.0)
    return read_export(b"".join(lines).splitlines())


def test_export_round_trip_verifies_and_catches_tampering(store):
    write(store, 30)
    complete = exported(store, ExportFilter())
    assert complete.complete and len(complete.records) == 30 and len(complete.checkpoints) == 3
    assert verify_export(complete, PUBLIC).ok
    # Records dropped from the end of a complete export: the checkpoint at 30 is not reached.
    cut = replace(complete, records=complete.records[:27])
    assert "records 28..30 are missing" in verify_export(cut, PUBLIC).checkpoint_break.reason
    assert not verify_export(complete, Ed25519PrivateKey.generate().public_key()).ok

    one = exported(store, ExportFilter(since=1015.0, until=1021.0))
    assert not one.complete and [r.seq for r in one.records] == list(range(15, 21))
    assert [c.seq for c in one.checkpoints] == [20]
    report = verify_export(one, PUBLIC)
    assert report.ok and report.covered_seq == 20
    forged = replace(one, records=[*one.records[:-1], replace(one.records[-1], hash="0" * 64)])
    assert verify_export(forged, PUBLIC).chain.first_break.seq == 20


def test_verify_while_the_gateway_writes_sees_no_truncation(store):
    """Records and a checkpoint committed while verification reads the chain are not mistaken
    for a truncated chain (the checkpoints are read first)."""
    write(store, 20)

    class Growing:
        def list_checkpoints(self):
            return store.list_checkpoints()

        def iter_audit(self, after_seq=0, batch=5000):
            yield from store.iter_audit(after_seq, batch=7)
            # Just after the last row was read, the gateway writes and signs 10 more records.
            writer = AuditWriter(store, WriterSettings(flush_interval_s=0.001), Signer(KEY))
            writer.start()
            for i in range(21, 31):
                writer.submit(entry(i))
            writer.close()

    report = verify_store(Growing(), PUBLIC)
    assert report.ok, report.breaks
    assert store.list_checkpoints()[-1].seq == 30
