"""The Redis client: one pipelined round for several uses; bounded when Redis is gone, reported
in readiness and logged once per outage."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from egress.shared.client import HotState, HotStateDown
from tests.support.gateway import free_port
from tests.unit.shared.conftest import settings


async def test_one_round_carries_several_uses_commands(hot: HotState, raw, prefix: str):
    raw.hset(prefix + "h", "f", "v")
    round_ = hot.round()
    counter = round_.call("INCR", hot.key("count"))  # what a rate limiter would queue
    ledger = round_.call("HGETALL", hot.key("h"))
    await round_.run()
    assert counter.value == 1 and ledger.value == {b"f": b"v"}
    assert len(round_) == 2


async def test_an_unreachable_redis_costs_one_bounded_timeout_is_unready_and_is_logged_once(caplog, prefix: str):
    caplog.set_level(logging.INFO, logger="egress.shared")
    hot = HotState(settings(prefix, url=f"redis://127.0.0.1:{free_port()}/0", timeout_ms=200, connect_timeout_ms=200))
    try:
        for _ in range(5):
            start = time.monotonic()
            with pytest.raises(HotStateDown):
                await hot.bounded(hot.redis.ping())
            assert time.monotonic() - start < 1.0  # bounded (no retries); a generous ceiling
        check = hot.check()
        assert not check.ok and check.name == "redis" and check.last_error is not None
        assert "127.0.0.1" not in (check.last_error or "")  # a class name, never the message or URL
        failing = [r for r in caplog.records if "failing" in r.getMessage()]
        assert len(failing) == 1
    finally:
        await hot.close()


async def test_readiness_recovers_when_redis_answers_again(hot: HotState):
    hot.health.failed(ConnectionError())
    assert not hot.check().ok
    assert await hot.ping()
    assert hot.check().ok


async def test_more_calls_in_flight_than_connections_wait_for_one_and_all_succeed(raw, prefix: str):
    """Past `max_connections` a call waits for a free connection (within its bound) rather than
    failing at once, as redis-py's default pool does past its cap: 300 concurrent calls on 8."""
    state = HotState(settings(prefix, max_connections=8, timeout_ms=5000))
    try:

        async def one(i: int) -> None:
            await state.bounded(state.redis.set(state.key("n", str(i)), b"1", px=60_000))

        await asyncio.gather(*(one(i) for i in range(300)))
        assert len(list(raw.scan_iter(match=prefix + "n*"))) == 300
        assert not state.health.failing
    finally:
        await state.close()
