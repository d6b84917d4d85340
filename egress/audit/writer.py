"""Group commit for audit records: the request path only enqueues; one thread writes batches.

Invariants: `submit` never blocks on disk; a batch is committed within `flush_interval_s` of its
first record; `close()` writes everything submitted before it returns (clean shutdown loses
nothing). If the store fails, the batch is retried with a bounded backoff, the outage is logged
once, and `health` says so (readiness turns the gateway away while the audit cannot be written).

Write-ahead (`submit_ahead`): a request about to send bytes upstream queues its egress record and
awaits the future this thread resolves once the batch holding the record has COMMITTED. Such a
record wakes the thread at once (no flush interval), and every request that queued meanwhile
shares the same commit (group commit). If the batch cannot be written, the waiting requests are
told at once (they are refused, nothing is sent) and their egress records are dropped from the
batch: they record nothing that happened; each request's outcome record says it was refused. A
future that is already cancelled (its request gave up waiting) is dropped likewise. The only
egress record that may describe bytes that never left is one committed just before its request
gave up or the process died: an intent, never a missing egress.

With a `Signer`, the same thread signs a checkpoint of the chain's head after every
`checkpoint_every` records it wrote, `checkpoint_interval_s` after the first record not yet
covered, and at close: never on the request path. So every record is covered by a signed
checkpoint at most `checkpoint_interval_s` (plus one batch) after it was written, while the
gateway runs. A failed checkpoint is retried at the next occasion and never holds records back.

A checkpoint (v2) also signs its span: `first`, one past the highest checkpoint already in the
store (whoever signed it), and the Merkle root over the records first..head, read back from the
store: several gateway processes may append to one chain, so this writer's own records are not
the span.

Each stored checkpoint is then appended to every anchor (`egress.audit.anchor`), copies outside
the database that `audit verify` compares it against. A failed append is retried, for the newest
checkpoint only, at the next occasion (the newest anchored checkpoint vouches for every record
before it); until it succeeds this writer's records count as not covered (`uncovered`).
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

from egress.audit.anchor import CheckpointAnchor
from egress.audit.batches import STOP, drain, gather
from egress.audit.chain import link
from egress.audit.checkpoint import Signer
from egress.audit.record import AuditDraft, finalize
from egress.audit.settings import AuditSettings
from egress.audit.spans import span_root
from egress.core.health import Backoff, Check, Health, describe
from egress.core.records import AuditEntry, Checkpoint

log = logging.getLogger("egress.audit")


class AuditSink(Protocol):
    """Where batches go (a `Store`); it extends the chain with `link` inside its transaction."""

    def append_audit(self, entries: Sequence[AuditEntry], link: Callable[[str, bytes], str]) -> None: ...

    def audit_head(self) -> tuple[int, str] | None: ...

    def append_checkpoint(self, checkpoint: Checkpoint) -> None: ...

    def last_checkpoint_seq(self) -> int: ...

    def iter_audit_hashes(self, first: int, last: int, batch: int = 10000) -> Iterator[tuple[int, str]]: ...


class AuditUnavailable(Exception):
    """A write-ahead record could not be committed; the message names the error class only."""


@dataclass(slots=True)
class _Ahead:
    """A write-ahead record and the future of the request waiting for its commit."""

    draft: AuditEntry | AuditDraft
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[None]


def _settle(futures: list[asyncio.Future[None]], error: str | None) -> None:
    """On the requests' event loop: resolve the write-ahead futures of one batch (unless their
    request gave up). One call per loop per batch: one wake-up of the loop, not one per record."""
    for future in futures:
        if future.done():
            continue
        if error is None:
            future.set_result(None)
        else:
            future.set_exception(AuditUnavailable(error))


class AuditWriter:
    def __init__(
        self,
        store: AuditSink,
        settings: AuditSettings,
        signer: Signer | None = None,
        anchors: Sequence[CheckpointAnchor] = (),
        *,
        retry_delay_s: float = 0.05,  # the first retry of a failed batch; doubles up to retry_max_s
        retry_max_s: float = 2.0,
    ) -> None:
        self._store = store
        self._settings = settings
        self._retry_delay_s = retry_delay_s
        self._retry_max_s = retry_max_s
        self._signer = signer
        # Records this writer wrote that no stored and anchored checkpoint covers yet, and since when.
        self._uncovered = 0
        self._uncovered_since = 0.0
        self._retry_at = 0.0  # after a failed checkpoint, not before this (monotonic)
        self._last_checkpoint_seq = 0
        self._anchors = tuple(anchors)
        self._unanchored: list[Checkpoint | None] = [None] * len(self._anchors)  # per anchor
        self.checkpoints = 0
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="egress-audit-writer", daemon=True)
        self._closed = False
        self._stop = threading.Event()
        # Set by a write-ahead record (and close): ends the flush-interval wait at once.
        self._urgent = threading.Event()
        self._count_lock = threading.Lock()
        self._submitted = 0
        self.written = 0
        self.dropped = 0  # write-ahead records of refused requests, never written (see above)
        self.failures = 0
        self.health = Health("audit writer", log)

    def start(self) -> None:
        self._thread.start()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    @property
    def backlog(self) -> int:
        """Records submitted and not yet committed (or dropped)."""
        return self._submitted - self.written - self.dropped

    @property
    def uncovered(self) -> int:
        """Records this writer committed that no signed checkpoint, stored and anchored, covers
        yet: the tail that only the hash chain protects (0 without a signer)."""
        return self._uncovered

    @property
    def uncovered_age_s(self) -> float:
        """Seconds since the oldest record counted in `uncovered` was committed (0.0 when none)."""
        return time.monotonic() - self._uncovered_since if self._uncovered else 0.0

    def healthy(self, max_backlog: int) -> bool:
        """The readiness gate's per-request question (`check` says the same with a reason)."""
        return self._thread.is_alive() and self.health.failing_since is None and self.backlog <= max_backlog

    def check(self, max_backlog: int) -> Check:
        """Readiness: the thread runs, the last write succeeded, the backlog is within its bound."""
        health = self.health
        if not self.alive:
            ok, detail = False, "the audit writer thread is not running"
        elif health.failing:
            ok, detail = False, f"audit writes are failing ({health.last_error}); requests are refused"
        elif self.backlog > max_backlog:
            ok, detail = False, f"audit backlog {self.backlog} exceeds {max_backlog}"
        else:
            ok, detail = True, f"writing; backlog {self.backlog}"
        return Check("audit", ok, detail, health.last_error, health.age())

    def _count(self, n: int) -> None:
        with self._count_lock:
            self._submitted += n

    def submit(self, entry: AuditEntry | AuditDraft) -> None:
        """Queue a record; a draft is finished (body digest, canonical JSON) on the writer thread."""
        self._count(1)
        self._queue.put(entry)

    def submit_ahead(self, entry: AuditEntry | AuditDraft) -> asyncio.Future[None]:
        """Queue a write-ahead record; the future resolves once it is committed, or fails with
        `AuditUnavailable`. Call on the event loop; await it (bounded) before sending anything."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        self._count(1)
        self._queue.put(_Ahead(entry, loop, future))
        # Set takes the event's lock: skip it while it is set. Safe: the writer clears it before
        # it takes the batch, so a record put before we saw it set is in that batch.
        if not self._urgent.is_set():
            self._urgent.set()
        return future

    def close(self, timeout: float = 30.0) -> None:
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        self._urgent.set()
        self._queue.put(STOP)
        self._thread.join(timeout)
        if self.backlog:
            log.error("audit writer stopped with %d records not written", self.backlog)

    def _run(self) -> None:
        # One wake-up per batch, not per record: block for the first record, then let the batch
        # fill for one flush interval and drain it. Waking for every record would make this
        # thread fight the event loop for the GIL on every request.
        interval = self._settings.flush_interval_s
        stopping = False
        while not stopping:
            try:
                first = self._queue.get(timeout=self._idle_wait())
            except queue.Empty:
                self._checkpoint()  # idle with records uncovered for checkpoint_interval_s
                continue
            if first is STOP:
                break
            if not isinstance(first, _Ahead):
                self._urgent.wait(interval)  # returns at once for a write-ahead record or close()
            self._urgent.clear()
            batch, stopping = gather(self._queue, first, self._settings.max_batch)
            self._write(batch, final=stopping)
            if self._checkpoint_due():
                self._checkpoint()
        # Drain anything submitted concurrently with the stop.
        rest = drain(self._queue)
        if rest:
            self._write(rest, final=True)
        if self._uncovered:
            self._checkpoint()
        for anchor in self._anchors:
            _close_anchor(anchor)

    def _write(self, batch: list[object], final: bool) -> None:
        # A request that gave up waiting was refused: its egress record describes nothing.
        kept = [item for item in batch if not (isinstance(item, _Ahead) and item.future.done())]
        self.dropped += len(batch) - len(kept)
        batch = kept
        waiting = [item for item in batch if isinstance(item, _Ahead)]
        entries = [finalize(item.draft if isinstance(item, _Ahead) else item) for item in batch]  # type: ignore[arg-type]
        backoff = Backoff(self._retry_delay_s, self._retry_max_s)
        attempts = 0
        while entries:
            try:
                self._store.append_audit(entries, link)
            except Exception as exc:  # noqa: BLE001 - any store failure: keep the records, retry
                self.failures += 1
                attempts += 1
                self.health.failed(exc)
                if waiting:
                    # Tell the waiting requests now (they are refused, nothing is sent) and drop
                    # their egress records: only the refusals' own records remain to be written.
                    self._notify(waiting, f"the audit record could not be written ({describe(exc)})")
                    keep = [k for k, item in enumerate(batch) if not isinstance(item, _Ahead)]
                    self.dropped += len(batch) - len(keep)
                    batch, entries = [batch[k] for k in keep], [entries[k] for k in keep]
                    waiting = []
                    continue
                if (final or self._stop.is_set()) and attempts >= 5:
                    log.error("giving up on %d audit records at shutdown", len(entries))
                    self.dropped += len(entries)
                    return
                time.sleep(backoff.next())
                continue
            self.written += len(entries)
            self.health.ok()
            if self._signer is not None:
                if not self._uncovered:
                    self._uncovered_since = time.monotonic()
                self._uncovered += len(entries)
            self._notify(waiting, None)
            return

    @staticmethod
    def _notify(waiting: list[_Ahead], error: str | None) -> None:
        """Wake each event loop once per batch with all of its futures."""
        by_loop: dict[asyncio.AbstractEventLoop, list[asyncio.Future[None]]] = {}
        for ahead in waiting:
            by_loop.setdefault(ahead.loop, []).append(ahead.future)
        for loop, futures in by_loop.items():
            try:
                loop.call_soon_threadsafe(_settle, futures, error)
            except RuntimeError:  # the requests' loop is closed: nobody waits any more
                continue

    # --- checkpoints --------------------------------------------------------------------------

    def _idle_wait(self) -> float | None:
        """How long to wait for the next record before an idle checkpoint is due (None: forever)."""
        if self._signer is None or not self._uncovered:
            return None
        return max(self._due_at() - time.monotonic(), 0.001)

    def _due_at(self) -> float:
        return max(self._uncovered_since + self._settings.checkpoint_interval_s, self._retry_at)

    def _checkpoint_due(self) -> bool:
        if self._signer is None or not self._uncovered:
            return False
        now = time.monotonic()
        if self._uncovered >= self._settings.checkpoint_every:
            return now >= self._retry_at
        return now >= self._due_at()

    def _checkpoint(self) -> None:
        """Sign the chain's current head (which may include other processes' records) and the
        Merkle root of the span since the last stored checkpoint, then anchor it."""
        if self._signer is None:
            return
        try:
            head = self._store.audit_head()
            if head is not None and head[0] != self._last_checkpoint_seq:
                checkpoint = sign_checkpoint(self._store, self._signer, head)
                if checkpoint is not None:
                    self.checkpoints += 1
                    self._unanchored = [checkpoint] * len(self._anchors)
                self._last_checkpoint_seq = head[0]
            self._anchor()
        except Exception:  # noqa: BLE001 - any store or anchor failure: records are safe; retry later
            log.exception("audit checkpoint failed; retrying in %.1f s", self._settings.checkpoint_interval_s)
            self._retry_at = time.monotonic() + self._settings.checkpoint_interval_s
            return
        self._uncovered = 0

    def _anchor(self) -> None:
        """Append the newest checkpoint to each anchor that lacks it; after trying them all, raise
        the last failure (the writer retries at its next occasion)."""
        failed: Exception | None = None
        for i, anchor in enumerate(self._anchors):
            checkpoint = self._unanchored[i]
            if checkpoint is None:
                continue
            try:
                anchor.append(checkpoint)
                self._unanchored[i] = None
            except Exception as exc:  # noqa: BLE001 - one anchor's failure must not stop the others
                failed = exc
                log.error("appending the checkpoint at record %d to %s failed: %s", checkpoint.seq, anchor.name, exc)
        if failed is not None:
            raise failed


def _close_anchor(anchor: CheckpointAnchor) -> None:
    try:
        anchor.close()
    except Exception:  # noqa: BLE001 - shutdown goes on
        log.exception("closing the checkpoint anchor %s failed", anchor.name)


def sign_checkpoint(store: AuditSink, signer: Signer, head: tuple[int, str]) -> Checkpoint | None:
    """Sign and store a v2 checkpoint of `head` whose span starts after the highest stored
    checkpoint; None when there is nothing to sign (that head is signed already) or the chain
    ends before a stored checkpoint (records were cut off: never sign over that)."""
    first = store.last_checkpoint_seq() + 1
    if first > head[0] + 1:
        log.error("audit chain ends at record %d but a checkpoint signs %d: not signing", head[0], first - 1)
        return None
    if first == head[0] + 1:
        return None  # another gateway process signed this head already
    root = span_root(store.iter_audit_hashes(first, head[0]), first, head)
    checkpoint = signer.sign(head[0], head[1], time.time(), first, root)
    store.append_checkpoint(checkpoint)
    return checkpoint
