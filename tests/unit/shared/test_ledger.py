"""The shared session ledger, against the real Redis: what one replica remembers, another knows;
nothing readable at rest (Redis or the store); the store restores a session Redis lost; an entry
moved to another session or user never opens; a Redis that does not answer refuses."""

from __future__ import annotations

import secrets
import time
from pathlib import Path

import pytest

from egress.shared.client import HotState, HotStateDown
from egress.shared.ledger import SharedLedger
from egress.store.sqlite import SqliteStore
from tests.support.gateway import free_port
from tests.unit.shared.conftest import settings

KEY = bytes(range(32))


def ledger(hot: HotState, store=None, max_values: int = 512) -> SharedLedger:
    return SharedLedger(hot, KEY, store, ttl_s=60, max_values=max_values, store_timeout_s=2)


@pytest.fixture
def store(tmp_path: Path):
    s = SqliteStore(tmp_path / "egress.db")
    s.migrate()
    yield s
    s.close()


def canary() -> str:
    return "pw-" + secrets.token_hex(10)


async def test_a_value_remembered_on_one_replica_is_known_on_another(prefix: str, raw):
    a, b = HotState(settings(prefix)), HotState(settings(prefix))
    try:
        value = canary()
        await ledger(a).remember("alice", "s1", {"«SECRET_1»": value}, {})
        assert await ledger(b).known("alice", "s1") == {value: "«SECRET_1»"}
        assert await ledger(b).known("bob", "s1") == {}  # another user: nothing
        assert await ledger(b).known("alice", "s2") == {}  # another session: nothing
    finally:
        await a.close()
        await b.close()


async def test_nothing_readable_in_redis_and_a_ttl_on_every_session(hot: HotState, raw, prefix: str):
    value, session = canary(), "sess-" + secrets.token_hex(4)
    await ledger(hot).remember("alice", session, {"«SECRET_1»": value}, {})
    keys = list(raw.scan_iter(match=prefix + "*"))
    assert len(keys) == 1
    dumped = b"".join([keys[0], raw.dump(keys[0]) or b""] + [k + v for k, v in raw.hgetall(keys[0]).items()])
    for clear in (value, "«SECRET_1»", "alice", session):
        assert clear.encode() not in dumped
    assert 0 < raw.pttl(keys[0]) <= 60_000


async def test_a_field_moved_to_another_session_does_not_open(hot: HotState, raw):
    led = ledger(hot)
    await led.remember("alice", "s1", {"«SECRET_1»": canary()}, {})
    await led.remember("mallory", "s9", {"«SECRET_2»": canary()}, {})
    source, target = led.redis_key("alice", "s1"), led.redis_key("mallory", "s9")
    for field, sealed in raw.hgetall(source).items():
        raw.hset(target, field, sealed)
    assert list((await led.known("mallory", "s9")).values()) == ["«SECRET_2»"]


async def test_the_store_restores_a_session_redis_lost(prefix: str, raw, store: SqliteStore):
    hot = HotState(settings(prefix))
    try:
        value = canary()
        first = ledger(hot, store)
        await first.remember("alice", "s1", {"«SECRET_1»": value}, {})
        first.close()  # its store copy is written
        assert value.encode() not in b"".join(p.read_bytes() for p in store.path.parent.glob("egress.db*"))
        raw.delete(first.redis_key("alice", "s1"))  # Redis restarted empty
        again = ledger(hot, store)
        assert await again.known("alice", "s1") == {value: "«SECRET_1»"}
        assert raw.exists(first.redis_key("alice", "s1"))  # reseeded
        again.close()
    finally:
        await hot.close()


async def test_only_the_most_recent_values_are_kept(hot: HotState):
    led = ledger(hot, max_values=3)
    values = [canary() for _ in range(5)]
    for i, value in enumerate(values):
        await led.remember("alice", "s1", {f"«SECRET_{i}»": value}, {})
        time.sleep(0.002)
    assert set(await led.known("alice", "s1")) == set(values[2:])


async def test_nothing_new_is_no_write(hot: HotState, raw):
    led = ledger(hot)
    value = canary()
    await led.remember("alice", "s1", {"«SECRET_1»": value}, {})
    raw.delete(led.redis_key("alice", "s1"))
    await led.remember("alice", "s1", {"«SECRET_1»": value}, {value: "«SECRET_1»"})
    assert not raw.exists(led.redis_key("alice", "s1"))


async def test_a_redis_that_does_not_answer_refuses_both_read_and_write(prefix: str):
    hot = HotState(settings(prefix, url=f"redis://127.0.0.1:{free_port()}/0", timeout_ms=200, connect_timeout_ms=200))
    try:
        led = ledger(hot)
        with pytest.raises(HotStateDown):
            await led.known("alice", "s1")
        with pytest.raises(HotStateDown):
            await led.remember("alice", "s1", {"«SECRET_1»": canary()}, {})
    finally:
        await hot.close()
