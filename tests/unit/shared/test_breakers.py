"""Breakers shared through the real Redis: a circuit one replica opens is open on the others (and
on one that starts later); its close is shared too; without Redis each keeps its own."""

from __future__ import annotations

import asyncio
import time

from egress.route.health import Circuit, EndpointHealth
from egress.route.settings import BreakerSettings
from egress.shared.breakers import SharedBreakers
from egress.shared.client import HotState
from tests.support.gateway import free_port
from tests.unit.shared.conftest import settings

BREAKER = BreakerSettings(failure_threshold=2, cooldown_s=30)


async def until(predicate, timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "not shared in time"
        await asyncio.sleep(0.02)


async def replica(prefix: str) -> tuple[HotState, EndpointHealth, SharedBreakers]:
    hot = HotState(settings(prefix))
    health = EndpointHealth(BREAKER)
    shared = SharedBreakers(hot, health)
    await shared.start()
    return hot, health, shared


async def test_a_circuit_opened_on_one_replica_opens_on_the_others_and_closes_with_it(prefix: str, raw):
    started = [await replica(prefix) for _ in range(2)]
    (_, a, _), (_, b, _) = started
    try:
        await asyncio.sleep(0.2)  # subscribed
        a.failed("anthropic")
        assert b.circuit("anthropic") is Circuit.CLOSED  # one failure: nothing to share
        a.failed("anthropic")
        assert a.circuit("anthropic") is Circuit.OPEN
        await until(lambda: b.circuit("anthropic") is Circuit.OPEN)
        assert 25 < b.retry_in("anthropic") <= 30
        # A replica that starts now reads the open circuit.
        late = await replica(prefix)
        started.append(late)
        assert late[1].circuit("anthropic") is Circuit.OPEN
        # A's probe succeeds: everyone closes.
        a.force_open("anthropic", 0.0, 2)  # cool-down over: A is half-open and sends a probe
        assert a.admit("anthropic")
        a.succeeded("anthropic")
        await until(lambda: b.circuit("anthropic") is Circuit.CLOSED and late[1].circuit("anthropic") is Circuit.CLOSED)
        assert raw.hgetall(prefix + "breakers") == {}
    finally:
        for hot, _, shared in started:
            await shared.close()
            await hot.close()


async def test_without_redis_each_replica_keeps_its_own_breakers(prefix: str):
    hot = HotState(settings(prefix, url=f"redis://127.0.0.1:{free_port()}/0", timeout_ms=100, connect_timeout_ms=100))
    health = EndpointHealth(BREAKER)
    shared = SharedBreakers(hot, health)
    try:
        await shared.start()
        health.failed("anthropic")
        health.failed("anthropic")
        assert health.circuit("anthropic") is Circuit.OPEN
        await asyncio.sleep(0.3)  # the publisher tried and gave up quietly
        assert health.circuit("anthropic") is Circuit.OPEN and not hot.check().ok
    finally:
        await shared.close()
        await hot.close()
