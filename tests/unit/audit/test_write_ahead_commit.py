"""`WriteAhead.commit` on a real SQLite store: its timeout refuses the request (and the writer
drops the record of a request that gave up), cancelling the request drops it too, and the writer
wakes the requests' event loop once per committed batch, not once per record."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from egress.audit.settings import AuditSettings
from egress.audit.writer import AuditWriter
from egress.core.errors import EgressError, ErrorCode
from egress.core.exchange import Api, Exchange
from egress.gateway.write_ahead import WriteAhead
from egress.store.sqlite import SqliteStore

BODY = b'{"model":"m","messages":[]}'


def exchange(n: int) -> Exchange:
    x = Exchange(
        request_id=f"egr_{n}", method="POST", path="/v1/messages", query="", headers=[], api=Api.ANTHROPIC_MESSAGES
    )
    x.endpoint_name = "anthropic"
    x.endpoint_jurisdiction = "US"
    return x


def writer_on(tmp_path: Path) -> tuple[AuditWriter, SqliteStore]:
    store = SqliteStore(tmp_path / "egress.db", busy_timeout_s=5.0)
    store.migrate()
    writer = AuditWriter(store, AuditSettings(flush_interval_ms=5000), retry_delay_s=0.01, retry_max_s=0.05)
    writer.start()
    return writer, store


async def wait_taken(writer: AuditWriter) -> None:
    """Until the writer has taken everything queued (it then waits on the lock in its batch)."""
    while writer._queue.qsize():  # noqa: SLF001 - the test's only way to see the batch taken
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.2)


async def test_a_commit_past_its_timeout_is_refused_and_its_record_dropped(tmp_path: Path) -> None:
    writer, store = writer_on(tmp_path)
    locker = sqlite3.connect(tmp_path / "egress.db", isolation_level=None)
    try:
        locker.execute("BEGIN EXCLUSIVE")
        patient = asyncio.ensure_future(WriteAhead(writer, 30.0).commit(exchange(1), BODY))
        await wait_taken(writer)  # egr_1's batch waits on the lock
        with pytest.raises(EgressError) as refused:
            await WriteAhead(writer, 0.2).commit(exchange(2), BODY)
        assert refused.value.code == ErrorCode.AUDIT_UNAVAILABLE
        assert "within 0.2 s" in str(refused.value)
        locker.execute("COMMIT")
        await asyncio.wait_for(patient, 10)
        await WriteAhead(writer, 10.0).commit(exchange(3), BODY)
        # egr_2 gave up before its batch: refused, nothing sent, so no egress record for it.
        assert [r.entry.request_id for r in store.iter_audit()] == ["egr_1", "egr_3"]
        assert writer.dropped == 1 and writer.backlog == 0
    finally:
        locker.close()
        writer.close()
        store.close()


async def test_a_cancelled_request_leaves_no_egress_record(tmp_path: Path) -> None:
    writer, store = writer_on(tmp_path)
    locker = sqlite3.connect(tmp_path / "egress.db", isolation_level=None)
    try:
        locker.execute("BEGIN EXCLUSIVE")
        first = asyncio.ensure_future(WriteAhead(writer, 30.0).commit(exchange(1), BODY))
        await wait_taken(writer)
        gone = asyncio.ensure_future(WriteAhead(writer, 30.0).commit(exchange(2), BODY))
        await asyncio.sleep(0.05)
        gone.cancel()  # the client went away while its record waited
        with pytest.raises(asyncio.CancelledError):
            await gone
        locker.execute("COMMIT")
        await asyncio.wait_for(first, 10)
        await WriteAhead(writer, 10.0).commit(exchange(3), BODY)
        assert [r.entry.request_id for r in store.iter_audit()] == ["egr_1", "egr_3"]
        assert writer.dropped == 1
    finally:
        locker.close()
        writer.close()
        store.close()


class CountingLoop(asyncio.SelectorEventLoop):
    """A real event loop that counts the wake-ups other threads ask of it."""

    wakeups = 0

    def call_soon_threadsafe(self, callback: Any, *args: Any, context: Any = None) -> asyncio.Handle:  # type: ignore[override]
        self.wakeups += 1
        return super().call_soon_threadsafe(callback, *args, context=context)


def test_the_writer_wakes_the_loop_once_per_batch(tmp_path: Path) -> None:
    writer, store = writer_on(tmp_path)
    locker = sqlite3.connect(tmp_path / "egress.db", isolation_level=None)
    loop = CountingLoop()

    async def scenario() -> None:
        locker.execute("BEGIN EXCLUSIVE")
        wa = WriteAhead(writer, 30.0)
        first = asyncio.ensure_future(wa.commit(exchange(0), BODY))
        await wait_taken(writer)  # batch 1: egr_0, waiting on the lock
        rest = [asyncio.ensure_future(wa.commit(exchange(n), BODY)) for n in range(1, 9)]
        await asyncio.sleep(0.05)  # all eight queued behind it: they will share batch 2
        locker.execute("COMMIT")
        await asyncio.wait_for(asyncio.gather(first, *rest), 10)

    try:
        loop.run_until_complete(scenario())
        assert store.audit_count() == 9
        assert loop.wakeups == 2  # one per batch, for 1 and 8 records
    finally:
        loop.close()
        locker.close()
        writer.close()
        store.close()
