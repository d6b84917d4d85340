"""The answer half of Responses <- Chat, non-streamed (and the objects the stream shares)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from egress.wire.translate.chat_answer import (
    ChatAnswer,
    ChatUsage,
    UpstreamFault,
)
from egress.wire.translate.chat_request import (
    new_id,
)
from egress.wire.translate.responses_request import RequestEcho

_INCOMPLETE = {"length": "max_output_tokens", "content_filter": "content_filter"}


def usage_object(usage: ChatUsage) -> dict[str, Any]:
    return {
        "input_tokens": usage.prompt_tokens,
        "input_tokens_details": {"cached_tokens": usage.cached_tokens or 0, "cache_write_tokens": 0},
        "output_tokens": usage.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": usage.reasoning_tokens or 0},
        "total_tokens": usage.prompt_tokens + usage.completion_tokens,
    }


@dataclass(slots=True)
class ResponseHead:
    """The fields of the response object that every lifecycle event repeats."""

    echo: RequestEcho
    id: str
    created_at: int
    model: str

    def object(self, status: str, output: list[Any], *, final: bool = False, **extra: Any) -> dict[str, Any]:
        """The response object. The request's tools are echoed only in the final one: the
        lifecycle events before the first token stay small (Codex reads none of them)."""
        obj: dict[str, Any] = {
            "id": self.id,
            "object": "response",
            "created_at": self.created_at,
            "status": status,
            "error": None,
            "incomplete_details": None,
            "instructions": None,
            "model": self.model,
            "output": output,
            "parallel_tool_calls": self.echo.parallel_tool_calls,
            "tool_choice": self.echo.tool_choice,
            "tools": self.echo.tools if final else [],
            "usage": None,
        }
        obj.update(extra)
        return obj


def outcome(finish_reason: str | None) -> tuple[str, dict[str, Any]]:
    """(status, extra response fields) for a Chat finish_reason."""
    reason = _INCOMPLETE.get(finish_reason or "stop")
    if reason is None:
        return "completed", {}
    return "incomplete", {"incomplete_details": {"reason": reason}}


def message_item(item_id: str, text: str, status: str) -> dict[str, Any]:
    part = {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
    return {"id": item_id, "type": "message", "status": status, "role": "assistant", "content": [part]}


def call_item(item_id: str, call_id: str, name: str, arguments: str, custom: bool, status: str) -> dict[str, Any]:
    if custom:
        return {
            "id": item_id,
            "type": "custom_tool_call",
            "status": status,
            "call_id": call_id,
            "name": name,
            "input": custom_input(arguments),
        }
    return {
        "id": item_id,
        "type": "function_call",
        "status": status,
        "call_id": call_id,
        "name": name,
        "arguments": arguments,
    }


def custom_input(arguments: str) -> str:
    """The raw input of a custom tool call: `input` of the function arguments; the arguments
    themselves when the model did not write `{"input": "<string>"}`."""
    try:
        value = orjson.loads(arguments)
    except orjson.JSONDecodeError:
        return arguments
    if isinstance(value, dict) and isinstance(value.get("input"), str):
        raw: str = value["input"]
        return raw
    return arguments


def response_object(answer: ChatAnswer, echo: RequestEcho) -> dict[str, Any]:
    status, extra = outcome(answer.finish_reason)
    item_status = "incomplete" if status == "incomplete" else "completed"
    output: list[dict[str, Any]] = []
    if answer.text:
        output.append(message_item(new_id("msg_"), answer.text, item_status))
    for call in answer.tool_calls:
        custom = call.name in echo.custom_tools
        item_id = new_id("ctc_" if custom else "fc_")
        output.append(call_item(item_id, call.call_id, call.name, call.arguments, custom, item_status))
    head = ResponseHead(echo, new_id("resp_"), answer.created or 0, answer.model or echo.model)
    return head.object(status, output, final=True, usage=usage_object(answer.usage), **extra)


def error_code(fault: UpstreamFault) -> str:
    return "context_length_exceeded" if fault.context_overflow else fault.code


def error_object(fault: UpstreamFault) -> dict[str, Any]:
    """OpenAI's error object; the upstream's own `type` is kept when it gave one."""
    kind = fault.kind or ("invalid_request_error" if 400 <= fault.status < 500 else "server_error")
    return {"message": fault.message, "type": kind, "param": None, "code": error_code(fault)}
