"""A near-zero-cost Anthropic Messages upstream for the benchmarks, on loopback only.

A raw `asyncio.Protocol` HTTP/1.1 keep-alive server on uvloop, with httptools (the C parser
uvicorn uses) for request framing. It never parses the JSON body: a request whose body contains
`"stream":true` (or `"stream": true`) gets a canned SSE stream, any other gets a canned message.

    POST /v1/messages   (non-stream)  -> 200 application/json, a small message with usage
    POST /v1/messages   (stream)      -> 200 text/event-stream, chunked, 20 events:
                                         message_start, content_block_start, 15 text_delta,
                                         content_block_stop, message_delta, message_stop
    GET  /healthz                     -> 200
    anything else                     -> 404

Each SSE event is its own `transport.write` (one HTTP chunk each; the last one carries the
terminating zero-length chunk). With `--gap yield` (the default) the server returns to the
event loop between two events, so they leave as separate sends spread over time, the way a
provider streams them; with `--gap none` all 20 writes happen back to back.

    python bench/upstream.py --port 9100 [--gap yield|none]

It prints "ready <port>" on stdout once listening and exits on SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
from collections import deque

import httptools

try:
    import uvloop
except ImportError:  # pragma: no cover - the egress venv always has it
    uvloop = None

_MESSAGE = json.dumps(
    {
        "id": "msg_bench000000000000000001",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-5-20250929",
        "content": [{"type": "text", "text": "Done: the retry helper now honours Retry-After and caps the backoff."}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {
            "input_tokens": 8123,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 7900,
            "output_tokens": 21,
        },
    },
    separators=(",", ":"),
).encode()

_COMMON = b"request-id: req_bench0001\r\nanthropic-organization-id: 00000000-0000-0000-0000-000000000000\r\n"

NONSTREAM_RESPONSE = (
    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
    + _COMMON
    + b"content-length: "
    + str(len(_MESSAGE)).encode()
    + b"\r\n\r\n"
    + _MESSAGE
)
STREAM_HEAD = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream; charset=utf-8\r\ncache-control: no-cache\r\n"
    + _COMMON
    + b"transfer-encoding: chunked\r\n\r\n"
)
NOT_FOUND = b"HTTP/1.1 404 Not Found\r\ncontent-type: text/plain\r\ncontent-length: 9\r\n\r\nnot found"
HEALTHY = b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 2\r\n\r\nok"
BAD_REQUEST = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"

_WORDS = [
    "Done:",
    " the",
    " retry",
    " helper",
    " now",
    " honours",
    " Retry-After",
    " on",
    " 429",
    " and",
    " 503",
    " and",
    " caps",
    " the",
    " backoff.",
]


def _event(name: str, data: dict) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + json.dumps(data, separators=(",", ":")).encode() + b"\n\n"


def _sse_events() -> list[bytes]:
    events = [
        _event(
            "message_start",
            {
                "type": "message_start",
                "message": {
                    "id": "msg_bench000000000000000002",
                    "type": "message",
                    "role": "assistant",
                    "model": "claude-sonnet-4-5-20250929",
                    "content": [],
                    "stop_reason": None,
                    "stop_sequence": None,
                    "usage": {
                        "input_tokens": 8123,
                        "cache_creation_input_tokens": 0,
                        "cache_read_input_tokens": 7900,
                        "output_tokens": 1,
                    },
                },
            },
        ),
        _event(
            "content_block_start",
            {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        ),
    ]
    events += [
        _event(
            "content_block_delta",
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": word}},
        )
        for word in _WORDS
    ]
    events += [
        _event("content_block_stop", {"type": "content_block_stop", "index": 0}),
        _event(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": 21},
            },
        ),
        _event("message_stop", {"type": "message_stop"}),
    ]
    assert len(events) == 20
    return events


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


SSE_EVENTS = _sse_events()
# One HTTP chunk per event; the final event and the end-of-body chunk leave in the same write.
STREAM_WRITES = [_chunk(e) for e in SSE_EVENTS[:-1]] + [_chunk(SSE_EVENTS[-1]) + b"0\r\n\r\n"]


class UpstreamProtocol(asyncio.Protocol):
    """One keep-alive connection. Requests are answered in order (pipelining-safe)."""

    gap_yield = True

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)
        self.url = b""
        self.body: list[bytes] = []
        self.queue: deque[bytes] = deque()  # answers waiting behind a stream
        self.streaming = False
        self.closed = False

    # --- asyncio.Protocol ---
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            assert self.transport is not None
            self.transport.write(BAD_REQUEST)
            self.transport.close()

    # --- httptools callbacks ---
    def on_message_begin(self) -> None:
        self.url = b""
        self.body = []

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        method = self.parser.get_method()
        path = self.url.split(b"?", 1)[0]
        if method == b"POST" and path == b"/v1/messages":
            body = self.body[0] if len(self.body) == 1 else b"".join(self.body)
            stream = b'"stream":true' in body or b'"stream": true' in body
            self._answer(b"stream" if stream else NONSTREAM_RESPONSE)
        elif path == b"/healthz":
            self._answer(HEALTHY)
        else:
            self._answer(NOT_FOUND)
        self.body = []

    # --- answers ---
    def _answer(self, what: bytes) -> None:
        if self.streaming:
            self.queue.append(what)
            return
        self._send(what)

    def _send(self, what: bytes) -> None:
        assert self.transport is not None
        if what != b"stream":
            self.transport.write(what)
            return
        if not self.gap_yield:
            self.transport.write(STREAM_HEAD)
            for piece in STREAM_WRITES:
                self.transport.write(piece)
            return
        self.streaming = True
        self.transport.write(STREAM_HEAD)
        asyncio.get_running_loop().call_soon(self._stream_step, 0)

    def _stream_step(self, i: int) -> None:
        """Write event i, then come back on a later loop turn for event i+1 (bounded: 20 steps)."""
        if self.closed or self.transport is None:
            self.streaming = False
            return
        self.transport.write(STREAM_WRITES[i])
        if i + 1 < len(STREAM_WRITES):
            asyncio.get_running_loop().call_soon(self._stream_step, i + 1)
            return
        self.streaming = False
        while self.queue and not self.streaming:
            self._send(self.queue.popleft())


async def serve(host: str, port: int, gap_yield: bool) -> None:
    UpstreamProtocol.gap_yield = gap_yield
    loop = asyncio.get_running_loop()
    server = await loop.create_server(UpstreamProtocol, host, port, reuse_address=True, backlog=1024)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"ready {port} pid {os.getpid()} loop {type(loop).__module__}", flush=True)
    await stop.wait()
    server.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=9100)
    ap.add_argument(
        "--gap",
        choices=["yield", "none"],
        default="yield",
        help="between two SSE events: return to the event loop (yield) or not (none)",
    )
    args = ap.parse_args()
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        sys.exit("the bench upstream listens on loopback only")
    coro = serve(args.host, args.port, args.gap == "yield")
    if uvloop is not None:
        uvloop.run(coro)
    else:
        asyncio.run(coro)


if __name__ == "__main__":
    main()
