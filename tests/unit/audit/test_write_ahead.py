"""The audit writer's write-ahead path on a real SQLite store: a request's future resolves only
once its record is committed, concurrent requests share commits, a failed write refuses the
waiting requests at once and drops their egress records, health follows the store."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from egress.audit.settings import AuditSettings
from egress.audit.writer import AuditUnavailable, AuditWriter
from egress.core.records import AuditEntry
from egress.store.sqlite import SqliteStore


class CountingStore(SqliteStore):
    """The real SQLite store, counting its audit commits."""

    commits = 0

    def append_audit(self, entries: Sequence[AuditEntry], link: Callable[[str, bytes], str]) -> None:
        super().append_audit(entries, link)
        self.commits += 1


def entry(n: int, outcome: str = "egress") -> AuditEntry:
    return AuditEntry(
        request_id=f"egr_{n}",
        ts=0.0,
        user="u",
        team=None,
        api="anthropic.messages",
        endpoint="e",
        jurisdiction="US",
        outcome=outcome,
        status=None,
        canonical=f'{{"request_id":"egr_{n}","type":"egress"}}'.encode(),
    )


def writer_on(tmp_path: Path, busy_timeout_s: float = 5.0) -> tuple[AuditWriter, CountingStore]:
    store = CountingStore(tmp_path / "egress.db", busy_timeout_s=busy_timeout_s)
    store.migrate()
    # The longest flush interval: a write-ahead record must not wait for it.
    writer = AuditWriter(store, AuditSettings(flush_interval_ms=5000), retry_delay_s=0.01, retry_max_s=0.05)
    writer.start()
    return writer, store


async def test_the_future_resolves_once_the_record_is_committed(tmp_path: Path) -> None:
    writer, store = writer_on(tmp_path)
    try:
        await asyncio.wait_for(writer.submit_ahead(entry(1)), 4)  # less than the flush interval: it woke at once
        # Committed: another connection sees it.
        with sqlite3.connect(tmp_path / "egress.db") as other:
            assert other.execute("SELECT request_id FROM audit_log").fetchall() == [("egr_1",)]
        assert writer.backlog == 0 and not writer.health.failing and writer.health.last_ok is not None
    finally:
        writer.close()
        store.close()


async def test_concurrent_requests_share_commits(tmp_path: Path) -> None:
    writer, store = writer_on(tmp_path)
    try:
        futures = [writer.submit_ahead(entry(n)) for n in range(50)]
        await asyncio.wait_for(asyncio.gather(*futures), 10)
        assert store.audit_count() == 50
        assert store.commits < 50  # group commit: several records per transaction
    finally:
        writer.close()
        store.close()


async def test_a_failed_write_refuses_the_waiters_and_drops_their_egress_records(tmp_path: Path) -> None:
    writer, store = writer_on(tmp_path, busy_timeout_s=0.05)
    locker = sqlite3.connect(tmp_path / "egress.db", isolation_level=None)
    try:
        locker.execute("BEGIN EXCLUSIVE")
        writer.submit(entry(100, outcome="refused"))  # a refusal's record: kept and retried
        with pytest.raises(AuditUnavailable):
            await asyncio.wait_for(writer.submit_ahead(entry(101)), 10)
        assert writer.health.failing and "SQLITE_BUSY" in (writer.health.last_error or "")
        assert not writer.check(max_backlog=100).ok
        locker.execute("COMMIT")
        # The store is back: the kept record is written, the refused request's egress record is not.
        for _ in range(400):
            if writer.backlog == 0:
                break
            await asyncio.sleep(0.01)
        assert [r.entry.request_id for r in store.iter_audit()] == ["egr_100"]
        assert writer.dropped == 1 and not writer.health.failing
        assert writer.check(max_backlog=100).ok
    finally:
        locker.close()
        writer.close()
        store.close()


async def test_a_request_that_gave_up_leaves_no_egress_record(tmp_path: Path) -> None:
    writer, store = writer_on(tmp_path, busy_timeout_s=5.0)
    locker = sqlite3.connect(tmp_path / "egress.db", isolation_level=None)
    try:
        locker.execute("BEGIN EXCLUSIVE")
        first = writer.submit_ahead(entry(1))  # the writer takes it and waits on the lock
        while writer._queue.qsize():
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.2)  # well inside the 5 s busy wait of that batch
        given_up = writer.submit_ahead(entry(2))
        given_up.cancel()  # the request's bound ran out: it was refused, nothing was sent
        locker.execute("COMMIT")
        await asyncio.wait_for(first, 10)
        await asyncio.wait_for(writer.submit_ahead(entry(3)), 10)
        assert [r.entry.request_id for r in store.iter_audit()] == ["egr_1", "egr_3"]
        assert writer.dropped == 1
    finally:
        locker.close()
        writer.close()
        store.close()


async def test_backlog_beyond_its_bound_is_not_ready(tmp_path: Path) -> None:
    writer, store = writer_on(tmp_path)
    try:
        for n in range(5):
            writer.submit(entry(n, outcome="refused"))  # waits for the 30 s flush interval
        assert writer.backlog == 5
        assert not writer.check(max_backlog=4).ok and writer.check(max_backlog=5).ok
    finally:
        writer.close()
        store.close()
    assert store.audit_count() == 5  # close() wrote them


def test_the_request_record_is_not_its_egress_record(tmp_path: Path) -> None:
    """Replay and the console look a request up by id: they get its own record, not the
    write-ahead egress record committed before it."""
    from egress.audit.chain import link

    store = SqliteStore(tmp_path / "egress.db")
    store.migrate()
    try:
        store.append_audit([entry(7, outcome="egress"), entry(7, outcome="forwarded")], link)
        found = store.audit_by_request("egr_7")
        assert found is not None and found.entry.outcome == "forwarded" and found.seq == 2
    finally:
        store.close()


def test_the_data_flow_counts_a_request_once(tmp_path: Path) -> None:
    """The console's data-flow map counts requests: an egress record and its request's own
    record are one request to that endpoint."""
    from egress.admin.accounts import Role, Viewer
    from egress.admin.records import data_flow
    from egress.audit.chain import link

    store = SqliteStore(tmp_path / "egress.db")
    store.migrate()
    try:
        store.append_audit([entry(8, outcome="egress"), entry(8, outcome="forwarded")], link)
        flow = data_flow(store, Viewer("admin", Role.ADMIN, None), since=-1.0, until=1.0)
        assert flow.requests == {("(no team)", "u", "e", "US"): 1}
    finally:
        store.close()
