"""State the metrics sample rather than count: circuit breakers, the audit writer's queue, lag
and checkpoint age, approvals pending. A background task on the event loop refreshes the gauges
every `interval_s`, so none of this costs a request anything; a scrape reads the last sample.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from egress.telemetry.metrics import GatewayMetrics

log = logging.getLogger("egress.telemetry")

# The breaker gauge's values (egress_breaker_state).
CIRCUIT_VALUES = {"closed": 0.0, "half_open": 1.0, "open": 2.0}


class AuditState(Protocol):
    @property
    def backlog(self) -> int: ...

    @property
    def uncovered_age_s(self) -> float: ...

    failures: int


@dataclass
class Sources:
    """Where the samples come from (app.py wires them)."""

    audit: AuditState
    circuits: Callable[[], dict[str, str]]  # endpoint name -> closed | half_open | open
    endpoints: tuple[str, ...]  # every endpoint, so a closed one reads 0 rather than nothing
    pending_approvals: Callable[[], int] | None = None  # blocking (the store): run on a thread


class Sampler:
    def __init__(
        self, metrics: GatewayMetrics, sources: Sources, interval_s: float = 1.0, approvals_every: int = 5
    ) -> None:
        self.metrics = metrics
        self.sources = sources
        self.interval_s = interval_s
        self.approvals_every = approvals_every  # the store is asked every this many samples
        self._task: asyncio.Task[None] | None = None
        self._backlog_since: float | None = None
        self._ticks = 0

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="egress-metrics-sampler")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            try:
                await self.sample()
            except Exception as exc:  # noqa: BLE001 - a failed sample must not stop the sampler
                log.warning("metrics sample failed: %s", type(exc).__name__)
            await asyncio.sleep(self.interval_s)

    async def sample(self) -> None:
        m, s = self.metrics, self.sources
        circuits = s.circuits()
        for name in s.endpoints:
            m.breaker.labels(name).set(CIRCUIT_VALUES.get(circuits.get(name, "closed"), 0.0))
        backlog = s.audit.backlog
        m.audit_queue.set(backlog)
        now = time.monotonic()
        if backlog <= 0:
            self._backlog_since = None
        elif self._backlog_since is None:
            self._backlog_since = now
        m.audit_lag.set(0.0 if self._backlog_since is None else now - self._backlog_since)
        m.checkpoint_age.set(s.audit.uncovered_age_s)
        m.audit_failures.set(s.audit.failures)
        if s.pending_approvals is not None and self._ticks % self.approvals_every == 0:
            m.approvals_pending.set(await asyncio.to_thread(s.pending_approvals))
        self._ticks += 1
