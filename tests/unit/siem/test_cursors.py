"""Cursors and leases on real stores (SQLite; PostgreSQL with the postgres marker): one holder at
a time, takeover after expiry, only the holder moves the cursor, only forward."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from egress.audit.chain import link
from egress.core.records import GENESIS_HASH
from egress.store.base import SqlStore
from tests.support.databases import migrated_store
from tests.unit.audit.test_chain import entry


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request, tmp_path: Path) -> Iterator[SqlStore]:
    with migrated_store(request.param, tmp_path) as s:
        yield s


def test_one_holder_at_a_time_and_takeover_after_expiry(store: SqlStore) -> None:
    assert store.siem_cursor("s") is None
    first = store.siem_acquire("s", "a", now=100.0, ttl_s=10)
    assert first is not None and first.seq == 0 and first.hash == GENESIS_HASH and first.owner == "a"
    assert store.siem_acquire("s", "b", now=105.0, ttl_s=10) is None  # a holds it until 110
    assert store.siem_acquire("s", "a", now=105.0, ttl_s=10) is not None  # renewed to 115
    assert store.siem_acquire("s", "b", now=112.0, ttl_s=10) is None
    taken = store.siem_acquire("s", "b", now=116.0, ttl_s=10)  # a stopped renewing
    assert taken is not None and taken.owner == "b"
    assert store.siem_acquire("other", "a", now=116.0, ttl_s=10) is not None  # per sink


def test_only_the_holder_moves_the_cursor_and_only_forward(store: SqlStore) -> None:
    store.siem_acquire("s", "a", now=100.0, ttl_s=10)
    assert store.siem_advance("s", "a", 5, "h5", now=101.0, ttl_s=10)
    assert not store.siem_advance("s", "b", 9, "h9", now=101.0, ttl_s=10)  # not the holder
    assert not store.siem_advance("s", "a", 3, "h3", now=101.0, ttl_s=10)  # never backwards
    cursor = store.siem_cursor("s")
    assert cursor is not None and (cursor.seq, cursor.hash, cursor.delivered_at) == (5, "h5", 101.0)
    assert cursor.lease_until == 111.0  # an advance renews the lease
    store.siem_release("s", "a")
    taken = store.siem_acquire("s", "b", now=102.0, ttl_s=10)  # released: at once
    assert taken is not None and taken.seq == 5
    assert not store.siem_advance("s", "a", 9, "h9", now=103.0, ttl_s=10)  # a lost it


def test_batches_follow_the_chain_in_order(store: SqlStore) -> None:
    store.append_audit([entry(i) for i in range(1, 8)], link)
    batch = store.siem_batch(2, 3)
    assert [s.seq for s in batch] == [3, 4, 5]
    assert batch[0].prev_hash == store.siem_batch(1, 1)[0].hash
    assert store.siem_batch(7, 10) == []
