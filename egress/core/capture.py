"""The raw answer of one recorded request, kept as it arrives from upstream.

Only requests whose policy decision carries the `record_payload` obligation get a capture. The
request path only appends references to chunks it already holds (no copy, no join, no hash):
joining, hashing and encryption happen later, off the event loop. Nothing here does I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class Capture:
    """Bytes received from upstream, before restoration (still masked), at most `limit` of them.

    Invariant: `chunks` joined is exactly the first `len(...)` bytes the upstream sent; when more
    arrived than `limit` allows, `received` counts them all and `truncated` says so."""

    limit: int
    stream: bool = False  # the answer was an event stream (its raw SSE bytes, concatenated)
    chunks: list[bytes] = field(default_factory=list)
    kept: int = 0  # bytes held in `chunks`
    received: int = 0  # bytes the upstream sent, kept or not

    def add(self, chunk: bytes) -> None:
        self.received += len(chunk)
        room = self.limit - self.kept
        if room <= 0:
            return
        if len(chunk) > room:
            chunk = chunk[:room]
        self.chunks.append(chunk)
        self.kept += len(chunk)

    @property
    def truncated(self) -> bool:
        return self.received > self.kept
