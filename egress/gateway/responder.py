"""Writes one HTTP response to the ASGI server and knows whether the first byte has gone out.

Before the first byte an error is a status and a native error body; after it, the API's
in-stream error event, then a clean end of the body.
"""

from __future__ import annotations

import time
from typing import Any

from egress.core.errors import EgressError
from egress.core.exchange import Usage
from egress.wire.apis import ApiSpec


class Responder:
    __slots__ = ("_send", "request_id", "started", "finished", "status", "bytes_out", "first_byte_ns")

    def __init__(self, send: Any, request_id: str) -> None:
        self._send = send
        self.request_id = request_id
        self.started = False
        self.finished = False
        self.status: int | None = None
        self.bytes_out = 0
        self.first_byte_ns = 0  # perf_counter_ns when the response started (0: not yet)

    async def start(self, status: int, headers: list[tuple[bytes, bytes]]) -> None:
        self.started = True
        self.status = status
        self.first_byte_ns = time.perf_counter_ns()
        await self._send({"type": "http.response.start", "status": status, "headers": headers})

    async def send(self, body: bytes, more: bool = True) -> None:
        if self.finished:
            return
        self.bytes_out += len(body)
        if not more:
            self.finished = True
        await self._send({"type": "http.response.body", "body": body, "more_body": more})

    async def fail(self, err: EgressError, codec: ApiSpec) -> None:
        if self.finished:
            return
        if not self.started:
            status, headers, body = codec.render_error(err, self.request_id)
            if err.retry_after_s is not None:  # every API's clients read the standard header
                headers.append((b"retry-after", str(err.retry_after_s).encode()))
            headers.append((b"content-length", str(len(body)).encode()))
            await self.start(status, headers)
            await self.send(body, more=False)
            return
        await self.send(codec.stream_observer(Usage()).error_event(err))
        await self.send(b"", more=False)
