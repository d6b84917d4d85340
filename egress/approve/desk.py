"""The gateway's asyncio side of approvals: store calls on a worker thread, never on the event
loop, and waiting for a decision.

A held request learns of a decision three ways: at once, when it was taken in this process (the
console's `Approvals` is the same object: its listener wakes the waiter); at once too, when
another replica took it and Redis carried the news (egress/shared/approvals.py calls `wake`);
and, always, by re-reading the shared store every `poll_interval_s` (the CLI, or no Redis).
A sweep marks approvals nobody answered expired once their deadline passes (and audits it), so
the log says when they lapsed, not when someone next listed them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

from egress.approve.service import Approvals
from egress.approve.settings import ApprovalSettings
from egress.core.approvals import Approval, ApprovalStatus
from egress.core.health import Check, Health

log = logging.getLogger("egress.approve")

T = TypeVar("T")


class ApprovalDesk:
    def __init__(self, approvals: Approvals, poll_interval_s: float = ApprovalSettings().poll_interval_s) -> None:
        self.approvals = approvals
        self.poll_interval_s = poll_interval_s
        self._thread = ThreadPoolExecutor(max_workers=2, thread_name_prefix="egress-approvals")
        # approval id -> its waiters: (loop, the event set when it is decided here). Identical
        # requests join one approval, so one id may have several.
        self._waiters: dict[str, list[tuple[asyncio.AbstractEventLoop, asyncio.Event]]] = {}
        self._sweeper: asyncio.Task[None] | None = None
        # The sweep's state for /readyz: an outage is logged once, not a traceback every interval.
        self.sweep_health = Health("approval sweep", log)
        approvals.add_listener(self._decided)

    def start_sweep(self, interval_s: float = 30.0) -> None:
        """Expire overdue approvals every `interval_s` (on the worker thread), until close()."""
        self._sweeper = asyncio.get_running_loop().create_task(self._sweep(interval_s), name="egress-approval-sweep")

    async def _sweep(self, interval_s: float) -> None:
        while True:
            await asyncio.sleep(interval_s)
            try:
                expired = await self._call(self.approvals.expire_overdue)
            except Exception as exc:  # noqa: BLE001 - a background sweep: report it and try again next time
                self.sweep_health.failed(exc)
                continue
            self.sweep_health.ok()
            if expired:
                log.info("approvals: %d expired unanswered", expired)

    def check(self) -> Check:
        """The sweep, for /readyz. Reported, never gating: while it fails, overdue approvals
        expire late (a held request still times out on its own deadline) and requests are
        unaffected; a store outage behind it fails the store check, which does gate."""
        health = self.sweep_health
        if health.failing:
            detail = f"failing ({health.failures} attempts): overdue approvals are expired late"
        else:
            detail = "running"
        return Check("approval_sweep", True, detail, health.last_error, health.age())

    def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        self._thread.shutdown(wait=True)

    async def _call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._thread, lambda: fn(*args, **kwargs))

    async def create(self, **fields: Any) -> Approval:
        return await self._call(self.approvals.create, **fields)

    async def request(self, **fields: Any) -> tuple[Approval, bool]:
        """(the pending approval to wait on, whether it was created): see `Approvals.request`."""
        return await self._call(self.approvals.request, **fields)

    async def consume(self, user: str, digest: str) -> Approval | None:
        return await self._call(self.approvals.consume, user, digest)

    async def use(self, approval_id: str) -> Approval | None:
        return await self._call(self.approvals.use, approval_id)

    async def expire(self, approval_id: str) -> Approval:
        return await self._call(self.approvals.expire, approval_id)

    async def get(self, approval_id: str) -> Approval | None:
        return await self._call(self.approvals.get, approval_id)

    def cancel_soon(self, approval_id: str) -> Future[None] | None:
        """Cancel without waiting (the caller is being cancelled itself); failures are logged.
        At shutdown, once the worker thread is gone, the approval is left to expire."""
        try:
            return self._thread.submit(self._cancel, approval_id)
        except RuntimeError:
            log.warning("approval %s not cancelled: shutting down; it expires at its deadline", approval_id)
            return None

    def _cancel(self, approval_id: str) -> None:
        try:
            self.approvals.cancel(approval_id)
        except Exception:  # noqa: BLE001 - off the request path: log; the approval expires anyway
            log.exception("could not cancel approval %s", approval_id)

    async def wait(self, approval_id: str, timeout_s: float) -> Approval | None:
        """The approval once it is no longer pending, or None if it still is after `timeout_s`."""
        loop = asyncio.get_running_loop()
        event = asyncio.Event()
        waiter = (loop, event)
        self._waiters.setdefault(approval_id, []).append(waiter)
        deadline = loop.time() + timeout_s
        try:
            while True:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    return None
                try:
                    async with asyncio.timeout(min(remaining, self.poll_interval_s)):
                        await event.wait()
                except TimeoutError:
                    pass
                current = await self.get(approval_id)
                if current is None or current.status != ApprovalStatus.PENDING:
                    return current
        finally:
            waiters = self._waiters.get(approval_id, [])
            if waiter in waiters:
                waiters.remove(waiter)
            if not waiters:
                self._waiters.pop(approval_id, None)

    def waiting(self, approval_id: str) -> int:
        """How many requests of this process wait on the approval now."""
        return len(self._waiters.get(approval_id, ()))

    def _decided(self, approval: Approval) -> None:
        self.wake(approval.approval_id)

    def wake(self, approval_id: str) -> None:
        """Make this approval's waiters re-read it now (from any thread). A waiter only ever acts
        on what the store says, so a wake-up for an undecided approval costs one read."""
        for loop, event in list(self._waiters.get(approval_id, ())):
            loop.call_soon_threadsafe(event.set)
