"""Signed checkpoints on real stores: tampering the chain or its checkpoints is detected and named,
including what a chain alone cannot show (a re-chained rewrite, a truncated tail)."""

from __future__ import annotations

import importlib.resources
import os
import threading
import time
from dataclasses import replace

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from egress.audit.chain import link
from egress.audit.checkpoint import Signer, key_id, load_or_create_signing_key
from egress.audit.export import Export, ExportFilter, export_jsonl, read_export, verify_export
from egress.audit.merkle import leaf_hash, merkle_root
from egress.audit.settings import AuditSettings
from egress.audit.verify import verify_audit, verify_store
from egress.audit.writer import AuditWriter
from egress.core.records import AuditEntry
from egress.store.base import SqlStore
from egress.store.postgres import PostgresStore
from egress.store.sqlite import SqliteStore
from tests.support.databases import throwaway_postgres
from tests.unit.audit import test_chain
from tests.unit.audit.test_chain import entry, execute

store = test_chain.store  # the fixture: SQLite, and PostgreSQL (marker postgres)

KEY = Ed25519PrivateKey.generate()
PUBLIC = KEY.public_key()


def write(store: SqlStore, n: int, every: int = 10, key: Ed25519PrivateKey = KEY) -> AuditWriter:
    settings = AuditSettings(flush_interval_ms=1, max_batch=5, checkpoint_every=every, checkpoint_interval_s=60)
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
    settings = AuditSettings(flush_interval_ms=1, checkpoint_every=1000, checkpoint_interval_s=0.05)
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
            writer = AuditWriter(store, AuditSettings(flush_interval_ms=1), Signer(KEY))
            writer.start()
            for i in range(21, 31):
                writer.submit(entry(i))
            writer.close()

    report = verify_store(Growing(), PUBLIC)
    assert report.ok, report.breaks
    assert store.list_checkpoints()[-1].seq == 30


# --- v2 checkpoints: span Merkle roots --------------------------------------------------------------


def test_checkpoints_sign_the_merkle_root_of_dense_spans(store):
    write(store, 300, every=50)
    checkpoints = store.list_checkpoints()
    hashes = {r.seq: r.hash for r in store.iter_audit()}
    first = 1
    for cp in checkpoints:  # the columns round-trip, and the spans tile the chain
        assert cp.first == first and cp.root is not None
        leaves = [leaf_hash(seq, hashes[seq]) for seq in range(cp.first, cp.seq + 1)]
        assert cp.root == merkle_root(leaves).hex()
        first = cp.seq + 1
    assert checkpoints[-1].seq == 300
    report = check(store)
    assert report.ok and report.checkpoints_verified == len(checkpoints)


def test_an_edited_span_root_or_span_start_breaks_the_signature(store):
    write(store, 30)
    execute(store, "UPDATE audit_checkpoints SET root = ? WHERE seq = 20", ("ab" * 32,))
    brk = check(store).checkpoint_break
    assert brk.seq == 20 and "signature does not verify" in brk.reason
    execute(store, "UPDATE audit_checkpoints SET root = NULL, first_seq = NULL WHERE seq = 20")
    brk = check(store).checkpoint_break  # stripped to look like v1: the key never signed that
    assert brk.seq == 20 and "signature does not verify" in brk.reason


def test_a_signed_root_that_does_not_match_its_records_is_named(store):
    """A checkpoint signed with the gateway's key over a wrong root (a writer that read the wrong
    span): the signature holds, the recomputed root does not."""
    write(store, 20)
    rows = list(store.iter_audit())
    execute(store, "DELETE FROM audit_checkpoints WHERE seq = 20")
    wrong = merkle_root([leaf_hash(r.seq, r.hash) for r in rows[10:19]])  # records 11..19 only
    store.append_checkpoint(Signer(KEY).sign(20, rows[19].hash, time.time(), 11, wrong))
    report = check(store)
    assert report.chain.ok and not report.ok
    brk = report.checkpoint_break
    assert brk.seq == 20 and "Merkle root over records 11..20 does not match" in brk.reason


def test_malformed_span_is_named(store):
    write(store, 10)
    execute(store, "DELETE FROM audit_checkpoints")
    head = store.audit_head()
    store.append_checkpoint(Signer(KEY).sign(10, head[1], time.time(), 11, b"\0" * 32))
    brk = check(store).checkpoint_break
    assert brk.seq == 10 and "span starts at 11" in brk.reason


def test_writers_of_several_processes_sign_spans_of_the_shared_chain(tmp_path):
    """Two gateway processes (two stores on one SQLite file) append to one chain: each writer's
    span is read from the store, so every root covers the other's records too."""
    stores = [SqliteStore(tmp_path / "shared.db") for _ in range(2)]
    stores[0].migrate()
    settings = AuditSettings(flush_interval_ms=1, max_batch=4, checkpoint_every=7, checkpoint_interval_s=60)
    writers = [AuditWriter(s, settings, Signer(KEY)) for s in stores]
    for w in writers:
        w.start()
    for i in range(1, 201):
        writers[i % 2].submit(entry(i))
        if i % 9 == 0:
            time.sleep(0.002)
    for w in writers:
        w.close()
    checkpoints = stores[0].list_checkpoints()
    assert sum(w.checkpoints for w in writers) == len(checkpoints) >= 20
    assert all(w.checkpoints for w in writers)
    report = check(stores[0])
    assert report.ok and report.covered_seq == 200, report.breaks
    for s in stores:
        s.close()


def test_a_writer_never_signs_over_a_truncated_chain(tmp_path):
    store = SqliteStore(tmp_path / "a.db")
    store.migrate()
    write(store, 20)
    execute(store, "DELETE FROM audit_log WHERE seq > 15")
    writer = write(store, 3)  # records 16..18: the checkpoint at 20 lies beyond the head
    assert writer.checkpoints == 0 and [cp.seq for cp in store.list_checkpoints()] == [10, 20]
    store.close()


def secret_every_fifth(i: int) -> AuditEntry:
    return entry(i, findings={"kinds": {"secret": 1} if i % 5 == 0 else {}})


def apply_migrations_up_to(store: SqlStore, last: int) -> None:
    """The schema as an older egress left it (migrations 1..`last`)."""
    folder = importlib.resources.files("egress.store") / "migrations" / store.dialect
    with store._connection() as conn:
        cur = conn.cursor()
        cur.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL)")
        for path in sorted(folder.iterdir(), key=lambda p: p.name):
            version = int(path.name.split("_", 1)[0])
            if path.name.endswith(".sql") and version <= last:
                store._run_script(cur, path.read_text())
                cur.execute(
                    f"INSERT INTO schema_migrations (version, name) VALUES ({store.param}, {store.param})",
                    (version, path.name),
                )
        conn.commit()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def old_store(request, tmp_path):
    """A store created before migration 0007, not yet migrated further."""
    if request.param == "sqlite":
        s = SqliteStore(tmp_path / "old.db")
        apply_migrations_up_to(s, 6)
        yield s
        s.close()
        return
    with throwaway_postgres() as url:
        s = PostgresStore(url)
        apply_migrations_up_to(s, 6)
        yield s
        s.close()


def test_v1_checkpoints_of_an_older_database_still_verify_and_v2_follows(old_store, tmp_path):
    signer = Signer(KEY)
    old_store.append_audit([secret_every_fifth(i) for i in range(1, 21)], link)
    marks = ", ".join([old_store.param] * 6)
    with old_store._connection() as conn:  # v1 checkpoints, as the older gateway wrote them
        for seq in (10, 20):
            cp = signer.sign(seq, list(old_store.iter_audit())[seq - 1].hash, 1.0)
            conn.cursor().execute(
                f"INSERT INTO audit_checkpoints (seq, key_id, hash, count, ts, signature) VALUES ({marks})",
                (cp.seq, cp.key_id, cp.hash, cp.count, cp.ts, cp.signature),
            )
        conn.commit()
    old_store.migrate()  # 0007 adds the span columns; the old rows keep NULLs
    assert [(cp.seq, cp.first, cp.root) for cp in old_store.list_checkpoints()] == [(10, None, None), (20, None, None)]
    assert check(old_store).ok

    settings = AuditSettings(flush_interval_ms=1, max_batch=5, checkpoint_every=10, checkpoint_interval_s=60)
    writer = AuditWriter(old_store, settings, signer)
    writer.start()
    for i in range(21, 46):
        writer.submit(secret_every_fifth(i))
        if i % 5 == 0:
            time.sleep(0.003)
    writer.close()
    newer = [cp for cp in old_store.list_checkpoints() if cp.seq > 20]
    assert newer[0].first == 21 and newer[-1].seq == 45 and all(cp.root for cp in newer)
    report = check(old_store)
    assert report.ok and report.covered_seq == 45

    # A filtered export across the upgrade: the v1 era is counted, not proven; the rest proven.
    secrets = exported(old_store, ExportFilter(kind="secret"))
    assert [r.seq for r in secrets.records] == list(range(5, 50, 5))
    report = verify_export(secrets, PUBLIC)
    assert report.ok, report.breaks
    assert (report.membership.proven, report.membership.v1_only, report.membership.not_yet_covered) == (5, 4, 0)
