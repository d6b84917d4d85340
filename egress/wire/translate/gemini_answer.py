"""The answer half of Gemini <- Chat, non-streamed (and the pieces the stream shares)."""

from __future__ import annotations

from typing import Any

import orjson

from egress.wire.gemini import status_name
from egress.wire.sse import encode_event
from egress.wire.translate.chat_answer import ChatAnswer, ChatUsage, UpstreamFault

FINISH_REASON = {
    "stop": "STOP",
    "tool_calls": "STOP",  # Gemini ends a turn of function calls with STOP
    "function_call": "STOP",
    "length": "MAX_TOKENS",
    "content_filter": "SAFETY",
}


def finish_reason(chat: str | None) -> str:
    return FINISH_REASON.get(chat or "stop", "OTHER")


def usage_metadata(usage: ChatUsage) -> dict[str, Any]:
    out: dict[str, Any] = {
        "promptTokenCount": usage.prompt_tokens,
        "candidatesTokenCount": usage.completion_tokens,
        "totalTokenCount": usage.prompt_tokens + usage.completion_tokens,
    }
    if usage.cached_tokens is not None:
        out["cachedContentTokenCount"] = usage.cached_tokens
    return out


def function_call(name: str, arguments: str) -> dict[str, Any]:
    """A functionCall part: the arguments as an object (`{}` when the model wrote none or wrote
    invalid JSON: the agent then tells the model, as it does for any bad call)."""
    try:
        args = orjson.loads(arguments) if arguments.strip() else {}
    except orjson.JSONDecodeError:
        args = {}
    return {"functionCall": {"name": name, "args": args if isinstance(args, dict) else {}}}


def response_object(
    parts: list[dict[str, Any]], finish: str | None, usage: ChatUsage | None, model: str, response_id: str
) -> dict[str, Any]:
    """One GenerateContentResponse (a whole answer, or one streamed chunk when `finish` is None)."""
    candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": 0}
    if finish is not None:
        candidate["finishReason"] = finish
    doc: dict[str, Any] = {"candidates": [candidate]}
    if usage is not None:
        doc["usageMetadata"] = usage_metadata(usage)
    doc["modelVersion"] = model
    doc["responseId"] = response_id
    return doc


def answer_object(answer: ChatAnswer, model: str, response_id: str) -> dict[str, Any]:
    parts: list[dict[str, Any]] = [{"text": answer.text}] if answer.text else []
    parts += [function_call(call.name, call.arguments) for call in answer.tool_calls]
    return response_object(parts, finish_reason(answer.finish_reason), answer.usage, answer.model or model, response_id)


def error_object(fault: UpstreamFault) -> dict[str, Any]:
    return {"error": {"code": fault.status, "message": fault.message, "status": status_name(fault.status)}}


def error_event(fault: UpstreamFault) -> bytes:
    return encode_event(None, orjson.dumps(error_object(fault)))
