"""Where the CPU-heavy stages run: inline for small bodies, off the event loop for large ones.

Invariant: no stage holds the event loop longer than the limits allow (inline_body_bytes,
inspect_inline_s), and no inspection uses more than inspect_cpu_budget_s of CPU: past it the
request is refused (inspection_budget_exceeded), never forwarded uninspected.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from egress.core.errors import EgressError, ErrorCode
from egress.core.exchange import Finding, Prompt
from egress.detect.budget import Budget, BudgetExceeded
from egress.detect.scan import Scanner
from egress.gateway.stage import run_stage

T = TypeVar("T")


class Offload:
    """The worker pool of the parse, inspect and mask stages, and the rule for using it."""

    def __init__(self, *, inline_body_bytes: int, inspect_inline_s: float, inspect_cpu_budget_s: float) -> None:
        self.inline_body_bytes = inline_body_bytes
        self.inspect_inline_s = inspect_inline_s
        self.inspect_cpu_budget_s = inspect_cpu_budget_s
        # One thread per core. The matchers (Hyperscan, RE2) release the GIL while they match,
        # and a scan yields it between matches.
        self._workers = ThreadPoolExecutor(
            max_workers=len(os.sched_getaffinity(0)), thread_name_prefix="egress-inspect"
        )

    def close(self) -> None:
        self._workers.shutdown(wait=True)

    async def run(self, size: int, name: str, fn: Callable[..., T], *args: Any) -> T:
        """A stage on a worker thread when the body is large (it would hold the event loop)."""
        if size < self.inline_body_bytes:
            return run_stage(name, fn, *args)
        return await asyncio.get_running_loop().run_in_executor(self._workers, run_stage, name, fn, *args)

    async def inspect(self, scanner: Scanner, prompt: Prompt, size: int) -> tuple[Finding, ...]:
        """The inspect stage within its budget: no scan holds the event loop longer than
        inspect_inline_s, and none uses more than inspect_cpu_budget_s of CPU (it stops there)."""
        if size < self.inline_body_bytes:
            found = run_stage(
                "inspect", _scan_within, scanner, prompt, self.inspect_inline_s, time.perf_counter, False
            )
            if found is not None:
                return found
            # A small body slow to scan (secret-dense): scanned again, off the loop.
        budget_s = self.inspect_cpu_budget_s
        found = await asyncio.get_running_loop().run_in_executor(
            self._workers, run_stage, "inspect", _scan_within, scanner, prompt, budget_s, time.thread_time, True
        )
        if found is None:
            raise EgressError(
                ErrorCode.INSPECTION_BUDGET_EXCEEDED,
                f"inspecting this request needed more than {budget_s:g} s of CPU; it was not sent "
                "(send less text at once)",
                stage="inspect",
            )
        return found


def _scan_within(
    scanner: Scanner, prompt: Prompt, budget_s: float, clock: Callable[[], float], on_worker: bool
) -> tuple[Finding, ...] | None:
    """The prompt's findings, or None if the scan ran out of its budget (and stopped). The budget
    starts here, on the thread that scans: a thread_time budget counts that thread's CPU."""
    budget = Budget(budget_s, clock, yield_gil=on_worker)
    try:
        return scanner.scan(prompt, budget)
    except BudgetExceeded:
        return None
