"""A regional provider that knows its models only by its own ids, as the clouds do: Bedrock wants
`eu.anthropic.claude-sonnet-4-5-20250929-v1:0`, not `claude-sonnet-4-5`. It checks the model id
as the service does (an unknown one is the API's own 404 not_found error) and, like every real
provider, names the model it served in the answer: in the body, in `message_start`, in every Chat
chunk and in the Responses events that carry the response. Answers are our own, made here."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from tests.support.loopback import LoopbackServer


@dataclass
class Seen:
    path: str
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def _sse(events: list[tuple[str | None, dict[str, Any]]]) -> bytes:
    out = []
    for name, data in events:
        head = f"event: {name}\n" if name else ""
        out.append(f"{head}data: {json.dumps(data, separators=(',', ':'))}\n\n".encode())
    return b"".join(out)


def messages_answer(model: str, text: str) -> dict[str, Any]:
    return {
        "id": "msg_regional_1",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": text}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 9, "output_tokens": 3},
    }


def messages_stream(model: str, text: str) -> bytes:
    start = {**messages_answer(model, ""), "content": [], "stop_reason": None}
    return _sse(
        [
            ("message_start", {"type": "message_start", "message": start}),
            (
                "content_block_start",
                {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
            ),
            ("ping", {"type": "ping"}),
            (
                "content_block_delta",
                {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text}},
            ),
            ("content_block_stop", {"type": "content_block_stop", "index": 0}),
            (
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                    "usage": {"output_tokens": 3},
                },
            ),
            ("message_stop", {"type": "message_stop"}),
        ]
    )


def chat_answer(model: str, text: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-regional-1",
        "object": "chat.completion",
        "created": 1767225600,
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12},
    }


def chat_stream(model: str, text: str) -> bytes:
    base = {"id": "chatcmpl-regional-1", "object": "chat.completion.chunk", "created": 1767225600, "model": model}
    chunks = [
        {**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]},
        {**base, "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}]},
        {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
    ]
    return _sse([(None, c) for c in chunks]) + b"data: [DONE]\n\n"


def responses_answer(model: str, text: str, status: str = "completed") -> dict[str, Any]:
    output = [
        {
            "id": "msg_r1",
            "type": "message",
            "role": "assistant",
            "status": "completed",
            "content": [{"type": "output_text", "text": text, "annotations": []}],
        }
    ]
    return {
        "id": "resp_regional_1",
        "object": "response",
        "created_at": 1767225600,
        "status": status,
        "model": model,
        "output": output if status == "completed" else [],
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": [],
        "usage": {"input_tokens": 9, "output_tokens": 3, "total_tokens": 12} if status == "completed" else None,
    }


def responses_stream(model: str, text: str) -> bytes:
    item = responses_answer(model, text)["output"][0]
    part = item["content"][0]
    events: list[tuple[str | None, dict[str, Any]]] = [
        ("response.created", {"response": responses_answer(model, "", "in_progress")}),
        ("response.in_progress", {"response": responses_answer(model, "", "in_progress")}),
        ("response.output_item.added", {"output_index": 0, "item": {**item, "status": "in_progress", "content": []}}),
        (
            "response.content_part.added",
            {"output_index": 0, "item_id": "msg_r1", "content_index": 0, "part": {**part, "text": ""}},
        ),
        ("response.output_text.delta", {"output_index": 0, "item_id": "msg_r1", "content_index": 0, "delta": text}),
        ("response.output_text.done", {"output_index": 0, "item_id": "msg_r1", "content_index": 0, "text": text}),
        ("response.content_part.done", {"output_index": 0, "item_id": "msg_r1", "content_index": 0, "part": part}),
        ("response.output_item.done", {"output_index": 0, "item": item}),
        ("response.completed", {"response": responses_answer(model, text)}),
    ]
    return _sse([(name, {"type": name, "sequence_number": i, **data}) for i, (name, data) in enumerate(events)])


class RegionalProvider:
    """Answers Messages (/v1/messages), Chat (/v1/chat/completions) and Responses (/v1/responses)
    for the model ids in `known` only."""

    def __init__(self, known: set[str], text: str = "served in region") -> None:
        self.known = known
        self.text = text
        self.seen: list[Seen] = []
        self._lock = threading.Lock()
        self._server: LoopbackServer | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> RegionalProvider:
        app = web.Application()
        app.router.add_post("/v1/messages", self._messages)
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_post("/v1/responses", self._responses)
        self._server = LoopbackServer(app, "regional-provider")
        self.port = self._server.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()

    async def _read(self, request: web.Request) -> tuple[dict[str, Any], str | None]:
        body = await request.read()
        with self._lock:
            self.seen.append(Seen(request.path, body))
        doc = json.loads(body)
        model = doc.get("model")
        return doc, model if model in self.known else None

    async def _messages(self, request: web.Request) -> web.StreamResponse:
        doc, model = await self._read(request)
        if model is None:
            error = {"type": "not_found_error", "message": f"model: {doc.get('model')}"}
            return web.json_response({"type": "error", "error": error}, status=404)
        if doc.get("stream"):
            return await self._stream(request, messages_stream(model, self.text))
        return web.json_response(messages_answer(model, self.text))

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        doc, model = await self._read(request)
        if model is None:
            return _openai_not_found(doc)
        if doc.get("stream"):
            return await self._stream(request, chat_stream(model, self.text))
        return web.json_response(chat_answer(model, self.text))

    async def _responses(self, request: web.Request) -> web.StreamResponse:
        doc, model = await self._read(request)
        if model is None:
            return _openai_not_found(doc)
        if doc.get("stream"):
            return await self._stream(request, responses_stream(model, self.text))
        return web.json_response(responses_answer(model, self.text))

    async def _stream(self, request: web.Request, data: bytes) -> web.StreamResponse:
        response = web.StreamResponse(headers={"content-type": "text/event-stream; charset=utf-8"})
        await response.prepare(request)
        # Written in uneven pieces: the gateway never sees one event per read.
        for i in range(0, len(data), 37):
            await response.write(data[i : i + 37])
        await response.write_eof()
        return response


def _openai_not_found(doc: dict[str, Any]) -> web.Response:
    model = doc.get("model")
    error = {
        "message": f"The model `{model}` does not exist",
        "type": "invalid_request_error",
        "code": "model_not_found",
    }
    return web.json_response({"error": error}, status=404)
