"""Failed sign-ins counted across replicas (the console's throttle, egress/admin/throttle.py).

One sorted set per throttled key (an account name, a client address), scored by the wall-clock
time of each failure; its TTL is the window. The key's name is a digest: no account name or
address is readable in Redis. Each call is one pipelined round trip. A Redis that does not answer
raises HotStateDown: the console then counts in its own process (degraded, never unthrottled).
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Sequence

from egress.shared.client import HotState


class SharedFailures:
    def __init__(self, hot: HotState, max_failures: int, window_s: float) -> None:
        self.hot = hot
        self.max_failures = max_failures
        self.window_s = window_s

    def _key(self, key: str) -> str:
        return self.hot.key("signin", hashlib.sha256(key.encode()).hexdigest()[:32])

    async def retry_after(self, keys: Sequence[str]) -> float | None:
        now = time.time()
        round_ = self.hot.round()
        slots = []
        for key in keys:
            name = self._key(key)
            round_.call("ZREMRANGEBYSCORE", name, "-inf", now - self.window_s)
            slots.append((round_.call("ZCARD", name), round_.call("ZRANGE", name, 0, 0, "WITHSCORES")))
        await round_.run()
        wait = 0.0
        for count, oldest in slots:
            if int(count.value) >= self.max_failures and oldest.value:
                wait = max(wait, float(oldest.value[0][1]) + self.window_s - now)
        return wait or None

    async def failed(self, keys: Sequence[str]) -> None:
        now = time.time()
        round_ = self.hot.round()
        for key in keys:
            name = self._key(key)
            round_.call("ZADD", name, now, f"{now}:{os.urandom(4).hex()}")
            round_.call("PEXPIRE", name, int(self.window_s * 1000) + 1000)
        await round_.run()

    async def succeeded(self, keys: Sequence[str]) -> None:
        round_ = self.hot.round()
        round_.call("DEL", *[self._key(k) for k in keys])
        await round_.run()
