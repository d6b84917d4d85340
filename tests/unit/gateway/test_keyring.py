"""The key ring answers from memory and reads the store when a key is unknown: a key created a
moment ago works at once, unknown keys share store reads, a revoked key stops within refresh_s."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from egress.gateway.auth import MISS_READ_INTERVAL_S, KeyRing, new_key
from egress.store.sqlite import SqliteStore


class CountingStore(SqliteStore):
    """The real SQLite store, counting its reads of the active keys."""

    reads = 0

    def active_keys(self):  # type: ignore[no-untyped-def]
        self.reads += 1
        return super().active_keys()


def _store(tmp_path: Path) -> CountingStore:
    store = CountingStore(tmp_path / "egress.db")
    store.migrate()
    return store


async def test_a_key_created_right_after_a_read_works_at_once(tmp_path: Path) -> None:
    store = _store(tmp_path)
    ring = KeyRing(store, refresh_s=60)
    await ring.refresh()  # the ring has just read the store: the old code would not read again
    secret, key = new_key("dev", "core")
    store.create_key(key)
    found = await ring.lookup(secret)
    assert found is not None and found.key_id == key.key_id


async def test_unknown_keys_share_reads(tmp_path: Path) -> None:
    store = _store(tmp_path)
    ring = KeyRing(store, refresh_s=60)
    await ring.refresh()
    store.reads = 0
    started = time.monotonic()
    results = await asyncio.gather(*(ring.lookup(f"egk_unknown{i}") for i in range(50)))
    assert results == [None] * 50
    # Fifty misses at once wait for one read that began after they asked, not fifty reads.
    assert store.reads == 1
    assert time.monotonic() - started < MISS_READ_INTERVAL_S + 2


async def test_a_revoked_key_stops_working_after_the_background_refresh(tmp_path: Path) -> None:
    store = _store(tmp_path)
    ring = KeyRing(store, refresh_s=0.1)
    secret, key = new_key("dev", None)
    store.create_key(key)
    await ring.start()
    try:
        assert await ring.lookup(secret) is not None
        store.revoke_key(key.key_id, time.time())
        deadline = time.monotonic() + 5
        while await ring.lookup(secret) is not None:
            assert time.monotonic() < deadline, "a revoked key kept working"
            await asyncio.sleep(0.05)
    finally:
        await ring.stop()
