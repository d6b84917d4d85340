"""Where the CPU-heavy stages run: inline for small bodies, off the event loop for large ones.

Invariant: no stage holds the event loop longer than the limits allow (inline_body_bytes,
inspect_inline_s), and no inspection uses more than inspect_cpu_budget_s of CPU: past it the
request is refused (inspection_budget_exceeded), never forwarded uninspected.

Three places, by body size:
- below inline_body_bytes: on the event loop (a scan slower than inspect_inline_s moves on);
- from inline_body_bytes: on a worker thread (one per core);
- from process_body_bytes, when a worker pool is configured: in a worker process
  (gateway/worker_pool.py). A thread still shares the GIL, and one C call on a large body
  (a JSON parse, a serialisation) holds it for milliseconds per megabyte; a process does not.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from egress.core.errors import EgressError, ErrorCode
from egress.core.exchange import Api, Decision, Finding, MaskedRequest, ParsedRequest, Prompt
from egress.detect.scan import Scanner
from egress.gateway.stage import run_stage
from egress.gateway.worker_pool import Parse, StagePool, TopLevelFields, WorkerStages, scan_within
from egress.mask.masker import Masker

T = TypeVar("T")


class Offload:
    """The worker pools of the parse, inspect and mask stages, and the rule for using them."""

    def __init__(
        self,
        *,
        inline_body_bytes: int,
        inspect_inline_s: float,
        inspect_cpu_budget_s: float,
        process_body_bytes: int | None = None,
        worker_stages: Callable[[], WorkerStages] | None = None,
    ) -> None:
        """`worker_stages` (picklable: it is called in each worker process) builds a worker's
        scanner and masker; without it, or without process_body_bytes, every large body is
        handled on a worker thread."""
        self.inline_body_bytes = inline_body_bytes
        self.inspect_inline_s = inspect_inline_s
        self.inspect_cpu_budget_s = inspect_cpu_budget_s
        cores = len(os.sched_getaffinity(0))
        # One thread per core. The matchers (Hyperscan, RE2) release the GIL while they match,
        # and a scan yields it between matches.
        self._workers = ThreadPoolExecutor(max_workers=cores, thread_name_prefix="egress-inspect")
        self.process_body_bytes = process_body_bytes
        self._processes = (
            StagePool(worker_stages, cores) if worker_stages is not None and process_body_bytes is not None else None
        )

    def close(self) -> None:
        self._workers.shutdown(wait=True)
        if self._processes is not None:
            self._processes.close()

    def _in_process(self, size: int) -> StagePool | None:
        if self._processes is None or self.process_body_bytes is None or size < self.process_body_bytes:
            return None
        return self._processes

    async def run(self, size: int, name: str, fn: Callable[..., T], *args: Any) -> T:
        """A stage on a worker thread when the body is large (it would hold the event loop)."""
        if size < self.inline_body_bytes:
            return run_stage(name, fn, *args)
        return await asyncio.get_running_loop().run_in_executor(self._workers, run_stage, name, fn, *args)

    async def parse_inspect(
        self, scanner: Scanner, parse: Parse, api: Api, body: bytes
    ) -> tuple[ParsedRequest, tuple[Finding, ...]]:
        """The parse and inspect stages. A body parsed in a worker process is known here by its
        top-level fields only (worker_pool.TopLevelFields); `mask` parses it again there."""
        processes = self._in_process(len(body))
        if processes is not None:
            inspected = await processes.parse_inspect(parse, api, body, self.inspect_cpu_budget_s)
            if inspected.findings is None:
                raise _over_budget(self.inspect_cpu_budget_s)
            return inspected.parsed, inspected.findings
        parsed = await self.run(len(body), "parse", parse, api, body)
        return parsed, await self.inspect(scanner, parsed.prompt, len(body))

    async def mask(
        self,
        masker: Masker,
        parse: Parse,
        body: bytes,
        parsed: ParsedRequest,
        findings: tuple[Finding, ...],
        decision: Decision,
        inherited: Mapping[str, str] | None,
        known: Mapping[str, str] | None,
    ) -> MaskedRequest:
        """The mask stage where the body was parsed: in a worker process (which parses it again
        with `parse`) if it was parsed there."""
        if isinstance(parsed.document, TopLevelFields) and self._processes is not None:
            return await self._processes.mask(parse, parsed.api, body, findings, decision, inherited, known)
        return await self.run(len(body), "mask", masker.apply, body, parsed, findings, decision, inherited, known)

    async def inspect(self, scanner: Scanner, prompt: Prompt, size: int) -> tuple[Finding, ...]:
        """The inspect stage within its budget: no scan holds the event loop longer than
        inspect_inline_s, and none uses more than inspect_cpu_budget_s of CPU (it stops there)."""
        if size < self.inline_body_bytes:
            found = run_stage("inspect", scan_within, scanner, prompt, self.inspect_inline_s, time.perf_counter, False)
            if found is not None:
                return found
            # A small body slow to scan (secret-dense): scanned again, off the loop.
        budget_s = self.inspect_cpu_budget_s
        found = await asyncio.get_running_loop().run_in_executor(
            self._workers, run_stage, "inspect", scan_within, scanner, prompt, budget_s, time.thread_time, True
        )
        if found is None:
            raise _over_budget(budget_s)
        return found


def _over_budget(budget_s: float) -> EgressError:
    return EgressError(
        ErrorCode.INSPECTION_BUDGET_EXCEEDED,
        f"inspecting this request needed more than {budget_s:g} s of CPU; it was not sent (send less text at once)",
        stage="inspect",
    )
