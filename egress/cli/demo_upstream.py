"""A stand-in for the Anthropic Messages API on loopback, for `egress demo`.

It speaks the real wire format (POST /v1/messages, JSON or a server-sent-event stream, and
GET /v1/models) and answers every message by echoing the last user text it received, so the
demo can show what a provider sees: placeholders, never the masked values. It keeps the request
bodies it received for the demo to print. It holds no secrets and reaches nothing outside.
"""

from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Upstream:
    """Requests received, in order (appended by the server's threads)."""

    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def last_user_text(body: dict[str, Any]) -> str:
    """The text of the last user message (string content, or its text blocks joined)."""
    for message in reversed(body.get("messages") or []):
        if message.get("role") != "user":
            continue
        content = message.get("content")
        if isinstance(content, str):
            return content
        return "".join(b.get("text", "") for b in content or [] if isinstance(b, dict) and b.get("type") == "text")
    return ""


def echo_reply(body: dict[str, Any]) -> str:
    return f"Here is what I received: {last_user_text(body)}"


def _sse(event: str, data: dict[str, Any]) -> bytes:
    return b"event: " + event.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


def stream_events(model: str, text: str) -> list[bytes]:
    """One Messages stream: message_start, one text block sent a few words at a time, the stop."""
    message_id = "msg_demo_" + secrets.token_hex(8)
    words = text.split(" ")
    pieces = [" ".join(words[i : i + 3]) + (" " if i + 3 < len(words) else "") for i in range(0, len(words), 3)]
    events = [
        _sse(
            "message_start",
            {
                "type": "message_start",
                "message": {
                    "id": message_id,
                    "type": "message",
                    "role": "assistant",
                    "model": model,
                    "content": [],
                    "stop_reason": None,
                    "stop_sequence": None,
                    "usage": {"input_tokens": len(text.split()), "output_tokens": 1},
                },
            },
        ),
        _sse(
            "content_block_start",
            {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        ),
        _sse("ping", {"type": "ping"}),
    ]
    events += [
        _sse(
            "content_block_delta",
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": p}},
        )
        for p in pieces
    ]
    events += [
        _sse("content_block_stop", {"type": "content_block_stop", "index": 0}),
        _sse(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": len(words)},
            },
        ),
        _sse("message_stop", {"type": "message_stop"}),
    ]
    return events


def message(model: str, text: str) -> dict[str, Any]:
    return {
        "id": "msg_demo_" + secrets.token_hex(8),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": text}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": len(text.split()), "output_tokens": len(text.split())},
    }


def _handler(state: Upstream) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
            return  # quiet: the demo prints what matters

        def _send(self, status: int, body: bytes, content_type: str = "application/json") -> None:
            self.send_response(status)
            self.send_header("content-type", content_type)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:  # noqa: N802 - the base class's name
            if self.path.split("?")[0] == "/v1/models":
                model = {
                    "type": "model",
                    "id": "claude-demo",
                    "display_name": "Demo",
                    "created_at": "1970-01-01T00:00:00Z",
                }
                self._send(
                    200,
                    orjson.dumps(
                        {"data": [model], "has_more": False, "first_id": "claude-demo", "last_id": "claude-demo"}
                    ),
                )
            else:
                self._error(404, "not_found_error", "no such path")

        def do_POST(self) -> None:  # noqa: N802 - the base class's name
            raw = self.rfile.read(int(self.headers.get("content-length") or 0))
            with state.lock:
                state.received.append(Received(self.path, {k.lower(): v for k, v in self.headers.items()}, raw))
            if self.path.split("?")[0] != "/v1/messages":
                self._error(404, "not_found_error", "no such path")
                return
            try:
                body = orjson.loads(raw)
            except orjson.JSONDecodeError:
                self._error(400, "invalid_request_error", "the body is not JSON")
                return
            model = str(body.get("model") or "claude-demo")
            text = echo_reply(body)
            if not body.get("stream"):
                self._send(200, orjson.dumps(message(model, text)))
                return
            self.send_response(200)
            self.send_header("content-type", "text/event-stream")
            self.send_header("cache-control", "no-cache")
            self.send_header("transfer-encoding", "chunked")
            self.end_headers()
            for event in stream_events(model, text):
                self.wfile.write(f"{len(event):x}\r\n".encode() + event + b"\r\n")
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")

        def _error(self, status: int, kind: str, text: str) -> None:
            self._send(status, orjson.dumps({"type": "error", "error": {"type": kind, "message": text}}))

    return Handler


class DemoUpstream:
    """The simulator on 127.0.0.1 (a free port), served by a background thread."""

    def __init__(self) -> None:
        self.state = Upstream()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self.state))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="demo-upstream", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> DemoUpstream:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    @property
    def received(self) -> list[Received]:
        with self.state.lock:
            return list(self.state.received)
