"""Anthropic Messages on Google Vertex AI (rawPredict, streamRawPredict), sans-IO.

The client speaks Messages to egress; on Vertex the same request goes to
`{base}/publishers/anthropic/models/{model}:rawPredict` (`:streamRawPredict` for a stream), where
the endpoint's base URL names the project and location
(`https://{region}-aiplatform.googleapis.com/v1/projects/{project}/locations/{region}`). The body
loses `model`, keeps `stream`, and gains `anthropic_version: vertex-2023-10-16`; betas stay in
the `anthropic-beta` header.

The answer is Anthropic's own (JSON, or Anthropic SSE) with two differences handled here:
- the stream may carry `event: vertex_event` (usage and tiers, Vertex's own): dropped, since
  Anthropic clients do not know it (some break on it);
- HTTP errors use Google's envelope (`{"error":{"code":429,"status":"RESOURCE_EXHAUSTED",...}}`,
  sometimes wrapped in a list): turned into Anthropic's error, throttling 429, overload 529.
"""

from __future__ import annotations

from urllib.parse import quote

import orjson

from egress.wire.cloud_body import ERROR_TYPE_BY_STATUS, mapped_body
from egress.wire.sse import SseDecoder

ANTHROPIC_VERSION = "vertex-2023-10-16"
_DROPPED_EVENTS = (b"event: vertex_event\n", b"event:vertex_event\n", b"event: vertex_event\r\n")

# Google's canonical status names -> (status the client sees, Anthropic error type).
_STATUSES: dict[str, tuple[int, str]] = {
    "RESOURCE_EXHAUSTED": (429, "rate_limit_error"),
    "UNAVAILABLE": (529, "overloaded_error"),
    "INVALID_ARGUMENT": (400, "invalid_request_error"),
    "FAILED_PRECONDITION": (400, "invalid_request_error"),
    "OUT_OF_RANGE": (400, "invalid_request_error"),
    "UNAUTHENTICATED": (401, "authentication_error"),
    "PERMISSION_DENIED": (403, "permission_error"),
    "NOT_FOUND": (404, "not_found_error"),
    "DEADLINE_EXCEEDED": (504, "timeout_error"),
    "INTERNAL": (500, "api_error"),
    "CANCELLED": (499, "api_error"),
}


def predict_path(model: str, stream: bool) -> str:
    """The path below the endpoint's base URL (`.../projects/P/locations/L`) for one model."""
    return f"/publishers/anthropic/models/{quote(model, safe='@')}:{'streamRawPredict' if stream else 'rawPredict'}"


def request_body(body: bytes) -> bytes:
    """The Messages body as rawPredict takes it."""
    return mapped_body(body, {"anthropic_version": ANTHROPIC_VERSION}, drop_stream=False)


def _error_type(status: int) -> str:
    return ERROR_TYPE_BY_STATUS.get(status, "api_error")


def error_answer(status: int, raw: bytes) -> tuple[int, bytes]:
    """A Vertex error answer as Anthropic's: (status, body). One already in Anthropic's shape
    (the model's own errors) is kept as it is."""
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError:
        doc = None
    if isinstance(doc, list) and doc:
        doc = doc[0]
    if isinstance(doc, dict) and doc.get("type") == "error" and isinstance(doc.get("error"), dict):
        return status, raw
    error = doc.get("error") if isinstance(doc, dict) else None
    kind = _error_type(status)
    message = f"Vertex AI answered HTTP {status}"
    if isinstance(error, dict):
        known = _STATUSES.get(str(error.get("status", "")))
        if known is not None:
            status, kind = known
        if isinstance(error.get("message"), str):
            message = error["message"]
    elif status == 503:
        status = 529
    body = orjson.dumps({"type": "error", "error": {"type": kind, "message": message}})
    return status, body


class StreamFilter:
    """Anthropic SSE in, the same SSE out without Vertex's own `vertex_event` events; every other
    event's bytes unchanged."""

    __slots__ = ("_decoder",)

    def __init__(self) -> None:
        self._decoder = SseDecoder()

    def feed(self, chunk: bytes) -> bytes:
        events = self._decoder.feed(chunk)
        if not events:
            return b""
        return b"".join(e for e in events if not e.startswith(_DROPPED_EVENTS))

    def finish(self) -> bytes:
        tail = self._decoder.finish()
        return b"" if tail.startswith(_DROPPED_EVENTS) else tail
