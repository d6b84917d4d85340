"""The deliverer: one asyncio task per sink, off the request path, feeding the sink from the
audit chain at least once.

Per step: hold the sink's lease (egress/store/siem_cursors.py), read up to `batch_size` committed
records after the cursor, in sequence order, encode them once, send, and move the cursor to the
batch's last record only after the sink acknowledged the whole batch. A failed send is retried,
the same records from the same cursor, after a bounded exponential backoff with jitter; the
cursor is in the store, so a restart, a crash or a sink outage resumes at the first record the
sink has not acknowledged. What can repeat is the batch in flight when a process stopped or a
send's acknowledgement was lost: at least once, never a gap.

Invariants: the request path never waits on this (it reads the store, never the audit writer's
queue; the store's synchronous calls run in threads); one process per sink delivers at a time
(the lease), another takes over when it stops renewing; a process that lost its lease cannot
move the cursor."""

from __future__ import annotations

import asyncio
import logging
import os
import random
import secrets
import socket
import time
from collections.abc import Mapping, Sequence
from typing import Protocol

from egress.core.records import StoredAudit
from egress.siem.backoff import backoff_delay
from egress.siem.http_json import HttpJsonSink
from egress.siem.metrics import SiemMetrics
from egress.siem.otlp import OtlpLogsSink
from egress.siem.settings import Delivery, HttpSink, OtlpSink, SiemSettings, SinkSettings, SyslogSink
from egress.siem.sink import Sink, SinkError
from egress.siem.syslog import SyslogTcpSink
from egress.store.siem_cursors import SiemCursor

log = logging.getLogger("egress.siem")

# How long stop() lets a send in flight finish before cancelling it (its batch is sent again).
STOP_GRACE_S = 2.0


class CursorStore(Protocol):
    """The store's part the deliverer uses (a `Store`): synchronous, called from threads."""

    def siem_acquire(self, sink: str, owner: str, now: float, ttl_s: float) -> SiemCursor | None: ...

    def siem_advance(self, sink: str, owner: str, seq: int, hash_: str, now: float, ttl_s: float) -> bool: ...

    def siem_release(self, sink: str, owner: str) -> None: ...

    def siem_batch(self, after_seq: int, limit: int) -> list[StoredAudit]: ...

    def audit_head(self) -> tuple[int, str] | None: ...


def build_sink(settings: SinkSettings, env: Mapping[str, str] | None = None) -> Sink:
    if isinstance(settings, SyslogSink):
        return SyslogTcpSink(settings)
    if isinstance(settings, HttpSink):
        return HttpJsonSink(settings, dict(env) if env is not None else None)
    if isinstance(settings, OtlpSink):
        return OtlpLogsSink(settings)
    raise TypeError(f"unknown sink type {type(settings).__name__}")


def process_owner() -> str:
    """This process's lease name: host, pid and a random part (pids are reused)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


class SinkWorker:
    """Delivers to one sink until stopped."""

    def __init__(
        self,
        sink: Sink,
        delivery: Delivery,
        store: CursorStore,
        metrics: SiemMetrics,
        owner: str,
        rng: random.Random | None = None,
    ) -> None:
        self.sink = sink
        self.name = sink.name
        self.settings = delivery
        self.store = store
        self.owner = owner
        self._rng = rng if rng is not None else random.Random()  # noqa: S311 - jitter, not a secret
        self._stop = asyncio.Event()
        self._cursor_seq: int | None = None  # known while the lease is held
        self._lease_until = 0.0
        self.failures = 0  # consecutive failed attempts
        self.delivered = 0
        m = metrics
        self._delivered = m.delivered.labels(self.name)
        self._failed = m.failed.labels(self.name)
        self._lag_records = m.lag_records.labels(self.name)
        self._lag_seconds = m.lag_seconds.labels(self.name)
        self._retry_delay = m.retry_delay.labels(self.name)

    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        while not self._stop.is_set():
            try:
                progressed = await self.step()
            except SinkError as exc:
                self._failed_attempt(str(exc))
                continue_after = backoff_delay(
                    self.failures - 1, self.settings.backoff_initial_s, self.settings.backoff_cap_s, self._rng
                )
                self._retry_delay.set(continue_after)
                await self._sleep(continue_after)
                continue
            except Exception as exc:  # noqa: BLE001 - the store failed: retry later, the cursor is safe
                self._failed_attempt(f"store: {type(exc).__name__}: {exc}")
                await self._sleep(
                    backoff_delay(
                        self.failures - 1, self.settings.backoff_initial_s, self.settings.backoff_cap_s, self._rng
                    )
                )
                continue
            if self.failures:
                log.info("siem sink %s: delivering again after %d failed attempts", self.name, self.failures)
            self.failures = 0
            self._retry_delay.set(0)
            if not progressed:
                await self._sleep(self.settings.poll_interval_s)

    def _failed_attempt(self, reason: str) -> None:
        self.failures += 1
        self._failed.inc()
        # The first failure and then every tenth: an outage is visible without flooding the log.
        if self.failures == 1 or self.failures % 10 == 0:
            log.warning("siem sink %s: attempt %d failed: %s", self.name, self.failures, reason)

    async def _sleep(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self._stop.wait(), seconds)
        except TimeoutError:
            pass

    async def _hold(self) -> int | None:
        """The cursor while this process holds the lease (renewed when half of it is used)."""
        ttl = self.settings.lease_ttl_s
        now = time.time()
        if self._cursor_seq is not None and now < self._lease_until - ttl / 2:
            return self._cursor_seq
        cursor = await asyncio.to_thread(self.store.siem_acquire, self.name, self.owner, now, ttl)
        if cursor is None:
            self._cursor_seq = None
            self._lease_until = 0.0
            return None
        self._cursor_seq, self._lease_until = cursor.seq, cursor.lease_until
        return cursor.seq

    async def step(self) -> bool:
        """One batch: True when records were delivered, False when there was nothing to do (or
        another process holds the lease). Raises SinkError when the sink did not acknowledge."""
        after = await self._hold()
        if after is None:
            self._lag_records.set(0)
            self._lag_seconds.set(0)
            return False
        batch = await asyncio.to_thread(self.store.siem_batch, after, self.settings.batch_size)
        if not batch:
            self._lag_records.set(0)
            self._lag_seconds.set(0)
            return False
        head = await asyncio.to_thread(self.store.audit_head)
        self._lag_records.set((head[0] if head else batch[-1].seq) - after)
        self._lag_seconds.set(max(time.time() - batch[0].entry.ts, 0.0))
        await self._send(batch)
        last = batch[-1]
        now = time.time()
        ttl = self.settings.lease_ttl_s
        moved = await asyncio.to_thread(self.store.siem_advance, self.name, self.owner, last.seq, last.hash, now, ttl)
        if not moved:
            # Another process took the lease meanwhile: it resumes from the stored cursor.
            log.warning("siem sink %s: lease lost; another process delivers now", self.name)
            self._cursor_seq = None
            self._lease_until = 0.0
            return False
        self._cursor_seq, self._lease_until = last.seq, now + ttl
        self.delivered += len(batch)
        self._delivered.inc(len(batch))
        remaining = (head[0] if head else last.seq) - last.seq
        self._lag_records.set(max(remaining, 0))
        if remaining <= 0:
            self._lag_seconds.set(0)
        return True

    async def _send(self, batch: Sequence[StoredAudit]) -> None:
        payload = self.sink.encode(batch)
        try:
            await asyncio.wait_for(self.sink.send(payload, len(batch)), self.settings.timeout_s)
        except TimeoutError:
            raise SinkError(f"{self.name}: no acknowledgement within {self.settings.timeout_s} s") from None

    async def release(self) -> None:
        if self._cursor_seq is not None:
            await asyncio.to_thread(self.store.siem_release, self.name, self.owner)
            self._cursor_seq = None
        await self.sink.close()


class SiemDelivery:
    """Every configured sink's worker: started and stopped with the gateway (egress/app.py)."""

    def __init__(
        self,
        settings: SiemSettings,
        store: CursorStore,
        metrics: SiemMetrics,
        env: Mapping[str, str] | None = None,
        owner: str | None = None,
    ) -> None:
        owner = owner or process_owner()
        self.metrics = metrics
        self.workers = [SinkWorker(build_sink(s, env), s.delivery, store, metrics, owner) for s in settings.sinks]
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        """Start the tasks on the running loop (nothing when no sink is configured)."""
        self._tasks = [asyncio.create_task(w.run(), name=f"siem-{w.name}") for w in self.workers]

    async def stop(self) -> None:
        """Stop every worker: a send in flight may finish within STOP_GRACE_S, else it is
        cancelled (its batch is sent again next time); leases are given up for the next process."""
        for w in self.workers:
            w.stop()
        if self._tasks:
            _, pending = await asyncio.wait(self._tasks, timeout=STOP_GRACE_S)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        for w in self.workers:
            try:
                await w.release()
            except Exception as exc:  # noqa: BLE001 - the lease expires on its own
                log.warning("siem sink %s: lease not released: %s", w.name, type(exc).__name__)
