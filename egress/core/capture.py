"""The raw answer of one recorded request, kept as it arrives from upstream.

Only requests whose policy decision carries the `record_payload` obligation get a capture. The
request path only appends references to chunks it already holds (no copy, no join, no hash):
joining, hashing and encryption happen later, off the event loop. Nothing here does I/O.
"""

from __future__ import annotations


class Capture:
    """Bytes received from upstream, before restoration (still masked), at most `limit` of them.

    Invariant: `chunks` joined is exactly the first `kept` bytes the upstream sent; when more
    arrived than `limit` allows, `received` counts them all and `truncated` says so. Not a frozen
    dataclass: `add` runs once per upstream read, so it does the least it can (two updates)."""

    __slots__ = ("limit", "stream", "chunks", "received", "_room")

    def __init__(self, limit: int, stream: bool = False) -> None:
        self.limit = limit
        self.stream = stream  # the answer was an event stream (its raw SSE bytes, concatenated)
        self.chunks: list[bytes] = []
        self.received = 0  # bytes the upstream sent, kept or not
        self._room = limit

    def add(self, chunk: bytes) -> None:
        n = len(chunk)
        self.received += n
        if n <= self._room:
            self._room -= n
            self.chunks.append(chunk)
        elif self._room > 0:
            self.chunks.append(chunk[: self._room])
            self._room = 0

    @property
    def kept(self) -> int:
        """Bytes held in `chunks`."""
        return self.limit - self._room

    @property
    def truncated(self) -> bool:
        return self.received > self.kept
