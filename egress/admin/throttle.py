"""Failed sign-in throttling: after `max_failures` failures within `window_s` for one account
name or one client address, further attempts for it are refused until the oldest failure leaves
the window. Kept in memory per process (a restart forgets it), bounded in size; with `redis.url`
counted across replicas (`Throttle`, egress/shared/throttle.py), and in this process while Redis
does not answer (degraded: still throttled, per replica)."""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Sequence

from egress.shared.client import HotStateDown
from egress.shared.throttle import SharedFailures

_MAX_KEYS = 10_000


class LoginThrottle:
    def __init__(self, max_failures: int, window_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_failures = max_failures
        self.window_s = window_s
        self.clock = clock
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def _recent(self, key: str, now: float) -> deque[float]:
        times = self._failures.get(key)
        if times is None:
            return deque()
        while times and times[0] <= now - self.window_s:
            times.popleft()
        return times

    def retry_after(self, keys: Iterable[str]) -> float | None:
        """Seconds until an attempt for these keys is allowed again; None when allowed now."""
        now = self.clock()
        wait = 0.0
        for key in keys:
            times = self._recent(key, now)
            if len(times) >= self.max_failures:
                wait = max(wait, times[0] + self.window_s - now)
        return wait or None

    def failed(self, keys: Iterable[str]) -> None:
        now = self.clock()
        for key in keys:
            times = self._recent(key, now)
            times.append(now)
            self._failures[key] = times
            self._failures.move_to_end(key)
        while len(self._failures) > _MAX_KEYS:
            self._failures.popitem(last=False)

    def succeeded(self, keys: Iterable[str]) -> None:
        for key in keys:
            self._failures.pop(key, None)


class Throttle:
    """The console's throttle: shared through Redis when configured; this process's own always
    counts too, and answers while Redis does not."""

    def __init__(self, local: LoginThrottle, shared: SharedFailures | None = None) -> None:
        self.local = local
        self.shared = shared

    async def retry_after(self, keys: Sequence[str]) -> float | None:
        if self.shared is not None:
            try:
                return await self.shared.retry_after(keys)
            except HotStateDown:
                pass  # logged once by the client's health; this process's count answers
        return self.local.retry_after(keys)

    async def failed(self, keys: Sequence[str]) -> None:
        self.local.failed(keys)
        if self.shared is not None:
            try:
                await self.shared.failed(keys)
            except HotStateDown:
                pass

    async def succeeded(self, keys: Sequence[str]) -> None:
        self.local.succeeded(keys)
        if self.shared is not None:
            try:
                await self.shared.succeeded(keys)
            except HotStateDown:
                pass
