"""Helpers for the cross-API translation tests: run a Chat stream through a translation, and
read what comes out the way the official SDKs do (their SSE decoders and stream accumulators),
after validating every event strictly against the SDKs' event types."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anthropic
import httpx2
import openai
from anthropic.lib.streaming import MessageStream
from anthropic.types import ErrorResponse, Message, RawMessageStreamEvent
from openai.lib.streaming.responses import ResponseStream
from openai.types.responses import Response, ResponseStreamEvent
from pydantic import TypeAdapter

from egress.core.exchange import Api
from egress.wire.apis import translator_for
from egress.wire.sse import SseDecoder, SseEvent
from egress.wire.translate import StreamTranslation, Translator
from tests.support.simulator import assemble_chat, fixtures_dir, recorded_streams

CHAT_FIXTURES = recorded_streams("openai-chat/*.sse")
ANTHROPIC_EVENT: TypeAdapter[Any] = TypeAdapter(RawMessageStreamEvent)
RESPONSES_EVENT: TypeAdapter[Any] = TypeAdapter(ResponseStreamEvent)


def messages_translator() -> Translator:
    translator = translator_for(Api.ANTHROPIC_MESSAGES, Api.OPENAI_CHAT)
    assert translator is not None
    return translator


def responses_translator(tools: list[dict[str, Any]] | None = None) -> Translator:
    translator = translator_for(Api.OPENAI_RESPONSES, Api.OPENAI_CHAT)
    assert translator is not None
    request = {"model": "gpt-5-codex", "input": "hi", "stream": True, "tools": tools or []}
    translator.request_body(json.dumps(request).encode(), "local-model")
    return translator


def translate(stream: StreamTranslation, chunks: Iterable[bytes]) -> list[bytes]:
    """Frame the upstream bytes as the gateway does, translate every event, then finish."""
    decoder = SseDecoder()
    out: list[bytes] = []
    for chunk in chunks:
        for event in decoder.feed(chunk):
            out.extend(stream.feed(event))
    assert decoder.finish() == b""
    out.extend(stream.finish())
    for event in out:
        assert event.endswith(b"\n\n"), event
    return out


def sse(chunks: list[dict[str, Any]], done: bool = True) -> bytes:
    """A Chat stream body from chunk objects."""
    body = b"".join(b"data: " + json.dumps(c).encode() + b"\n\n" for c in chunks)
    return body + (b"data: [DONE]\n\n" if done else b"")


def parsed(events: list[bytes]) -> list[dict[str, Any]]:
    """Each event's JSON; the `event:` name always equals its `type` (the SDKs dispatch on it)."""
    docs = []
    for raw in events:
        event = SseEvent.parse(raw)
        if event.comment_only:
            continue
        assert event.data is not None
        doc = json.loads(event.data)
        assert event.event == doc["type"], raw
        docs.append(doc)
    return docs


def _sse_response(events: list[bytes], path: str) -> httpx2.Response:
    request = httpx2.Request("POST", f"http://egress.test{path}")
    headers = {"content-type": "text/event-stream"}
    return httpx2.Response(200, content=b"".join(events), headers=headers, request=request)


# --- Anthropic ---------------------------------------------------------------------------------


def anthropic_message(events: list[bytes]) -> Message:
    """The final message, as the anthropic SDK's MessageStream accumulates it."""
    for doc in parsed(events):
        # Strict: every required field present and typed (the SDK's own parsing is lenient).
        if doc["type"] == "error":
            ErrorResponse.model_validate(doc)
        else:
            ANTHROPIC_EVENT.validate_python(doc)
    check_block_nesting(parsed(events))
    response = _sse_response(events, "/v1/messages")
    raw = anthropic.Stream(cast_to=RawMessageStreamEvent, response=response, client=anthropic.Anthropic(api_key="t"))
    return MessageStream(raw, output_format=anthropic.NOT_GIVEN).get_final_message()


def check_block_nesting(docs: list[dict[str, Any]]) -> None:
    """message_start first; blocks 0, 1, 2, … each started, streamed and stopped before the next
    starts; message_delta then message_stop last (or an error event ends the stream)."""
    assert docs[0]["type"] in ("message_start", "error")
    open_index: int | None = None
    next_index = 0
    for doc in docs[1:]:
        kind = doc["type"]
        if kind == "content_block_start":
            assert open_index is None and doc["index"] == next_index
            open_index = doc["index"]
            next_index += 1
        elif kind == "content_block_delta":
            assert doc["index"] == open_index
            delta_type = doc["delta"]["type"]
            block_type = "text_delta" if start_types(docs)[doc["index"]] == "text" else "input_json_delta"
            assert delta_type == block_type
        elif kind == "content_block_stop":
            assert doc["index"] == open_index
            open_index = None
        elif kind == "message_delta":
            assert open_index is None
    last = docs[-1]["type"]
    assert last in ("message_stop", "error")
    if last == "message_stop":
        assert docs[-2]["type"] == "message_delta"


def start_types(docs: list[dict[str, Any]]) -> dict[int, str]:
    return {d["index"]: d["content_block"]["type"] for d in docs if d["type"] == "content_block_start"}


# --- Responses ---------------------------------------------------------------------------------


def responses_final(events: list[bytes]) -> Response:
    """The final response object. For a completed answer, as the openai SDK's ResponseStream
    accumulates it; for an incomplete or failed one, the terminal event's response (the SDK's
    `get_final_response` only accepts response.completed)."""
    docs = parsed(events)
    check_sequence(docs)
    for doc in docs:
        RESPONSES_EVENT.validate_python(doc)
    terminal = docs[-1]
    if terminal["type"] != "response.completed":
        return Response.model_validate(terminal["response"])
    response = _sse_response(events, "/v1/responses")
    raw = openai.Stream(cast_to=ResponseStreamEvent, response=response, client=openai.OpenAI(api_key="t"))
    stream = ResponseStream(raw_stream=raw, text_format=openai.omit, input_tools=openai.omit, starting_after=None)
    return stream.get_final_response()


def check_sequence(docs: list[dict[str, Any]]) -> None:
    """sequence_number 0, 1, 2, … without gaps; created, in_progress first; one terminal event,
    last; every item added before its events and done before the next is added."""
    assert [d["sequence_number"] for d in docs] == list(range(len(docs)))
    assert [d["type"] for d in docs[:2]] == ["response.created", "response.in_progress"]
    terminals = ("response.completed", "response.incomplete", "response.failed")
    assert docs[-1]["type"] in terminals
    assert all(d["type"] not in terminals for d in docs[:-1])
    open_index: int | None = None
    next_index = 0
    for doc in docs:
        if doc["type"] == "response.output_item.added":
            assert open_index is None and doc["output_index"] == next_index
            open_index = next_index
            next_index += 1
        elif doc["type"] == "response.output_item.done":
            assert doc["output_index"] == open_index
            open_index = None
        elif "output_index" in doc:
            assert doc["output_index"] == open_index, doc


# --- what the Chat stream said ------------------------------------------------------------------


@dataclass(frozen=True)
class ChatFacts:
    text: str
    calls: list[tuple[str, str, str]]  # (id, name, arguments)
    finish_reason: str
    prompt_tokens: int
    completion_tokens: int


def chat_facts(data: bytes) -> ChatFacts:
    """Choice 0 of a Chat stream, assembled independently of the code under test."""
    answer = assemble_chat(data)
    message = answer["choices"][0]["message"]
    calls = [(c["id"], c["function"]["name"], c["function"]["arguments"]) for c in message.get("tool_calls", [])]
    return ChatFacts(
        text=(message.get("content") or "") + (message.get("refusal") or ""),
        calls=calls,
        finish_reason=answer["choices"][0]["finish_reason"],
        prompt_tokens=answer["usage"]["prompt_tokens"],
        completion_tokens=answer["usage"]["completion_tokens"],
    )


def fixture(name: str) -> bytes:
    return (fixtures_dir() / "openai-chat" / name).read_bytes()


def fixture_path(name: str) -> Path:
    return fixtures_dir() / "openai-chat" / name
