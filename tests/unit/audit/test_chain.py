"""The audit chain on real stores: every kind of tampering is detected and named."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from egress.audit.chain import verify
from egress.audit.settings import AuditSettings
from egress.audit.writer import AuditWriter
from egress.core.records import AuditEntry
from egress.store.base import SqlStore
from egress.store.postgres import PostgresStore
from egress.store.sqlite import SqliteStore
from tests.support.databases import throwaway_postgres


def entry(i: int, **extra) -> AuditEntry:
    record = {
        "request_id": f"req_{i}",
        "ts": 1000.0 + i,
        "user": "alice",
        "team": "t",
        "api": "anthropic.messages",
        "endpoint": "anthropic",
        "jurisdiction": "US",
        "outcome": "forwarded",
        "status": 200,
        **extra,
    }
    return AuditEntry(
        request_id=record["request_id"],
        ts=record["ts"],
        user="alice",
        team="t",
        api="anthropic.messages",
        endpoint="anthropic",
        jurisdiction="US",
        outcome="forwarded",
        status=200,
        canonical=orjson.dumps(record, option=orjson.OPT_SORT_KEYS),
    )


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request, tmp_path: Path) -> Iterator[SqlStore]:
    if request.param == "sqlite":
        s: SqlStore = SqliteStore(tmp_path / "audit.db")
        s.migrate()
        yield s
        s.close()
    else:
        with throwaway_postgres() as url:
            s = PostgresStore(url)
            s.migrate()
            yield s
            s.close()


def write(store: SqlStore, n: int) -> None:
    writer = AuditWriter(store, AuditSettings(flush_interval_ms=1, max_batch=7))
    writer.start()
    for i in range(1, n + 1):
        writer.submit(entry(i))
    writer.close()
    assert writer.written == n


def execute(store: SqlStore, sql: str, params=()) -> None:
    with store._connection() as conn:  # tampering goes around the store's API, as an attacker would
        cur = conn.cursor()
        cur.execute(sql.replace("?", store.param), params)
        conn.commit()


def test_clean_chain_verifies(store):
    write(store, 50)
    report = verify(store.iter_audit(batch=13))
    assert report.ok and report.checked == 50 and report.last_seq == 50


def test_edited_record_is_named(store):
    write(store, 20)
    forged = entry(7, jurisdiction="DE").canonical
    execute(store, "UPDATE audit_log SET record = ? WHERE seq = 7", (forged,))
    report = verify(store.iter_audit())
    assert not report.ok
    assert report.first_break.seq == 7 and "altered" in report.first_break.reason
    assert report.checked == 6


def test_edited_column_copy_is_named(store):
    write(store, 10)
    execute(store, "UPDATE audit_log SET jurisdiction = 'FR' WHERE seq = 4")
    report = verify(store.iter_audit())
    assert report.first_break.seq == 4 and "jurisdiction" in report.first_break.reason


def test_deleted_record_is_named(store):
    write(store, 10)
    execute(store, "DELETE FROM audit_log WHERE seq = 5")
    report = verify(store.iter_audit())
    assert report.first_break.seq == 6 and "missing" in report.first_break.reason


def test_deleted_and_renumbered_is_named(store):
    """Deleting a record and renumbering the rest to hide the gap still breaks the links."""
    write(store, 10)
    execute(store, "DELETE FROM audit_log WHERE seq = 5")
    for seq in range(6, 11):
        execute(store, "UPDATE audit_log SET seq = ? WHERE seq = ?", (seq - 1, seq))
    report = verify(store.iter_audit())
    assert report.first_break.seq == 5 and "previous-hash" in report.first_break.reason


def test_reordered_records_are_named(store):
    write(store, 10)
    execute(store, "UPDATE audit_log SET seq = 1000 WHERE seq = 3")
    execute(store, "UPDATE audit_log SET seq = 3 WHERE seq = 4")
    execute(store, "UPDATE audit_log SET seq = 4 WHERE seq = 1000")
    report = verify(store.iter_audit())
    assert report.first_break.seq == 3 and "previous-hash" in report.first_break.reason


def test_inserted_record_is_named(store):
    write(store, 10)
    rows = list(store.iter_audit())
    for seq in range(10, 5, -1):
        execute(store, "UPDATE audit_log SET seq = ? WHERE seq = ?", (seq + 1, seq))
    fake = entry(99)
    execute(
        store,
        "INSERT INTO audit_log (seq, request_id, ts, user_name, team, api, endpoint, jurisdiction, outcome,"
        " status, record, prev_hash, hash) VALUES (6, ?, ?, 'alice', 't', 'anthropic.messages', 'anthropic', 'US',"
        " 'forwarded', 200, ?, ?, ?)",
        (fake.request_id, fake.ts, fake.canonical, rows[4].hash, "f" * 64),
    )
    report = verify(store.iter_audit())
    assert report.first_break.seq == 6


def test_concurrent_writers_make_one_chain(store):
    """Several processes' writers (here: threads with their own connections) append at once."""

    def run(offset: int) -> None:
        writer = AuditWriter(store, AuditSettings(flush_interval_ms=1, max_batch=5))
        writer.start()
        for i in range(40):
            writer.submit(entry(offset + i))
        writer.close()

    threads = [threading.Thread(target=run, args=(k * 1000,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    report = verify(store.iter_audit())
    assert report.ok and report.checked == 160


def test_writer_retries_when_the_store_fails(tmp_path):
    class Flaky:
        def __init__(self, inner):
            self.inner, self.calls = inner, 0

        def append_audit(self, entries, link):
            self.calls += 1
            if self.calls <= 2:
                raise sqlite3.OperationalError("database is locked")
            self.inner.append_audit(entries, link)

    store = SqliteStore(tmp_path / "a.db")
    store.migrate()
    flaky = Flaky(store)
    writer = AuditWriter(flaky, AuditSettings(flush_interval_ms=1), retry_delay_s=0.01)
    writer.start()
    writer.submit(entry(1))
    writer.close()
    assert writer.failures == 2 and store.audit_count() == 1
