"""One Redis client for the replicas' shared hot state, with bounded timeouts and a health.

Invariants: every call is bounded (connect and round trip, `redis.timeout_ms`; redis-py's own
retries are off, so a dead Redis costs one timeout, never three); an outage is logged once when it
begins and once when it ends (core.health.Health), never per request; an error's class is
reported, never its message (it may hold the URL and its password). What a caller does when
Redis is down is its own choice, stated where it calls (docs/scaling.md lists them).

`Round` is the request path's one pipelined round trip: each use queues its commands and gets a
`Slot`, then one `run()` sends them together (no MULTI: they are independent). The ledger's read
(egress/shared/ledger.py) queues an HGETALL; a rate limiter queues its own counter commands (or an
EVALSHA) into the same round before it runs, and reads its slot after.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import Any, TypeVar

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from egress.core.health import Check, Health
from egress.shared.settings import RedisSettings

log = logging.getLogger("egress.shared")
T = TypeVar("T")


class HotStateDown(Exception):
    """Redis did not answer within its bound (or refused): the caller applies its own fallback."""


class Slot:
    """One command's result in a `Round`, set when the round has run."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value: Any = None


class Round:
    """Commands from several uses, sent in one pipelined round trip."""

    def __init__(self, hot: HotState) -> None:
        self._hot = hot
        self._calls: list[tuple[Any, ...]] = []
        self._slots: list[Slot] = []

    def call(self, *args: Any) -> Slot:
        self._calls.append(args)
        slot = Slot()
        self._slots.append(slot)
        return slot

    def __len__(self) -> int:
        return len(self._slots)

    async def run(self) -> None:
        """One round trip. A lone command goes as itself (a pipeline's bookkeeping costs ~20-50 us
        of CPU in redis-py: bench/replicas_bench.py)."""
        if not self._calls:
            return
        redis = self._hot.redis
        if len(self._calls) == 1:
            self._slots[0].value = await self._hot.bounded(redis.execute_command(*self._calls[0]))  # type: ignore[no-untyped-call]
            return
        pipe = redis.pipeline(transaction=False)
        for args in self._calls:
            pipe.execute_command(*args)
        results = await self._hot.bounded(pipe.execute())
        for slot, value in zip(self._slots, results, strict=True):
            slot.value = value


class HotState:
    def __init__(self, settings: RedisSettings) -> None:
        assert settings.url is not None
        self.settings = settings
        self.prefix = settings.key_prefix
        # A blocking pool: past max_connections a call waits (within the round trip's bound) for a
        # connection instead of failing at once, as redis-py's default pool does past 100 in flight
        # (which would refuse ledger sessions and drop rate limits to the per-process fallback).
        pool: BlockingConnectionPool = BlockingConnectionPool.from_url(
            settings.url.get_secret_value(),
            max_connections=settings.max_connections,
            timeout=settings.timeout_s,
            socket_timeout=settings.timeout_s,
            socket_connect_timeout=settings.connect_timeout_s,
            retry=Retry(NoBackoff(), 0),
            retry_on_timeout=False,
        )
        self._pool = pool
        self.redis: Redis = Redis(connection_pool=pool)
        # Subscriptions wait for messages with no read timeout: a connection of their own.
        self.listener: Redis = Redis.from_url(
            settings.url.get_secret_value(),
            socket_timeout=None,
            socket_connect_timeout=settings.connect_timeout_s,
            retry=Retry(NoBackoff(), 0),
        )
        self.health = Health("redis", log)
        self._probe: asyncio.Task[None] | None = None

    def key(self, *parts: str) -> str:
        return self.prefix + ":".join(parts)

    def round(self) -> Round:
        return Round(self)

    async def bounded(self, call: Awaitable[T]) -> T:
        """Await one Redis call within `timeout_s`; any failure becomes HotStateDown (logged once per outage)."""
        try:
            async with asyncio.timeout(self.settings.timeout_s):
                result = await call
        except (RedisError, OSError, TimeoutError) as exc:
            self.health.failed(exc)
            raise HotStateDown(type(exc).__name__) from exc
        self.health.ok()
        return result

    async def ping(self) -> bool:
        try:
            await self.bounded(self.redis.ping())
        except HotStateDown:
            return False
        return True

    # --- the background probe: /readyz and the logs learn of an outage without a request -----

    async def start(self) -> None:
        await self.ping()  # a Redis down at start is reported, not fatal: its uses fall back
        self._probe = asyncio.create_task(self._probe_loop(), name="egress-redis-probe")

    async def _probe_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.health_interval_s)
            await self.ping()

    async def close(self) -> None:
        if self._probe is not None:
            self._probe.cancel()
            try:
                await self._probe
            except asyncio.CancelledError:
                pass
        await self.redis.aclose()
        await self._pool.disconnect()  # a pool handed to Redis() is not closed by it
        await self.listener.aclose()

    def check(self) -> Check:
        h = self.health
        if h.failing:
            return Check(
                "redis", False, "Redis does not answer: sessions with a ledger are refused (503)", h.last_error, h.age()
            )
        return Check("redis", True, "Redis answers", h.last_error, h.age())
