"""An upstream provider simulator on loopback: the fake at the one seam to the outside world.

It speaks the real wire formats (Anthropic Messages, OpenAI Chat Completions and Responses) by
replaying recorded provider streams (tests/fixtures/recorded), split at random byte boundaries,
and it records exactly what it received, so tests can assert on the bytes that left egress.

Choosing an answer, first match wins:
  1. a scripted reply queued with `enqueue()`;
  2. the `x-sim-fixture` request header (a path relative to the fixtures folder);
  3. a default fixture for the API.
A non-streaming request gets the message a client would assemble from the fixture's events.
"""

from __future__ import annotations

import asyncio
import json
import random
import ssl
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import ClientConnectionResetError, web

from tests.support.loopback import LoopbackServer

REPO = Path(__file__).resolve().parents[2]
# Vendored in the repository (origin and licences in its README): a fresh clone with nothing
# beside it runs every test. Nothing reads recorded streams from anywhere else.
RECORDED = REPO / "tests" / "fixtures" / "recorded"


def fixtures_dir() -> Path:
    return RECORDED


def recorded_streams(pattern: str = "**/*.sse") -> list[Path]:
    """The recorded streams matching `pattern` (relative to the fixtures folder), sorted.

    Never empty: a test parametrized over them fails at collection with this message when they
    are missing, instead of being skipped as an empty parameter set."""
    found = sorted(RECORDED.glob(pattern))
    if not found:
        raise FileNotFoundError(f"no recorded stream matches {pattern!r} under {RECORDED} (tests/fixtures/recorded)")
    return found


DEFAULT_FIXTURE = {
    "/v1/messages": "anthropic-messages/basic_response.sse",
    "/v1/chat/completions": "openai-chat/parse_nothing.sse",
    "/v1/responses": "openai-responses/codex_cli_responses_fixture.sse",
}


@dataclass
class Received:
    method: str
    path: str
    query: str
    headers: list[tuple[str, str]]
    body: bytes
    cancelled: bool = False  # the client closed the connection before the answer was complete

    def header(self, name: str) -> str | None:
        name = name.lower()
        return next((v for k, v in self.headers if k.lower() == name), None)

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Reply:
    """A scripted answer. `chunks` are written one by one, `delay_s` apart."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    chunks: list[bytes] = field(default_factory=list)
    delay_s: float = 0.0
    hang_s: float = 0.0  # wait this long before answering at all
    close_after: bool = False  # drop the connection after the chunks (a broken stream)
    # Stop after this many bytes of the chunks and end the body cleanly (a stream cut short at a
    # clean EOF: no error, no reset). The `x-sim-truncate: N` request header does the same to a
    # fixture's stream.
    truncate_at: int | None = None
    # Answer from what was received (a scripted model that reads its prompt): returns the chunks.
    build: Callable[[Received], list[bytes]] | None = None


def truncated(chunks: list[bytes], limit: int) -> list[bytes]:
    """The first `limit` bytes of `chunks`, chunk boundaries kept."""
    out: list[bytes] = []
    for chunk in chunks:
        if limit <= 0:
            break
        out.append(chunk[:limit])
        limit -= len(chunk)
    return out


def split_random(data: bytes, rng: random.Random, max_pieces: int = 40) -> list[bytes]:
    if len(data) < 2:
        return [data]
    cuts = sorted(rng.sample(range(1, len(data)), min(max_pieces, len(data) - 1)))
    return [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]


# --- assembling a non-streamed answer from a fixture's events ------------------------------------


def parse_events(data: bytes) -> list[tuple[str | None, str]]:
    out = []
    for block in data.decode("utf-8").replace("\r\n", "\n").split("\n\n"):
        event, lines = None, []
        for line in block.split("\n"):
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:"):
                lines.append(line[5:].lstrip(" "))
        if lines:
            out.append((event, "\n".join(lines)))
    return out


def assemble_anthropic(data: bytes) -> dict[str, Any]:
    message: dict[str, Any] = {}
    partial: dict[int, str] = {}
    for _, payload in parse_events(data):
        ev = json.loads(payload)
        kind = ev.get("type")
        if kind == "message_start":
            message = dict(ev["message"])
            message["content"] = []
        elif kind == "content_block_start":
            message["content"].append(dict(ev["content_block"]))
        elif kind == "content_block_delta":
            block = message["content"][ev["index"]]
            delta = ev["delta"]
            if delta["type"] == "text_delta":
                block["text"] = block.get("text", "") + delta["text"]
            elif delta["type"] == "input_json_delta":
                partial[ev["index"]] = partial.get(ev["index"], "") + delta["partial_json"]
            elif delta["type"] == "thinking_delta":
                block["thinking"] = block.get("thinking", "") + delta["thinking"]
            elif delta["type"] == "signature_delta":
                block["signature"] = delta["signature"]
        elif kind == "message_delta":
            message.update({k: v for k, v in ev["delta"].items()})
            message["usage"] = {**message.get("usage", {}), **ev.get("usage", {})}
    for index, text in partial.items():
        try:
            message["content"][index]["input"] = json.loads(text) if text.strip() else {}
        except json.JSONDecodeError:
            message["content"][index]["input"] = {}
    return message


def assemble_chat(data: bytes) -> dict[str, Any]:
    result: dict[str, Any] = {}
    choices: dict[int, dict[str, Any]] = {}
    for _, payload in parse_events(data):
        if payload.strip() == "[DONE]":
            continue
        chunk = json.loads(payload)
        result.update({k: chunk[k] for k in ("id", "created", "model", "system_fingerprint") if k in chunk})
        if chunk.get("usage"):
            result["usage"] = chunk["usage"]
        for choice in chunk.get("choices", []):
            c = choices.setdefault(
                choice["index"],
                {
                    "index": choice["index"],
                    "message": {"role": "assistant", "content": None},
                    "logprobs": None,
                    "finish_reason": None,
                },
            )
            delta = choice.get("delta", {})
            for key in ("content", "refusal"):
                if delta.get(key) is not None:
                    c["message"][key] = (c["message"].get(key) or "") + delta[key]
            for call in delta.get("tool_calls") or []:
                calls = c["message"].setdefault("tool_calls", [])
                while len(calls) <= call["index"]:
                    calls.append({"id": None, "type": "function", "function": {"name": "", "arguments": ""}})
                target = calls[call["index"]]
                if call.get("id"):
                    target["id"] = call["id"]
                fn = call.get("function") or {}
                target["function"]["name"] += fn.get("name") or ""
                target["function"]["arguments"] += fn.get("arguments") or ""
            if choice.get("finish_reason"):
                c["finish_reason"] = choice["finish_reason"]
    result["object"] = "chat.completion"
    result["choices"] = [choices[i] for i in sorted(choices)]
    return result


def assemble_responses(data: bytes) -> dict[str, Any]:
    response: dict[str, Any] = {}
    items: list[Any] = []
    for _, payload in parse_events(data):
        ev = json.loads(payload)
        if ev.get("type") == "response.output_item.done":
            items.append(ev["item"])
        elif ev.get("type") in ("response.completed", "response.created"):
            response.update(ev["response"])
    response.setdefault("object", "response")
    response.setdefault("status", "completed")
    if not response.get("output"):
        response["output"] = items
    return response


_ASSEMBLERS = {
    "anthropic-messages": assemble_anthropic,
    "openai-chat": assemble_chat,
    "openai-responses": assemble_responses,
}


# --- the server -----------------------------------------------------------------------------------


class UpstreamSimulator:
    def __init__(self, seed: int = 0, ssl_context: ssl.SSLContext | None = None, host: str = "127.0.0.1") -> None:
        self.ssl_context = ssl_context  # serve HTTPS with it (tests/support/tls.py makes one)
        self.host = host  # another address only inside a test's own network namespace (test_lockdown_nftables)
        self.received: list[Received] = []
        self.replies: deque[Reply] = deque()
        self.rng = random.Random(seed)
        self.port = 0
        self._server: LoopbackServer | None = None
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"{'https' if self.ssl_context else 'http'}://{self.host}:{self.port}"

    def enqueue(self, reply: Reply) -> None:
        with self._lock:
            self.replies.append(reply)

    def reset(self) -> None:
        with self._lock:
            self.received.clear()
            self.replies.clear()

    def fixture_bytes(self, name: str) -> bytes:
        return (fixtures_dir() / name).read_bytes()

    # lifecycle -------------------------------------------------------------------------------

    def start(self) -> UpstreamSimulator:
        app = web.Application(client_max_size=256 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        # handler_cancellation: a handler learns at once that egress closed the connection.
        self._server = LoopbackServer(
            app, "upstream-simulator", self.ssl_context, handler_cancellation=True, host=self.host
        )
        self.port = self._server.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()

    # handling --------------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        record = Received(
            request.method,
            request.path,
            request.query_string,
            list(request.raw_headers_decoded())
            if hasattr(request, "raw_headers_decoded")
            else [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.raw_headers],
            body,
        )
        with self._lock:
            self.received.append(record)
            scripted = self.replies.popleft() if self.replies else None
        if request.path == "/v1/models":
            return web.json_response({"data": [{"id": "claude-sim", "type": "model"}], "object": "list"})
        if request.path == "/v1/messages/count_tokens":
            return web.json_response({"input_tokens": len(body) // 4})
        if request.path == "/v1/responses/compact":
            return web.json_response(
                {
                    "id": "cmp_1",
                    "object": "response.compaction",
                    "output": [{"type": "compaction", "encrypted_content": "opaque=="}],
                }
            )
        if scripted is not None:
            return await self._play(request, record, scripted)
        try:
            doc = json.loads(body) if body else {}
        except json.JSONDecodeError:
            return web.json_response({"error": {"message": "bad json", "type": "invalid_request_error"}}, status=400)
        name = request.headers.get("x-sim-fixture") or DEFAULT_FIXTURE.get(request.path)
        if name is None:
            return web.json_response({"error": {"message": f"no route {request.path}"}}, status=404)
        data = self.fixture_bytes(name)
        if not data.endswith(b"\n\n"):
            # Several recorded files lack the final blank line (see the fixtures README); a real
            # provider always terminates its last event.
            data = data.rstrip(b"\n") + b"\n\n"
        if doc.get("stream"):
            with self._lock:
                chunks = split_random(data, self.rng)
            return await self._play(
                request,
                record,
                Reply(
                    headers={"content-type": "text/event-stream; charset=utf-8", "request-id": "req_sim"},
                    chunks=chunks,
                    truncate_at=int(request.headers["x-sim-truncate"]) if "x-sim-truncate" in request.headers else None,
                ),
            )
        assembled = _ASSEMBLERS[name.split("/", 1)[0]](data)
        return web.json_response(assembled, headers={"request-id": "req_sim"})

    async def _play(self, request: web.Request, record: Received, reply: Reply) -> web.StreamResponse:
        if reply.hang_s:
            try:
                await asyncio.sleep(reply.hang_s)
            except asyncio.CancelledError:
                record.cancelled = True
                raise
        chunks = reply.build(record) if reply.build is not None else reply.chunks
        if reply.truncate_at is not None:
            chunks = truncated(chunks, reply.truncate_at)
        response = web.StreamResponse(status=reply.status, headers=reply.headers)
        try:
            await response.prepare(request)
            for chunk in chunks:
                await response.write(chunk)
                if reply.delay_s:
                    await asyncio.sleep(reply.delay_s)
            if reply.close_after:
                assert request.transport is not None
                request.transport.close()
                return response
            await response.write_eof()
        except (ConnectionResetError, ClientConnectionResetError, asyncio.CancelledError):
            record.cancelled = True
            raise
        return response
