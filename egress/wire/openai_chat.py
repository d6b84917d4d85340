"""OpenAI Chat Completions: request text locations, usage in answers, in-stream errors."""

from __future__ import annotations

from typing import Any

import orjson

from egress.core.errors import EgressError
from egress.core.exchange import Api, ParsedRequest, Prompt, SegmentKind, TextSegment, Usage
from egress.wire.body import load_object, parsed
from egress.wire.openai_errors import error_object
from egress.wire.segments import add_text, label, walk_strings
from egress.wire.sse import encode_event

_KIND_BY_ROLE = {
    "system": SegmentKind.SYSTEM,
    "developer": SegmentKind.SYSTEM,
    "tool": SegmentKind.TOOL_RESULT,
}


def parse_request(api: Api, body: bytes) -> ParsedRequest:
    doc = load_object(body)
    return parsed(api, doc, Prompt(tuple(_segments(doc))))


def _segments(doc: dict[str, Any]) -> list[TextSegment]:
    out: list[TextSegment] = []
    messages = doc.get("messages")
    if not isinstance(messages, list):
        return out
    for m, message in enumerate(messages):
        if not isinstance(message, dict):
            continue
        kind = _KIND_BY_ROLE.get(label(message.get("role")), SegmentKind.MESSAGE)
        content = message.get("content")
        if isinstance(content, str):
            add_text(content, ("messages", m, "content"), kind, out)
        elif isinstance(content, list):
            for p, part in enumerate(content):
                if not isinstance(part, dict):
                    continue
                if part.get("type") == "text":
                    add_text(part.get("text"), ("messages", m, "content", p, "text"), kind, out)
                elif part.get("type") not in ("image_url", "input_audio", "file"):
                    walk_strings(part, ("messages", m, "content", p), kind, out)
        tool_calls = message.get("tool_calls")
        if isinstance(tool_calls, list):
            for t, call in enumerate(tool_calls):
                function = call.get("function") if isinstance(call, dict) else None
                if isinstance(function, dict):
                    add_text(
                        function.get("arguments"),
                        ("messages", m, "tool_calls", t, "function", "arguments"),
                        SegmentKind.TOOL_INPUT,
                        out,
                        json_text=True,
                    )
        for key in ("refusal", "reasoning_content"):
            add_text(message.get(key), ("messages", m, key), kind, out)
    return out


def _apply_usage(usage: Usage, raw: Any) -> None:
    if not isinstance(raw, dict):
        return
    if isinstance(raw.get("prompt_tokens"), int):
        usage.input_tokens = raw["prompt_tokens"]
    if isinstance(raw.get("completion_tokens"), int):
        usage.output_tokens = raw["completion_tokens"]
    details = raw.get("prompt_tokens_details")
    if isinstance(details, dict) and isinstance(details.get("cached_tokens"), int):
        usage.cache_read_tokens = details["cached_tokens"]


def usage_from_body(body: bytes, usage: Usage) -> None:
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return
    if isinstance(doc, dict):
        _apply_usage(usage, doc.get("usage"))


class StreamObserver:
    """Reads usage from a Chat Completions stream (the usage-only chunk) as it passes."""

    __slots__ = ("usage", "complete")

    def __init__(self, usage: Usage) -> None:
        self.usage = usage
        self.complete = False  # data: [DONE] relayed

    def observe(self, raw: bytes) -> None:
        if b"[DONE]" in raw:
            self.complete = True
        if b'"usage"' not in raw:
            return
        start = raw.find(b"data:")
        if start < 0:
            return
        try:
            doc = orjson.loads(raw[start + 5 :].strip())
        except orjson.JSONDecodeError:
            return
        if isinstance(doc, dict):
            _apply_usage(self.usage, doc.get("usage"))

    def error_event(self, err: EgressError) -> bytes:
        # The SDK raises on any data frame whose JSON has an "error" key; no [DONE] follows.
        return encode_event(None, orjson.dumps({"error": error_object(err)}))
