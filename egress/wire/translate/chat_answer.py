"""Reading a non-streamed Chat Completions answer and its error bodies, for every translation."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from egress.core.errors import EgressError, ErrorCode
from egress.wire.translate.chat_request import (
    new_id,
)


class ShapeError(ValueError):
    """An upstream answer that is not what Chat Completions sends."""


@dataclass(slots=True)
class ChatUsage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int | None = None
    reasoning_tokens: int | None = None

    @classmethod
    def parse(cls, raw: Any) -> ChatUsage | None:
        if not isinstance(raw, dict):
            return None
        usage = cls(_count(raw.get("prompt_tokens")), _count(raw.get("completion_tokens")))
        prompt = raw.get("prompt_tokens_details")
        if isinstance(prompt, dict) and isinstance(prompt.get("cached_tokens"), int):
            usage.cached_tokens = prompt["cached_tokens"]
        completion = raw.get("completion_tokens_details")
        if isinstance(completion, dict) and isinstance(completion.get("reasoning_tokens"), int):
            usage.reasoning_tokens = completion["reasoning_tokens"]
        return usage


def _count(value: Any) -> int:
    return value if isinstance(value, int) and value >= 0 else 0


@dataclass(frozen=True, slots=True)
class ToolCallOut:
    call_id: str
    name: str
    arguments: str  # the JSON text as the model wrote it (possibly invalid or truncated)


@dataclass(frozen=True, slots=True)
class ChatAnswer:
    """The first choice of a non-streamed Chat answer, reasoning dropped."""

    model: str | None
    created: int | None
    text: str
    tool_calls: tuple[ToolCallOut, ...]
    finish_reason: str | None
    usage: ChatUsage


def parse_answer(raw: bytes) -> ChatAnswer:
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ShapeError(f"the upstream answer is not JSON ({exc.msg})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("choices"), list):
        raise ShapeError("the upstream answer is not a Chat Completions object (no choices list)")
    choice = first_choice(doc["choices"])
    message = choice.get("message") if choice is not None else None
    if choice is None or not isinstance(message, dict):
        raise ShapeError("the upstream answer has no choice with a message")
    calls = message.get("tool_calls")
    return ChatAnswer(
        model=doc["model"] if isinstance(doc.get("model"), str) else None,
        created=doc["created"] if isinstance(doc.get("created"), int) else None,
        text=text_of(message.get("content")) + text_of(message.get("refusal")),
        tool_calls=tuple(_answer_call(c) for c in calls if isinstance(c, dict)) if isinstance(calls, list) else (),
        finish_reason=choice.get("finish_reason") if isinstance(choice.get("finish_reason"), str) else None,
        usage=ChatUsage.parse(doc.get("usage")) or ChatUsage(),
    )


def _answer_call(call: dict[str, Any]) -> ToolCallOut:
    function: dict[str, Any] = call["function"] if isinstance(call.get("function"), dict) else {}
    arguments = function.get("arguments")
    if isinstance(arguments, dict):  # a few servers send the object itself
        arguments = orjson.dumps(arguments).decode()
    return ToolCallOut(
        call_id=call["id"] if isinstance(call.get("id"), str) and call["id"] else new_id("call_"),
        name=function["name"] if isinstance(function.get("name"), str) else "",
        arguments=arguments if isinstance(arguments, str) else "",
    )


def first_choice(choices: list[Any]) -> dict[str, Any] | None:
    """Choice 0 (the translated APIs have no `n`; other choices, if any, are not relayed)."""
    for choice in choices:
        if isinstance(choice, dict) and choice.get("index", 0) == 0:
            return choice
    return None


def text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # some servers send content as a list of text parts
        return "".join(p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
    return ""


@dataclass(frozen=True, slots=True)
class UpstreamFault:
    """Why a Chat answer failed: an error the upstream reported, or one egress detected."""

    message: str
    code: str  # a stable machine-readable code (the upstream's, when it gave a string one)
    status: int  # the HTTP status that goes with it (for picking the client API's error type)
    kind: str | None = None  # the upstream's error `type`, when it gave one

    @property
    def context_overflow(self) -> bool:
        """The prompt did not fit the model's context (agents compact the conversation then)."""
        if self.code in _OVERFLOW_CODES or self.kind in _OVERFLOW_CODES:
            return True
        text = self.message.lower()
        return any(phrase in text for phrase in _OVERFLOW_PHRASES)


# How OpenAI, llama.cpp and vLLM say the prompt is too long for the model.
_OVERFLOW_CODES = frozenset({"context_length_exceeded", "exceed_context_size_error"})
_OVERFLOW_PHRASES = ("maximum context length", "exceeds the available context size", "context length exceeded")


def error_fault(status: int, raw: bytes) -> UpstreamFault:
    """Read a Chat server's error body: `{"error":{...}}` (OpenAI, llama.cpp, Ollama), a top-level
    `{"message":...}` (older vLLM) or plain text. Never raises."""
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError:
        text = raw[:500].decode("utf-8", errors="replace").strip()
        return UpstreamFault(text or f"upstream answered HTTP {status} with no body", "upstream_error", status)
    return fault_from(doc, status)


def fault_from(doc: Any, status: int) -> UpstreamFault:
    error = doc.get("error") if isinstance(doc, dict) else None
    if isinstance(error, str):
        return UpstreamFault(error, "upstream_error", status)
    source = error if isinstance(error, dict) else doc if isinstance(doc, dict) else {}
    message = source.get("message")
    kind = source.get("type") if isinstance(source.get("type"), str) and source.get("type") else None
    code = source.get("code")
    if not isinstance(code, str) or not code:
        code = kind or "upstream_error"
    if not isinstance(message, str) or not message:
        message = f"upstream answered HTTP {status}"
    return UpstreamFault(message, code, status, kind)


def translate_answer(
    status: int,
    raw: bytes,
    answer_body: Callable[[ChatAnswer], dict[str, Any]],
    error_body: Callable[[UpstreamFault], dict[str, Any]],
) -> tuple[int, bytes]:
    """(status, body) for the client from a non-streamed Chat answer. An upstream error keeps
    its status; a 2xx that is not a Chat answer becomes a protocol error (502). Never raises."""
    if not 200 <= status < 300:
        return status, orjson.dumps(error_body(error_fault(status, raw)))
    try:
        answer = parse_answer(raw)
    except ShapeError as exc:
        fault = protocol_fault(str(exc))
        return fault.status, orjson.dumps(error_body(fault))
    return status, orjson.dumps(answer_body(answer))


def protocol_fault(message: str) -> UpstreamFault:
    """egress's own finding that the upstream broke the Chat Completions protocol."""
    err = EgressError(ErrorCode.UPSTREAM_PROTOCOL_ERROR, message)
    return UpstreamFault(f"egress: {message}", err.code.value, err.status)
