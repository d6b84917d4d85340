"""What a sink is to the deliverer: it encodes a batch once, sends it, and returns only when the
receiver acknowledged the whole batch; anything less raises `SinkError` and the batch is sent
again (at least once)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from egress.core.records import StoredAudit


class SinkError(Exception):
    """The batch was not acknowledged (unreachable, refused, a TLS failure, a partial failure)."""


class Sink(Protocol):
    name: str

    def encode(self, batch: Sequence[StoredAudit]) -> bytes: ...

    async def send(self, payload: bytes, count: int) -> None: ...

    async def close(self) -> None: ...
