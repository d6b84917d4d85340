"""Group commit for audit records: the request path only enqueues; one thread writes batches.

Invariants: `submit` never blocks on disk; a batch is committed within `flush_interval_s` of its
first record; `close()` writes everything submitted before it returns (clean shutdown loses
nothing). If the store fails, the batch is retried, and records stay queued in memory.

With a `Signer`, the same thread signs a checkpoint of the chain's head after every
`checkpoint_every` records it wrote, `checkpoint_interval_s` after the first record not yet
covered, and at close: never on the request path. So every record is covered by a signed
checkpoint at most `checkpoint_interval_s` (plus one batch) after it was written, while the
gateway runs. A failed checkpoint is retried at the next occasion and never holds records back.

A checkpoint (v2) also signs its span: `first`, one past the highest checkpoint already in the
store (whoever signed it), and the Merkle root over the records first..head, read back from the
store: several gateway processes may append to one chain, so this writer's own records are not
the span.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

from egress.audit.batches import STOP, drain, gather
from egress.audit.chain import link
from egress.audit.checkpoint import Signer
from egress.audit.record import AuditDraft, finalize
from egress.audit.spans import span_root
from egress.core.records import AuditEntry, Checkpoint

log = logging.getLogger("egress.audit")


class AuditSink(Protocol):
    """Where batches go (a `Store`); it extends the chain with `link` inside its transaction."""

    def append_audit(self, entries: Sequence[AuditEntry], link: Callable[[str, bytes], str]) -> None: ...

    def audit_head(self) -> tuple[int, str] | None: ...

    def append_checkpoint(self, checkpoint: Checkpoint) -> None: ...

    def last_checkpoint_seq(self) -> int: ...

    def iter_audit_hashes(self, first: int, last: int, batch: int = 10000) -> Iterator[tuple[int, str]]: ...


@dataclass(frozen=True, slots=True)
class WriterSettings:
    flush_interval_s: float = 0.02
    max_batch: int = 512
    retry_delay_s: float = 0.5
    checkpoint_every: int = 1000
    checkpoint_interval_s: float = 60.0


class AuditWriter:
    def __init__(self, store: AuditSink, settings: WriterSettings, signer: Signer | None = None) -> None:
        self._store = store
        self._settings = settings
        self._signer = signer
        # Records this writer wrote that no checkpoint covers yet, and since when.
        self._uncovered = 0
        self._uncovered_since = 0.0
        self._last_checkpoint_seq = 0
        self.checkpoints = 0
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="egress-audit-writer", daemon=True)
        self._closed = False
        self._stop = threading.Event()
        self.written = 0
        self.failures = 0

    def start(self) -> None:
        self._thread.start()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def submit(self, entry: AuditEntry | AuditDraft) -> None:
        """Queue a record; a draft is finished (body digest, canonical JSON) on the writer thread."""
        self._queue.put(entry)

    def close(self, timeout: float = 30.0) -> None:
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        self._queue.put(STOP)
        self._thread.join(timeout)

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
            self._stop.wait(interval)  # returns at once when close() is called
            batch, stopping = gather(self._queue, first, self._settings.max_batch)
            self._write([finalize(item) for item in batch], final=stopping)
            if self._checkpoint_due():
                self._checkpoint()
        # Drain anything submitted concurrently with the stop.
        rest = [finalize(item) for item in drain(self._queue)]
        if rest:
            self._write(rest, final=True)
        if self._uncovered:
            self._checkpoint()

    def _write(self, batch: list[AuditEntry], final: bool) -> None:
        attempts = 0
        while True:
            try:
                self._store.append_audit(batch, link)
                self.written += len(batch)
                if self._signer is not None:
                    if not self._uncovered:
                        self._uncovered_since = time.monotonic()
                    self._uncovered += len(batch)
                return
            except Exception:  # noqa: BLE001 - any store failure: keep the records, retry
                self.failures += 1
                attempts += 1
                log.exception("audit write failed (%d records pending, attempt %d)", len(batch), attempts)
                if final and attempts >= 5:
                    log.error("giving up on %d audit records at shutdown", len(batch))
                    return
                time.sleep(self._settings.retry_delay_s)

    # --- checkpoints --------------------------------------------------------------------------

    def _idle_wait(self) -> float | None:
        """How long to wait for the next record before an idle checkpoint is due (None: forever)."""
        if self._signer is None or not self._uncovered:
            return None
        due = self._uncovered_since + self._settings.checkpoint_interval_s
        return max(due - time.monotonic(), 0.001)

    def _checkpoint_due(self) -> bool:
        if self._signer is None or not self._uncovered:
            return False
        if self._uncovered >= self._settings.checkpoint_every:
            return True
        return time.monotonic() - self._uncovered_since >= self._settings.checkpoint_interval_s

    def _checkpoint(self) -> None:
        """Sign the chain's current head (which may include other processes' records) and the
        Merkle root of the span since the last stored checkpoint."""
        if self._signer is None:
            return
        try:
            head = self._store.audit_head()
            if head is not None and head[0] != self._last_checkpoint_seq:
                if sign_checkpoint(self._store, self._signer, head) is not None:
                    self.checkpoints += 1
                self._last_checkpoint_seq = head[0]
        except Exception:  # noqa: BLE001 - any store failure: records are safe; sign at the next occasion
            log.exception("audit checkpoint failed; retrying after the next batch")
            self._uncovered_since = time.monotonic()
            return
        self._uncovered = 0


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
