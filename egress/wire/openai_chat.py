"""OpenAI Chat Completions: request text locations, usage in answers, in-stream errors."""

from __future__ import annotations

from typing import Any

import orjson

from egress.core.errors import EgressError, ErrorCode
from egress.core.exchange import Api, ParsedRequest, Prompt, SegmentKind, TextSegment, Usage
from egress.wire.body import load_object, parsed
from egress.wire.openai_errors import error_object
from egress.wire.segments import add_text, label, walk_strings
from egress.wire.sse import encode_event
from egress.wire.upstream_checks import DONE, body_object, event_document, require_list

_KIND_BY_ROLE: dict[str | None, SegmentKind] = {
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


def check_body(body: bytes) -> None:
    """A 2xx Chat answer is a JSON object with a `choices` list (upstream_protocol_error)."""
    require_list(body_object(body), "choices")


def read_usage(doc: dict[str, Any], usage: Usage) -> None:
    """Usage of a whole answer."""
    _apply_usage(usage, doc.get("usage"))


class StreamObserver:
    """Reads usage from a Chat Completions stream (the usage-only chunk) as it passes, and checks
    its grammar (upstream_protocol_error for an event that is not SSE or not a JSON object).

    `complete`: `data: [DONE]` or an in-stream error chunk has been seen, or every choice the
    stream started has its `finish_reason`; a `[DONE]` while a choice is unfinished (or before
    any) is upstream_truncated. The last rule is for compatible servers that end the
    stream after the finish_reason chunk without `[DONE]` (their answer is whole: the official
    SDK reads it to the end without complaint); a stream cut before that is truncated."""

    __slots__ = ("usage", "complete", "_open", "_seen")

    def __init__(self, usage: Usage) -> None:
        self.usage = usage
        self.complete = False
        self._open: set[Any] = set()  # choice indexes seen without their finish_reason yet
        self._seen = False  # a choice has been seen

    def observe(self, raw: bytes) -> None:
        doc = event_document(raw, allow_done=True)
        if doc is None:
            return
        if doc is DONE:
            if not self.complete and (self._open or not self._seen):
                # [DONE] with a choice still unfinished (llama-cpp-python ends an interrupted
                # answer so), or before any choice: the answer was cut, whatever [DONE] says.
                raise EgressError(
                    ErrorCode.UPSTREAM_TRUNCATED,
                    "the upstream ended the stream before the answer was complete",
                    stage="forward",
                )
            self.complete = True
            return
        if doc.get("error"):
            self.complete = True  # the provider's own in-stream error: nothing follows it
            return
        choices = doc.get("choices")
        if isinstance(choices, list):
            for choice in choices:
                if not isinstance(choice, dict):
                    continue
                index = choice.get("index", 0)
                self._seen = True
                if choice.get("finish_reason") is not None:
                    self._open.discard(index)
                    self.complete = not self._open
                else:
                    self._open.add(index)
                    self.complete = False
        if "usage" in doc:
            _apply_usage(self.usage, doc.get("usage"))

    def error_event(self, err: EgressError) -> bytes:
        # The SDK raises on any data frame whose JSON has an "error" key; no [DONE] follows.
        return encode_event(None, orjson.dumps({"error": error_object(err)}))
