"""Anthropic Messages API: request text locations, usage in answers, native error shapes."""

from __future__ import annotations

from typing import Any

import orjson

from egress.core.errors import EgressError
from egress.core.exchange import Api, ParsedRequest, Prompt, SegmentKind, TextSegment, Usage
from egress.wire.body import load_object, parsed
from egress.wire.segments import add_text, label, walk_strings
from egress.wire.sse import encode_event
from egress.wire.upstream_checks import body_object, protocol_error, require_list, typed_event

# The events after which a Messages stream is over: the answer, or the API's in-stream error.
_TERMINAL_EVENTS = frozenset({"message_stop", "error"})
# Block types whose content is signed or opaque: never inspected, never rewritten.
_OPAQUE_BLOCKS = frozenset({"thinking", "redacted_thinking", "image", "compaction"})


def parse_request(api: Api, body: bytes) -> ParsedRequest:
    doc = load_object(body)
    return parsed(api, doc, Prompt(tuple(_segments(doc)), _signed(doc)))


def _signed(doc: dict[str, Any]) -> tuple[str, ...]:
    """The text of the conversation's `thinking` blocks: covered by Anthropic's signature, so a
    value in it cannot be masked (the mask stage refuses the request instead)."""
    messages = doc.get("messages")
    if not isinstance(messages, list):
        return ()
    signed: list[str] = []
    for message in messages:
        content = message.get("content") if isinstance(message, dict) else None
        if not isinstance(content, list):
            continue
        for block in content:
            if isinstance(block, dict) and block.get("type") == "thinking":
                text = block.get("thinking")
                if isinstance(text, str):
                    signed.append(text)
    return tuple(signed)


def _segments(doc: dict[str, Any]) -> list[TextSegment]:
    out: list[TextSegment] = []
    system = doc.get("system")
    if isinstance(system, str):
        add_text(system, ("system",), SegmentKind.SYSTEM, out)
    elif isinstance(system, list):
        for i, block in enumerate(system):
            if isinstance(block, dict):
                add_text(block.get("text"), ("system", i, "text"), SegmentKind.SYSTEM, out)
    messages = doc.get("messages")
    if isinstance(messages, list):
        for m, message in enumerate(messages):
            if not isinstance(message, dict):
                continue
            content = message.get("content")
            base = ("messages", m, "content")
            if isinstance(content, str):
                add_text(content, base, SegmentKind.MESSAGE, out)
            elif isinstance(content, list):
                for b, block in enumerate(content):
                    _block_segments(block, (*base, b), out)
    return out


def _block_segments(block: Any, path: tuple[str | int, ...], out: list[TextSegment]) -> None:
    if not isinstance(block, dict):
        return
    kind = label(block.get("type"))
    if kind == "text":
        add_text(block.get("text"), (*path, "text"), SegmentKind.MESSAGE, out)
    elif kind in _OPAQUE_BLOCKS:
        return
    elif kind in ("tool_use", "server_tool_use"):
        walk_strings(block.get("input"), (*path, "input"), SegmentKind.TOOL_INPUT, out)
    elif kind == "tool_result":
        content = block.get("content")
        if isinstance(content, str):
            add_text(content, (*path, "content"), SegmentKind.TOOL_RESULT, out)
        elif isinstance(content, list):
            for c, inner in enumerate(content):
                if isinstance(inner, dict) and inner.get("type") == "text":
                    add_text(inner.get("text"), (*path, "content", c, "text"), SegmentKind.TOOL_RESULT, out)
                elif isinstance(inner, dict) and label(inner.get("type")) not in _OPAQUE_BLOCKS:
                    walk_strings(inner, (*path, "content", c), SegmentKind.TOOL_RESULT, out)
    elif kind == "document":
        source = block.get("source")
        if isinstance(source, dict) and source.get("type") == "text":
            add_text(source.get("data"), (*path, "source", "data"), SegmentKind.MESSAGE, out)
        walk_strings({k: v for k, v in block.items() if k != "source"}, path, SegmentKind.MESSAGE, out)
    else:
        # Unknown or server-side block (web_search_tool_result, tool_reference, …): inspect all of it.
        walk_strings(block, path, SegmentKind.OTHER, out)


# --- answers -------------------------------------------------------------------------------


def _apply_usage(usage: Usage, raw: Any) -> None:
    if not isinstance(raw, dict):
        return
    if isinstance(raw.get("input_tokens"), int):
        usage.input_tokens = raw["input_tokens"]
    if isinstance(raw.get("output_tokens"), int):
        usage.output_tokens = raw["output_tokens"]
    if isinstance(raw.get("cache_read_input_tokens"), int):
        usage.cache_read_tokens = raw["cache_read_input_tokens"]
    if isinstance(raw.get("cache_creation_input_tokens"), int):
        usage.cache_write_tokens = raw["cache_creation_input_tokens"]


def check_body(body: bytes) -> None:
    """A 2xx Messages answer is a JSON object with a `content` list (upstream_protocol_error)."""
    require_list(body_object(body), "content")


def check_count_body(body: bytes) -> None:
    """A 2xx count_tokens answer is a JSON object with an integer `input_tokens`."""
    if not isinstance(body_object(body).get("input_tokens"), int):
        raise protocol_error("a success status with a body that has no integer `input_tokens`")


def read_usage(doc: dict[str, Any], usage: Usage) -> None:
    """Usage of a whole answer (a message, or a count_tokens answer's `input_tokens`)."""
    _apply_usage(usage, doc.get("usage"))
    if isinstance(doc.get("input_tokens"), int) and usage.input_tokens is None:  # count_tokens
        usage.input_tokens = doc["input_tokens"]


class StreamObserver:
    """Reads usage from a Messages stream as it passes, and checks its grammar; never changes it.

    Raises upstream_protocol_error for an event that is not SSE or whose data is not a typed
    JSON object. `complete`: `message_stop` (or the API's own `error` event, after which nothing
    follows) has been seen; a stream that ends before it is cut short."""

    __slots__ = ("usage", "complete")

    def __init__(self, usage: Usage) -> None:
        self.usage = usage
        self.complete = False  # message_stop relayed: the answer is whole

    def observe(self, raw: bytes) -> None:
        typed = typed_event(raw)
        if typed is None:
            return
        kind, doc = typed
        if kind in _TERMINAL_EVENTS:
            self.complete = True
        if kind == "message_start" and isinstance(doc.get("message"), dict):
            _apply_usage(self.usage, doc["message"].get("usage"))
        elif "usage" in doc:
            # message_delta usage is cumulative: the last one seen is the answer's total.
            _apply_usage(self.usage, doc.get("usage"))

    def error_event(self, err: EgressError) -> bytes:
        return encode_event("error", orjson.dumps(_error_object(err)))


# --- egress's own errors -------------------------------------------------------------------

# Anthropic's error type by HTTP status: its documented list (400, 401, 402, 403, 404, 413, 429,
# 500, 504, 529) and the statuses egress itself answers with (405, 408, 415, 502, 503). Used for
# egress's own errors and for upstream errors relayed through translation; others are api_error.
ERROR_TYPE = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    408: "timeout_error",
    413: "request_too_large",
    415: "invalid_request_error",
    429: "rate_limit_error",
    500: "api_error",
    502: "api_error",
    503: "overloaded_error",
    504: "timeout_error",
    529: "overloaded_error",
}


def _error_object(err: EgressError, request_id: str | None = None) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "type": "error",
        "error": {
            "type": ERROR_TYPE.get(err.status, "api_error"),
            "message": f"egress: {err.message}",
            "details": {**err.details, "error_code": err.code.value},
        },
    }
    if request_id is not None:
        obj["request_id"] = request_id
    return obj


def render_error(err: EgressError, request_id: str) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    body = orjson.dumps(_error_object(err, request_id))
    headers = [
        (b"content-type", b"application/json"),
        (b"request-id", request_id.encode()),
        (b"x-should-retry", b"true" if err.retryable else b"false"),
    ]
    return err.status, headers, body
