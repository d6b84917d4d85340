"""Reads the client's request body: JSON only, within the size and time limits.

Invariant: a body is refused as soon as its declared or received length passes `max_bytes`
(never held whole beyond it), or when it has not arrived within `timeout_s`; a client that
disconnects before its body is complete ends the request (`ClientGone`) and nothing is sent.
"""

from __future__ import annotations

import asyncio
from typing import Any

from egress.core.errors import EgressError, ErrorCode
from egress.core.exchange import Exchange

# A body of at least this many bytes is joined from its chunks off the event loop.
JOIN_OFF_LOOP_BYTES = 1024 * 1024


class ClientGone(Exception):
    """The client disconnected before its request body was complete."""


async def read_body(x: Exchange, receive: Any, max_bytes: int, timeout_s: float) -> bytes:
    content_type = x.header(b"content-type")
    if content_type is None or not is_json(content_type):
        raise EgressError(
            ErrorCode.UNSUPPORTED_MEDIA_TYPE,
            "content-type must be application/json"
            + (f", not {content_type.decode('latin-1')[:64]!r}" if content_type else ""),
        )
    declared = x.header(b"content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise EgressError(ErrorCode.PAYLOAD_TOO_LARGE, f"request body exceeds the limit of {max_bytes} bytes")
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(timeout_s):
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    raise ClientGone
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > max_bytes:
                    raise EgressError(
                        ErrorCode.PAYLOAD_TOO_LARGE, f"request body exceeds the limit of {max_bytes} bytes"
                    )
                chunks.append(chunk)
                if not message.get("more_body", False):
                    break
    except TimeoutError:
        raise EgressError(
            ErrorCode.REQUEST_TIMEOUT, f"the request body did not arrive within {timeout_s:g} s"
        ) from None
    if len(chunks) == 1 or size < JOIN_OFF_LOOP_BYTES:
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)
    # Copying tens of MB (and faulting its pages in) holds the thread that does it for 10-100 ms
    # on a busy machine; bytes.join releases the GIL for a result this large, so a thread does it.
    return await asyncio.to_thread(b"".join, chunks)


def is_json(content_type: bytes) -> bool:
    mime = content_type.split(b";", 1)[0].strip().lower()
    return mime == b"application/json" or (mime.startswith(b"application/") and mime.endswith(b"+json"))
