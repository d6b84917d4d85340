"""Approval decisions pushed to every replica (pub/sub); polling the store stays the fallback.

A decision taken on one replica (its console) is published as the approval's id on one channel;
every replica's desk wakes the requests it holds for that id, and they re-read the approval from
the shared store (egress/approve/desk.py). Only the id travels: never a user, a prompt or a
decision, and a message can at worst cause one extra store read (the store is the truth).
Without Redis, or while it is down, each held request still learns of the decision by polling
the store every `approvals.poll_interval_s`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re

from redis.asyncio.client import PubSub
from redis.exceptions import RedisError

from egress.approve.desk import ApprovalDesk
from egress.core.approvals import Approval
from egress.shared.client import HotState, HotStateDown

log = logging.getLogger("egress.shared")
_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


class ApprovalBroadcast:
    def __init__(self, hot: HotState, desk: ApprovalDesk) -> None:
        self.hot = hot
        self.desk = desk
        self.channel = hot.key("approvals")
        self._loop: asyncio.AbstractEventLoop | None = None
        self._outbox: asyncio.Queue[str] = asyncio.Queue(1000)
        self._tasks: list[asyncio.Task[None]] = []
        desk.approvals.add_listener(self._decided)

    def _decided(self, approval: Approval) -> None:
        """An approval decided in this process (any thread): queue its id for publishing."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._enqueue, approval.approval_id)

    def _enqueue(self, approval_id: str) -> None:
        with contextlib.suppress(asyncio.QueueFull):
            self._outbox.put_nowait(approval_id)

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        first = await self._subscribe()
        self._tasks = [
            asyncio.create_task(self._publish_loop(), name="egress-approvals-publish"),
            asyncio.create_task(self._listen_loop(first), name="egress-approvals-listen"),
        ]

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _publish_loop(self) -> None:
        while True:
            approval_id = await self._outbox.get()
            with contextlib.suppress(HotStateDown):  # the others poll the store meanwhile
                await self.hot.bounded(self.hot.redis.publish(self.channel, approval_id))

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

    async def _listen_loop(self, pubsub: PubSub | None) -> None:
        while True:
            if pubsub is None:
                await asyncio.sleep(self.hot.settings.health_interval_s)
                pubsub = await self._subscribe()
                continue
            try:
                async for message in pubsub.listen():
                    data = message.get("data")
                    if isinstance(data, bytes) and _ID.fullmatch(data.decode("ascii", "replace")):
                        self.desk.wake(data.decode("ascii"))
            except (RedisError, OSError) as exc:
                self.hot.health.failed(exc)
            finally:
                with contextlib.suppress(RedisError, OSError):
                    await pubsub.aclose()
                pubsub = None
