"""Batches for the writer threads (audit records, recordings): the request path puts items on a
queue; a writer blocks for the first one, lets a batch gather, then takes what is queued.

`STOP` on the queue ends a writer: items queued before it are in a batch or in `drain`."""

from __future__ import annotations

import queue

STOP = object()


def gather(q: queue.SimpleQueue[object], first: object, max_batch: int) -> tuple[list[object], bool]:
    """`first` and what else is queued, up to `max_batch` items; True when `STOP` was met."""
    batch = [first]
    while len(batch) < max_batch:
        try:
            item = q.get_nowait()
        except queue.Empty:
            break
        if item is STOP:
            return batch, True
        batch.append(item)
    return batch, False


def drain(q: queue.SimpleQueue[object]) -> list[object]:
    """Everything still queued (submitted concurrently with the stop), `STOP` left out."""
    rest: list[object] = []
    while True:
        try:
            item = q.get_nowait()
        except queue.Empty:
            return rest
        if item is not STOP:
            rest.append(item)
