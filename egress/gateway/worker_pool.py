"""Worker processes for the parse, inspect and mask stages of large bodies.

A worker thread cannot keep a large body from stalling the event loop: parsing 30 MB of JSON,
or serialising it again, is one C call that holds the GIL for tens of milliseconds, and every
other request's first byte waits behind it. Here those stages run in worker processes, each
with its own GIL; the gateway's process only hands the body over and takes a small answer back.

Invariants:
- What crosses through the pool's pipe is small: the findings (capped per request), the
  request's top-level scalar fields (`TopLevelFields`), the placeholder map but for long values.
  The body, a masked body and long original values cross in an anonymous in-memory file
  (gateway/body_file.py), copied with the GIL released. The gateway's process never parses a
  body that a worker parsed; the mask stage parses it again in the worker.
- A worker that dies fails the requests whose work it held (stage_failed, audited by the
  caller: never forwarded), and the pool is replaced, so later requests get fresh workers. Work
  that had not reached a dead pool is sent to the new one, never failed for another's crash.
- Secrets (the body, the placeholder map) move only between the gateway and its own workers,
  through a pipe and a nameless memory file; nothing here logs a value.
- Workers run at a lower CPU priority (WORKER_NICENESS): on a busy machine the scheduler runs the
  event loop first, and a large body waits rather than everyone else.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import multiprocessing
import os
import time
from collections.abc import AsyncIterator, Callable, Mapping
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from egress.core.errors import EgressError, ErrorCode
from egress.core.exchange import Api, Decision, Finding, MaskedRequest, ParsedRequest, Prompt
from egress.detect.budget import Budget, BudgetExceeded
from egress.detect.scan import Scanner
from egress.gateway.body_file import BodyFile, Handle, read_in_worker, write_back
from egress.gateway.stage import run_stage
from egress.mask.masker import Masker

log = logging.getLogger("egress.gateway")

# A wire API's request parser: a module-level function, so it crosses to a worker by name.
Parse = Callable[[Api, bytes], ParsedRequest]

# Added to a worker's nice value: the event loop's process wins the CPU when both want it.
WORKER_NICENESS = 10
# Top-level string fields longer than this stay in the worker (a Responses `instructions` or
# `input` can be megabytes); ids, flags and model names are far shorter.
TOP_LEVEL_STRING_CHARS = 1024
# Original values at least this long cross back in the shared file, not through the pipe.
LARGE_VALUE_CHARS = 64 * 1024


@dataclass(frozen=True, slots=True)
class WorkerStages:
    """What a worker process builds once, from the gateway's settings: its own scanner and masker."""

    scanner: Scanner
    masker: Masker


class TopLevelFields(dict[str, Any]):
    """A large body's document as the gateway's process holds it: the top-level scalar fields
    (model, stream, store, previous_response_id, ...), not the messages. Never a whole document:
    a stage that needs one parses the body again."""


@dataclass(frozen=True, slots=True)
class Inspected:
    parsed: ParsedRequest  # prompt empty, document a TopLevelFields
    findings: tuple[Finding, ...] | None  # None: the scan ran out of its CPU budget


@dataclass(frozen=True, slots=True)
class MaskOut:
    """A masked request as it crosses back: the large parts (the body, long original values) are
    in the shared file, in this order, and come back with os.pread, not through the pipe (whose
    reader re-allocates its buffer per read, with the GIL held)."""

    masked: MaskedRequest  # body b"", and "" for each value in `large_values`
    body_size: int | None  # None: the body is unchanged (not written back: the gateway has it)
    large_values: tuple[tuple[str, int], ...]  # (placeholder, size of its value in UTF-8)

    def whole(self, shared: BodyFile, body: bytes) -> MaskedRequest:
        """Blocking: run it off the event loop."""
        offset = self.body_size or 0
        placeholders = dict(self.masked.placeholders)
        for placeholder, size in self.large_values:
            placeholders[placeholder] = shared.read(offset, size).decode()
            offset += size
        masked_body = body if self.body_size is None else shared.read(0, self.body_size)
        return dataclasses.replace(self.masked, body=masked_body, placeholders=placeholders)


@dataclass(frozen=True, slots=True)
class Refusal:
    """An EgressError raised in a worker, as it crosses back (the exception itself does not pickle)."""

    code: ErrorCode
    message: str
    stage: str | None
    details: dict[str, Any]

    def error(self) -> EgressError:
        return EgressError(self.code, self.message, stage=self.stage, details=self.details)


class StagePool:
    """A pool of worker processes, one per core, replaced when one of them dies. Used from the
    event loop's thread only. Workers start with the first large body."""

    def __init__(self, build: Callable[[], WorkerStages], workers: int) -> None:
        self._build = build
        self._workers = workers
        self._pool = self._new()

    def _new(self) -> ProcessPoolExecutor:
        # spawn: a worker starts from a clean interpreter, never a copy of the gateway's threads,
        # sockets or key material in memory; it builds its stages from the settings.
        return ProcessPoolExecutor(
            max_workers=self._workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_start_worker,
            initargs=(self._build,),
        )

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    async def parse_inspect(self, parse: Parse, api: Api, body: bytes, budget_s: float) -> Inspected:
        async with _shared(body) as shared:
            inspected: Inspected = await self._call("inspect", shared, _parse_inspect, parse, api, budget_s)
        return inspected

    async def mask(
        self,
        parse: Parse,
        api: Api,
        body: bytes,
        findings: tuple[Finding, ...],
        decision: Decision,
        inherited: Mapping[str, str] | None,
        known: Mapping[str, str] | None,
    ) -> MaskedRequest:
        async with _shared(body) as shared:
            out: MaskOut = await self._call("mask", shared, _mask, parse, api, findings, decision, inherited, known)
            return await asyncio.to_thread(out.whole, shared, body)

    async def _call(self, stage: str, shared: BodyFile, fn: Callable[..., Any], *args: Any) -> Any:
        try:
            pool, future = self._submit(fn, shared.handle, *args)
        except Exception as exc:  # noqa: BLE001 - a pool shut down (the gateway is stopping)
            shared.release()  # no job will open it
            log.error("stage %s failed: the worker pool took no work: %s", stage, type(exc).__name__)
            raise _stage_failed(stage) from exc
        future.add_done_callback(lambda _: shared.release())
        try:
            result = await asyncio.wrap_future(future)
        except BrokenProcessPool as exc:
            log.error("stage %s failed: a worker process died; the worker pool is replaced", stage)
            self._replace(pool)
            raise _stage_failed(stage) from exc
        except Exception as exc:  # noqa: BLE001 - the fail-closed boundary of work in a worker
            log.error("stage %s failed in a worker process: %s", stage, type(exc).__name__)
            raise _stage_failed(stage) from exc
        if isinstance(result, Refusal):
            raise result.error()
        return result

    def _submit(self, fn: Callable[..., Any], *args: Any) -> tuple[ProcessPoolExecutor, Future[Any]]:
        pool = self._pool
        try:
            return pool, pool.submit(fn, *args)
        except BrokenProcessPool:
            # The pool broke before this work reached it: nothing of it ran; the new pool runs it.
            pool = self._replace(pool)
            return pool, pool.submit(fn, *args)

    def _replace(self, broken: ProcessPoolExecutor) -> ProcessPoolExecutor:
        if self._pool is broken:
            broken.shutdown(wait=False, cancel_futures=True)
            self._pool = self._new()
        return self._pool


@asynccontextmanager
async def _shared(body: bytes) -> AsyncIterator[BodyFile]:
    """The body in a file a worker can read, written off the event loop (a copy of it)."""
    shared = await asyncio.to_thread(BodyFile, body)
    try:
        yield shared
    finally:
        # Off the event loop too: freeing the file's pages takes milliseconds on a busy machine.
        asyncio.get_running_loop().run_in_executor(None, shared.close)


def _stage_failed(stage: str) -> EgressError:
    return EgressError(ErrorCode.STAGE_FAILED, f"the {stage} stage failed; the request was not sent", stage=stage)


def scan_within(
    scanner: Scanner, prompt: Prompt, budget_s: float, clock: Callable[[], float], yield_gil: bool
) -> tuple[Finding, ...] | None:
    """The prompt's findings, or None if the scan ran out of its budget (and stopped). The budget
    starts here, on the thread that scans: a thread_time budget counts that thread's CPU."""
    budget = Budget(budget_s, clock, yield_gil=yield_gil)
    try:
        return scanner.scan(prompt, budget)
    except BudgetExceeded:
        return None


# --- in the worker process ---------------------------------------------------------------------

# The stages of this worker process, set once by its initializer. Only ever set in a worker
# process: the gateway's own process never reads it.
_stages: list[WorkerStages] = []


def _start_worker(build: Callable[[], WorkerStages]) -> None:
    os.nice(WORKER_NICENESS)
    _stages.append(build())


def _refusal(err: EgressError) -> Refusal:
    return Refusal(err.code, err.message, err.stage, err.details)


def _parse_inspect(shared: Handle, parse: Parse, api: Api, budget_s: float) -> Inspected | Refusal:
    (stages,) = _stages
    body = read_in_worker(shared)
    try:
        parsed = run_stage("parse", parse, api, body)
        findings = run_stage("inspect", scan_within, stages.scanner, parsed.prompt, budget_s, time.thread_time, False)
    except EgressError as err:
        return _refusal(err)
    fields = TopLevelFields(
        (key, value)
        for key, value in parsed.document.items()
        if value is None
        or isinstance(value, bool | int | float)
        or (isinstance(value, str) and len(value) <= TOP_LEVEL_STRING_CHARS)
    )
    return Inspected(ParsedRequest(api, parsed.model, parsed.stream, fields, Prompt(())), findings)


def _mask(
    shared: Handle,
    parse: Parse,
    api: Api,
    findings: tuple[Finding, ...],
    decision: Decision,
    inherited: Mapping[str, str] | None,
    known: Mapping[str, str] | None,
) -> MaskOut | Refusal:
    (stages,) = _stages
    body = read_in_worker(shared)
    try:
        parsed = run_stage("mask", parse, api, body)
        masked = run_stage("mask", stages.masker.apply, body, parsed, findings, decision, inherited, known)
    except EgressError as err:
        return _refusal(err)
    parts = [] if masked.body is body else [masked.body]
    large: list[tuple[str, int]] = []
    placeholders = dict(masked.placeholders)
    for placeholder, value in masked.placeholders.items():
        if len(value) >= LARGE_VALUE_CHARS:  # a secret-dense text masked whole
            encoded = value.encode()
            parts.append(encoded)
            large.append((placeholder, len(encoded)))
            placeholders[placeholder] = ""
    if parts:
        write_back(shared, parts)
    body_size = None if masked.body is body else len(masked.body)
    return MaskOut(dataclasses.replace(masked, body=b"", placeholders=placeholders), body_size, tuple(large))
