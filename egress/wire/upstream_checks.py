"""What an upstream's 2xx answer must at least be before egress relays it as a success.

A body that is not JSON, or JSON without the part of the API's answer every SDK reads, and a
stream event that is not SSE or whose data is not JSON, is `upstream_protocol_error` (502): the
client gets the API's own error, never a success its SDK cannot parse. The checks read only
structure; nothing they raise quotes the upstream's bytes (they may hold masked text).
"""

from __future__ import annotations

from typing import Any

import orjson

from egress.core.errors import EgressError, ErrorCode
from egress.wire.sse import SseProtocolError, event_data

DONE = "[DONE]"  # Chat Completions' last data line, returned as is by `event_document`


def protocol_error(what: str) -> EgressError:
    return EgressError(ErrorCode.UPSTREAM_PROTOCOL_ERROR, f"the upstream's answer is malformed: {what}", stage="forward")


def body_object(raw: bytes) -> dict[str, Any]:
    """A whole (non-streamed) 2xx answer as a JSON object, or upstream_protocol_error."""
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise protocol_error(f"a success status with a body that is not JSON ({len(raw)} bytes)") from None
    if not isinstance(doc, dict):
        raise protocol_error("a success status with a body that is not a JSON object")
    return doc


def require_list(doc: dict[str, Any], key: str) -> None:
    if not isinstance(doc.get(key), list):
        raise protocol_error(f"a success status with a body that has no `{key}` list")


def event_document(raw: bytes, allow_done: bool = False) -> Any:
    """One whole upstream event's data as JSON: a dict, DONE (when allowed), or None for an event
    without data (a keep-alive comment). Anything else is upstream_protocol_error."""
    try:
        data = event_data(raw)
    except SseProtocolError:
        raise protocol_error("its event stream is not server-sent events") from None
    if data is None:
        return None
    if allow_done and data.strip() == b"[DONE]":
        return DONE
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError:
        raise protocol_error("a stream event whose data is not JSON") from None
    if not isinstance(doc, dict):
        raise protocol_error("a stream event whose data is not a JSON object")
    return doc


def typed_event(raw: bytes) -> tuple[str, dict[str, Any]] | None:
    """An event of an API whose events carry a string `type` (Messages, Responses)."""
    doc = event_document(raw)
    if doc is None:
        return None
    kind = doc.get("type")
    if not isinstance(kind, str):
        raise protocol_error("a stream event without a `type`")
    return kind, doc


def whole_tail(tail: bytes) -> bytes | None:
    """The bytes left after a stream's body ended (an event its upstream never terminated) as a
    terminated event, when they can be one: they hold a data line. A tail without data, or with a
    line that is no SSE field yet, is where a cut fell: None. (Whether the data itself is whole
    is for the observer: it raises upstream_protocol_error when it does not parse.)"""
    try:
        data = event_data(tail)
    except SseProtocolError:
        return None
    if data is None:
        return None
    return tail.rstrip(b"\r\n") + b"\n\n"
