"""OpenAI Responses API (Codex CLI): request text locations, usage, in-stream errors."""

from __future__ import annotations

from typing import Any

import orjson

from egress.core.errors import EgressError
from egress.core.exchange import Api, ParsedRequest, Prompt, SegmentKind, TextSegment, Usage
from egress.wire.body import load_object, parsed
from egress.wire.openai_errors import error_object
from egress.wire.segments import add_text, label, walk_strings
from egress.wire.sse import SseEvent, encode_event
from egress.wire.upstream_checks import body_object, require_list, typed_event

# Items produced by the provider that are opaque to egress (encrypted, signed or binary).
_OPAQUE_ITEMS = frozenset({"compaction", "compaction_trigger", "item_reference", "image_generation_call"})
_KIND_BY_ROLE: dict[str | None, SegmentKind] = {"system": SegmentKind.SYSTEM, "developer": SegmentKind.SYSTEM}
# The events after which a Responses stream is over.
_TERMINAL = frozenset({"response.completed", "response.incomplete", "response.failed", "error"})


def parse_request(api: Api, body: bytes) -> ParsedRequest:
    doc = load_object(body)
    return parsed(api, doc, Prompt(tuple(_segments(doc))))


def _segments(doc: dict[str, Any]) -> list[TextSegment]:
    out: list[TextSegment] = []
    add_text(doc.get("instructions"), ("instructions",), SegmentKind.INSTRUCTIONS, out)
    items = doc.get("input")
    if isinstance(items, str):
        add_text(items, ("input",), SegmentKind.MESSAGE, out)
        return out
    if not isinstance(items, list):
        return out
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            continue
        kind = label(item.get("type", "message"))
        path = ("input", i)
        if kind == "message":
            seg_kind = _KIND_BY_ROLE.get(label(item.get("role")), SegmentKind.MESSAGE)
            content = item.get("content")
            if isinstance(content, str):
                add_text(content, (*path, "content"), seg_kind, out)
            elif isinstance(content, list):
                for p, part in enumerate(content):
                    if isinstance(part, dict) and part.get("type") in ("input_text", "output_text", "text"):
                        add_text(part.get("text"), (*path, "content", p, "text"), seg_kind, out)
                    elif isinstance(part, dict) and part.get("type") not in ("input_image", "input_file"):
                        walk_strings(part, (*path, "content", p), seg_kind, out)
        elif kind == "function_call":
            add_text(item.get("arguments"), (*path, "arguments"), SegmentKind.TOOL_INPUT, out, json_text=True)
        elif kind == "custom_tool_call":
            add_text(item.get("input"), (*path, "input"), SegmentKind.TOOL_INPUT, out)
        elif kind in ("function_call_output", "custom_tool_call_output", "local_shell_call_output"):
            output = item.get("output")
            if isinstance(output, str):
                add_text(output, (*path, "output"), SegmentKind.TOOL_RESULT, out)
            elif isinstance(output, list):
                for p, part in enumerate(output):
                    if isinstance(part, dict) and part.get("type") in ("input_text", "output_text", "text"):
                        add_text(part.get("text"), (*path, "output", p, "text"), SegmentKind.TOOL_RESULT, out)
        elif kind == "reasoning":
            # The summary is model-written prose and is sent back; encrypted_content is opaque.
            summary = item.get("summary")
            if isinstance(summary, list):
                for s, part in enumerate(summary):
                    if isinstance(part, dict):
                        add_text(part.get("text"), (*path, "summary", s, "text"), SegmentKind.OTHER, out)
        elif kind in _OPAQUE_ITEMS:
            continue
        else:
            walk_strings(item, path, SegmentKind.OTHER, out)
    return out


def _apply_usage(usage: Usage, raw: Any) -> None:
    if not isinstance(raw, dict):
        return
    if isinstance(raw.get("input_tokens"), int):
        usage.input_tokens = raw["input_tokens"]
    if isinstance(raw.get("output_tokens"), int):
        usage.output_tokens = raw["output_tokens"]
    details = raw.get("input_tokens_details")
    if isinstance(details, dict) and isinstance(details.get("cached_tokens"), int):
        usage.cache_read_tokens = details["cached_tokens"]


def check_body(body: bytes) -> None:
    """A 2xx Responses (or compact) answer is a JSON object with an `output` list."""
    require_list(body_object(body), "output")


# --- stateful ids: an answer the provider keeps (store, default true) can be continued ---------


def answer_kept(doc: dict[str, Any]) -> bool:
    """Will the provider keep this request's answer for a later `previous_response_id`?"""
    return doc.get("store") is not False


def continued_answer(doc: dict[str, Any]) -> str | None:
    """The id of the kept answer this request continues, if any."""
    previous = doc.get("previous_response_id")
    return previous if isinstance(previous, str) else None


def answer_id(body: bytes) -> str | None:
    """The id of a whole answer."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    rid = doc.get("id") if isinstance(doc, dict) else None
    return rid if isinstance(rid, str) else None


def read_usage(doc: dict[str, Any], usage: Usage) -> None:
    """Usage of a whole answer."""
    _apply_usage(usage, doc.get("usage"))


class StreamObserver:
    """Reads usage from the terminal event, checks the stream's grammar (upstream_protocol_error
    for an event that is not SSE or not a typed JSON object), and remembers what an in-stream
    error must continue. `complete`: a terminal event (completed, incomplete, failed) or the
    API's own `error` event has been seen; a stream that ends before one is cut short."""

    __slots__ = ("usage", "complete", "_last", "_response_id")

    def __init__(self, usage: Usage) -> None:
        self.usage = usage
        self.complete = False  # a terminal event (completed, incomplete, failed) relayed
        self._last: bytes | None = None
        self._response_id: str | None = None  # the answer's id, repeated in a response.failed

    def observe(self, raw: bytes) -> None:
        typed = typed_event(raw)
        if typed is None:
            return
        self._last = raw
        kind, doc = typed
        response = doc.get("response")
        if self._response_id is None and isinstance(response, dict) and isinstance(response.get("id"), str):
            self._response_id = response["id"]
        if kind not in _TERMINAL:
            return
        self.complete = True
        if isinstance(response, dict):
            _apply_usage(self.usage, response.get("usage"))

    def _next_sequence(self) -> int:
        if self._last is None:
            return 0
        event = SseEvent.parse(self._last)
        try:
            doc = orjson.loads(event.data or "")
        except orjson.JSONDecodeError:
            return 0
        seq = doc.get("sequence_number") if isinstance(doc, dict) else None
        return seq + 1 if isinstance(seq, int) else 0

    def error_event(self, err: EgressError) -> bytes:
        obj = error_object(err)
        seq = self._next_sequence()
        error = encode_event(
            "error",
            orjson.dumps(
                {
                    "type": "error",
                    "code": obj["code"],
                    "message": obj["message"],
                    "param": None,
                    "sequence_number": seq,
                    # The envelope as well: the OpenAI SDKs raise APIError on a stream event
                    # whose data has an `error` object, and would otherwise read on.
                    "error": obj,
                }
            ),
        )
        # Codex acts on response.failed (and retries a stream that ends without a terminal event).
        failed = encode_event(
            "response.failed",
            orjson.dumps(
                {
                    "type": "response.failed",
                    "sequence_number": seq + 1,
                    "response": {
                        **({"id": self._response_id} if self._response_id is not None else {}),
                        "object": "response",
                        "status": "failed",
                        "error": {"code": obj["code"], "message": obj["message"]},
                        "output": [],
                    },
                }
            ),
        )
        return error + failed
