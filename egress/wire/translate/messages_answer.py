"""The answer half of Messages <- Chat, non-streamed (and the error shapes the stream shares)."""

from __future__ import annotations

from typing import Any

import orjson

from egress.wire.anthropic import ERROR_TYPE
from egress.wire.sse import encode_event
from egress.wire.translate.chat_answer import (
    ChatAnswer,
    ChatUsage,
    UpstreamFault,
)
from egress.wire.translate.chat_request import (
    new_id,
)

STOP_REASON = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}


def stop_reason(finish_reason: str | None, tool_calls: int) -> str:
    if tool_calls and finish_reason in ("stop", "tool_calls", None):
        return "tool_use"
    return STOP_REASON.get(finish_reason or "stop", "end_turn")


def usage_object(usage: ChatUsage) -> dict[str, Any]:
    out: dict[str, Any] = {"input_tokens": usage.prompt_tokens, "output_tokens": usage.completion_tokens}
    if usage.cached_tokens is not None:
        out["cache_read_input_tokens"] = usage.cached_tokens
    return out


def message_object(answer: ChatAnswer, model: str) -> dict[str, Any]:
    content: list[dict[str, Any]] = []
    if answer.text:
        content.append({"type": "text", "text": answer.text})
    for call in answer.tool_calls:
        content.append(
            {"type": "tool_use", "id": call.call_id, "name": call.name, "input": _tool_input(call.arguments)}
        )
    return {
        "id": new_id("msg_"),
        "type": "message",
        "role": "assistant",
        "model": answer.model or model,
        "content": content,
        "stop_reason": stop_reason(answer.finish_reason, len(answer.tool_calls)),
        "stop_sequence": None,
        "usage": usage_object(answer.usage),
    }


def _tool_input(arguments: str) -> dict[str, Any]:
    """The arguments as an object; `{}` when the model wrote none or wrote invalid JSON (the
    agent's input validation then tells the model, which is what it does for a bad call)."""
    try:
        value = orjson.loads(arguments) if arguments.strip() else {}
    except orjson.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def error_object(fault: UpstreamFault) -> dict[str, Any]:
    message = fault.message
    if fault.context_overflow and not message.startswith("prompt is too long"):
        # Anthropic's wording, which Claude Code recognises (it offers to compact the conversation).
        message = f"prompt is too long: {message}"
    return {"type": "error", "error": {"type": ERROR_TYPE.get(fault.status, "api_error"), "message": message}}


def error_event(fault: UpstreamFault) -> bytes:
    return encode_event("error", orjson.dumps(error_object(fault)))
