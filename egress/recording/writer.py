"""The recording writer: seals and stores recorded payloads on its own thread, in batches, and
deletes the payloads whose retention ended (at start, then every `purge_interval_s`).

Invariants: `submit` never blocks and never copies a payload (the request path hands over
the finished exchange); the recording's metadata, joining, encryption and the store write happen
here. `close()` writes everything
submitted before it returns. A batch the store refuses is retried a few times, then dropped with
an error in the log: the audit record of each request is written regardless (by the audit
writer), and a replay of a lost recording says it was not found. Failures are logged by class
only (never a traceback or a message, which may carry a connection string), and a store outage
once when it begins and once when it ends (`health`).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable

from egress.audit.batches import STOP, drain, gather
from egress.core.exchange import Exchange
from egress.core.health import Health, describe
from egress.core.records import StoredRecording
from egress.recording.keys import RecordingKeys
from egress.recording.recordings import PendingRecording, Recordings, RecordingStore, pending_recording, seal_recording
from egress.recording.settings import RecordingSettings

log = logging.getLogger("egress.recording")


class RecordingWriter:
    def __init__(
        self,
        store: RecordingStore,
        keys: RecordingKeys,
        settings: RecordingSettings,
        clock: Callable[[], float] = time.time,
        *,
        flush_interval_s: float = 0.05,  # how long a first recording waits for others to join its batch
        max_batch: int = 64,
        retry_delay_s: float = 0.5,
        attempts: int = 5,  # store writes of one batch before it is dropped
    ) -> None:
        self._recordings = Recordings(store, keys)
        self._store = store
        self._keys = keys
        self.settings = settings
        self._clock = clock
        self._flush_interval_s = flush_interval_s
        self._max_batch = max_batch
        self._retry_delay_s = retry_delay_s
        self._attempts = attempts
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="egress-recording-writer", daemon=True)
        self._stop = threading.Event()
        self._closed = False
        self.written = 0
        self.dropped = 0
        self.purged = 0
        self.health = Health("recording store", log)  # writes and purges: one outage, logged once

    @property
    def max_bytes(self) -> int:
        return self.settings.max_bytes

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def start(self) -> None:
        self._thread.start()

    def submit(self, item: Exchange | PendingRecording) -> None:
        """Queue a recording: an exchange that ended with a capture is turned into one here, on
        this thread (the request path only hands over the reference; nothing changes it after)."""
        self._queue.put(item)

    def close(self, timeout: float = 30.0) -> None:
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        self._queue.put(STOP)
        self._thread.join(timeout)

    def _run(self) -> None:
        next_purge = time.monotonic()
        stopping = False
        while not stopping:
            if time.monotonic() >= next_purge:
                self._purge()
                next_purge = time.monotonic() + self.settings.purge_interval_s
            try:
                first = self._queue.get(timeout=max(next_purge - time.monotonic(), 0.001))
            except queue.Empty:
                continue
            if first is STOP:
                break
            self._stop.wait(self._flush_interval_s)  # let a batch gather; at once on close()
            batch, stopping = gather(self._queue, first, self._max_batch)
            self._write(batch)
        rest = drain(self._queue)
        if rest:
            self._write(rest)

    def _write(self, batch: list[object]) -> None:
        expires_at = self._clock() + self.settings.retention_s
        sealed: list[StoredRecording] = []
        for item in batch:
            try:
                pending = pending_recording(item) if isinstance(item, Exchange) else item
                assert isinstance(pending, PendingRecording)
                sealed.append(seal_recording(self._keys, pending, self.settings.max_bytes, expires_at))
            except Exception as exc:  # noqa: BLE001 - one recording that cannot be built is dropped; the rest are written
                self.dropped += 1
                log.error("a recording could not be built or sealed (%s); dropped (its audit record is written)", describe(exc))
        if not sealed:
            return
        for attempt in range(1, self._attempts + 1):
            try:
                self._store.put_recordings(sealed)
            except Exception as exc:  # noqa: BLE001 - any store failure: retry, then drop (the audit stays whole)
                self.health.failed(exc)
                if attempt < self._attempts:
                    time.sleep(self._retry_delay_s)
                continue
            self.health.ok()
            self.written += len(sealed)
            return
        self.dropped += len(sealed)
        log.error("dropped %d recordings after %d failed writes", len(sealed), self._attempts)

    def _purge(self) -> None:
        try:
            removed = self._recordings.purge_expired(self._clock())
        except Exception as exc:  # noqa: BLE001 - any store failure: payloads stay until the next purge
            self.health.failed(exc)
            return
        self.health.ok()
        self.purged += removed
        if removed:
            log.info("recording retention: payloads of %d requests deleted", removed)
