"""Store connections come back: a terminated PostgreSQL backend is discarded and replaced on the
next use; an unreachable server is retried after a backoff, not on every call. The key ring
survives a key store outage and refuses natively once it is stale."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import psycopg
import pytest

from egress.core.errors import EgressError, ErrorCode
from egress.gateway.auth import KeyRing, new_key
from egress.store.postgres import PostgresStore
from egress.store.sql import StoreUnavailable
from egress.store.sqlite import SqliteStore
from tests.support.databases import throwaway_postgres
from tests.support.gateway import free_port


def test_a_terminated_backend_is_replaced_on_next_use() -> None:
    with throwaway_postgres() as url:
        store = PostgresStore(url)
        store.migrate()
        try:
            store.ping()
            with psycopg.connect(url, autocommit=True) as admin:
                (killed,) = admin.execute(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE datname = %s AND pid <> pg_backend_pid()",
                    (url.rsplit("/", 1)[1],),
                ).fetchone()
            assert killed == 1
            with pytest.raises(psycopg.OperationalError):
                store.ping()  # this call meets the dead connection
            store.ping()  # the next one has a new connection
            assert store.reconnects == 1
            assert store.audit_count() == 0
        finally:
            store.close()


def test_an_unreachable_server_is_retried_after_a_backoff() -> None:
    store = PostgresStore(f"postgresql://postgres@127.0.0.1:{free_port()}/none", connect_timeout_s=1)
    with pytest.raises(psycopg.OperationalError):
        store.ping()
    # Within the backoff no connection is attempted: the call fails at once.
    with pytest.raises(StoreUnavailable):
        store.ping()
    assert store._retry_at > 0


def _ring_store(tmp_path: Path) -> SqliteStore:
    store = SqliteStore(tmp_path / "egress.db")
    store.migrate()
    return store


async def test_key_ring_survives_an_outage_and_refuses_when_stale(tmp_path: Path) -> None:
    store = _ring_store(tmp_path)
    secret, key = new_key("dev", None)
    store.create_key(key)
    ring = KeyRing(store, refresh_s=0.05)
    await ring.start()
    try:
        assert await ring.lookup(secret) is not None and ring.check().ok
        with sqlite3.connect(tmp_path / "egress.db") as other:
            other.execute("ALTER TABLE gateway_keys RENAME TO gateway_keys_away")
        # An unknown key cannot be checked: a native refusal, not a server error.
        with pytest.raises(EgressError) as unknown:
            await ring.lookup("egk_" + "u" * 43)
        assert unknown.value.code is ErrorCode.AUTH_UNAVAILABLE and unknown.value.status == 503
        while not ring.stale:
            await asyncio.sleep(0.02)
        assert not ring.check().ok and ring.health.failing
        with pytest.raises(EgressError) as stale:
            await ring.lookup(secret)  # even a known key: its revocation could not be seen
        assert stale.value.code is ErrorCode.AUTH_UNAVAILABLE
        with sqlite3.connect(tmp_path / "egress.db") as other:
            other.execute("UPDATE gateway_keys_away SET revoked_at = 1")
            other.execute("ALTER TABLE gateway_keys_away RENAME TO gateway_keys")
        while ring.stale:  # the loop kept going and recovers by itself
            await asyncio.sleep(0.02)
        assert await ring.lookup(secret) is None  # revoked during the outage: refused now
        assert ring.check().ok and not ring.health.failing
    finally:
        await ring.stop()
        store.close()
