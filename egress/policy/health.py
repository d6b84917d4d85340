"""Is the policy engine there? A background probe of a remote OPA server for readiness.

The probe asks OPA's own health endpoint (GET {server}/health) every `interval_s`, off the
request path: a request never waits on it. The engine is unreachable, and the gateway not ready,
after `failures_to_fail` probes in a row fail; one success makes it reachable again. An
in-process Rego policy is compiled before the gateway starts: it is reachable by construction.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from urllib.parse import urlsplit

import aiohttp

from egress.core.health import Check, Health

log = logging.getLogger("egress.policy")


class OpaProbe:
    def __init__(self, opa_url: str, interval_s: float = 1.0, timeout_s: float = 1.0, failures_to_fail: int = 2) -> None:
        parts = urlsplit(opa_url)
        self.url = f"{parts.scheme}://{parts.netloc}/health"
        self.interval_s = interval_s
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._failures_to_fail = failures_to_fail
        self.health = Health("policy engine (OPA) probe", log)
        self._task: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(timeout=self._timeout)
        await self.probe()
        self._task = asyncio.create_task(self._loop(), name="egress-opa-probe")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            await self.probe()

    async def probe(self) -> bool:
        assert self._session is not None
        try:
            async with self._session.get(self.url) as resp:
                await resp.read()
                if resp.status != 200:
                    raise OpaUnhealthy(f"HTTP {resp.status}")
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - any failure of the probe: the engine is not there
            self.health.failed(exc)
            return False
        self.health.ok()
        return True

    @property
    def reachable(self) -> bool:
        return self.health.last_ok is not None and self.health.failures < self._failures_to_fail

    def check(self) -> Check:
        health = self.health
        if not self.reachable:
            return Check("policy", False, "the OPA server does not answer its health probe", health.last_error, health.age())
        return Check("policy", True, "OPA answers its health probe", health.last_error, health.age())


class OpaUnhealthy(Exception):
    """OPA answered its health endpoint with something other than 200."""
