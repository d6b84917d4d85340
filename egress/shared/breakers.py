"""Circuit breakers shared by the replicas: when one replica opens an endpoint's circuit, all do.

Each replica keeps its breakers in memory (egress/route/health.py: admitted or skipped without
a round trip on the request path). What changes is published: a circuit that opens here is
announced on a pub/sub channel and kept in one hash with the wall-clock time its cool-down ends
(a replica that starts, or reconnects, later reads it); one that closes is announced and its
field deleted. Each replica applies the others' announcements (force_open / force_close).

Invariants: sharing only ever opens or closes circuits, so it removes endpoints from a decision's
allowed list, never adds one (route/health.py); a Redis that is down makes each replica keep its
own breakers (degraded, never refused), reported once by the client's health; an announcement
from this replica is never applied to it twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time

import orjson
from redis.asyncio.client import PubSub
from redis.exceptions import RedisError

from egress.route.health import Circuit, EndpointHealth
from egress.shared.client import HotState, HotStateDown

log = logging.getLogger("egress.shared")
_QUEUE = 1000  # announcements waiting to be published; older ones are dropped beyond


class SharedBreakers:
    def __init__(self, hot: HotState, health: EndpointHealth) -> None:
        self.hot = hot
        self.health = health
        self.replica = secrets.token_hex(6)  # tells this replica's own announcements apart
        self.channel = hot.key("breakers")
        self._outbox: asyncio.Queue[tuple[str, Circuit, float, int]] = asyncio.Queue(_QUEUE)
        self._tasks: list[asyncio.Task[None]] = []
        health.on_change = self._changed

    def _changed(self, name: str, circuit: Circuit, cooldown_s: float, failures: int) -> None:
        """Called by EndpointHealth on the event loop: queue it, never wait on Redis here."""
        with contextlib.suppress(asyncio.QueueFull):
            self._outbox.put_nowait((name, circuit, cooldown_s, failures))

    async def start(self) -> None:
        """Subscribed before it returns (an announcement made after start is heard), then the
        circuits open now are read."""
        first = await self._subscribe()
        await self._load_open()
        self._tasks = [
            asyncio.create_task(self._publish_loop(), name="egress-breakers-publish"),
            asyncio.create_task(self._listen_loop(first), name="egress-breakers-listen"),
        ]

    async def _subscribe(self) -> PubSub | None:
        pubsub = self.hot.listener.pubsub(ignore_subscribe_messages=True)
        try:
            async with asyncio.timeout(self.hot.settings.connect_timeout_s + self.hot.settings.timeout_s):
                await pubsub.subscribe(self.channel)
        except (RedisError, OSError, TimeoutError) as exc:
            self.hot.health.failed(exc)
            with contextlib.suppress(RedisError, OSError):
                await pubsub.aclose()
            return None
        return pubsub

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _load_open(self) -> None:
        """The circuits other replicas hold open now, for the rest of their cool-downs."""
        try:
            held = await self.hot.bounded(self.hot.redis.hgetall(self.channel))
        except HotStateDown:
            return  # reported by the client's health; this replica keeps its own breakers
        now = time.time()
        for raw in held.values():
            try:
                doc = orjson.loads(raw)
                left = float(doc["until"]) - now
                if left > 0:
                    self.health.force_open(str(doc["endpoint"]), left, int(doc["failures"]))
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
                log.warning("shared breakers: a malformed entry was ignored")

    async def _publish_loop(self) -> None:
        while True:
            name, circuit, cooldown_s, failures = await self._outbox.get()
            message = orjson.dumps(
                {
                    "from": self.replica,
                    "endpoint": name,
                    "circuit": circuit.value,
                    "cooldown_s": cooldown_s,
                    "until": time.time() + cooldown_s,
                    "failures": failures,
                }
            )
            round_ = self.hot.round()
            if circuit is Circuit.OPEN:
                round_.call("HSET", self.channel, name, message)
            else:
                round_.call("HDEL", self.channel, name)
            round_.call("PUBLISH", self.channel, message)
            with contextlib.suppress(HotStateDown):
                await round_.run()

    async def _listen_loop(self, pubsub: PubSub | None) -> None:
        while True:
            if pubsub is None:
                await asyncio.sleep(self.hot.settings.health_interval_s)
                pubsub = await self._subscribe()
                if pubsub is None:
                    continue
                await self._load_open()  # what opened while this replica was not listening
            try:
                async for message in pubsub.listen():
                    self._apply(message.get("data"))
            except (RedisError, OSError) as exc:
                self.hot.health.failed(exc)
            finally:
                with contextlib.suppress(RedisError, OSError):
                    await pubsub.aclose()
                pubsub = None

    def _apply(self, data: object) -> None:
        if not isinstance(data, bytes):
            return
        try:
            doc = orjson.loads(data)
            if doc["from"] == self.replica:
                return
            name = str(doc["endpoint"])
            if doc["circuit"] == Circuit.OPEN.value:
                self.health.force_open(name, float(doc["cooldown_s"]), int(doc["failures"]))
            else:
                self.health.force_close(name)
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            log.warning("shared breakers: a malformed announcement was ignored")
