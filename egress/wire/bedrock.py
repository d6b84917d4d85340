"""Anthropic Messages on Amazon Bedrock (InvokeModel, InvokeModelWithResponseStream), sans-IO.

The client speaks Messages to egress; this module says how the same request and answer look on
Bedrock's runtime API:

- request: the model id goes in the path (`/model/{id}/invoke`, or `.../invoke-with-response-stream`
  for a stream; the id percent-encoded, so an ARN's `/` and a version's `:` stay in one segment),
  the body loses `model` and `stream` and gains `anthropic_version: bedrock-2023-05-31`; the
  `anthropic-beta` header's flags are copied into `anthropic_beta` (Bedrock reads betas there);
- a streamed answer arrives as AWS event-stream frames whose `chunk` events carry, base64 in
  their JSON `bytes` field, exactly one Anthropic stream event: `StreamTranslator` turns them back
  into the Anthropic SSE the client expects, the event's JSON byte for byte;
- errors (`{"message": ...}` with the exception's name in `x-amzn-ErrorType`, or an exception
  frame in a stream) become Anthropic errors, with statuses the agents retry on for throttling
  (429) and overload (529).

Invariant: nothing here quotes the request's or the answer's text in an error (it may be masked
text); only the provider's own error message is carried over.
"""

from __future__ import annotations

import binascii
from typing import Any
from urllib.parse import quote

import orjson

from egress.wire.cloud_body import ERROR_TYPE_BY_STATUS, mapped_body
from egress.wire.eventstream import EventStreamDecoder, EventStreamError, Message
from egress.wire.sse import encode_event
from egress.wire.upstream_checks import body_object, protocol_error

ANTHROPIC_VERSION = "bedrock-2023-05-31"
CONTENT_TYPE = "application/vnd.amazon.eventstream"

# Bedrock's exception names (the `x-amzn-ErrorType` header, the stream's `:exception-type`,
# either spelling) -> (status the client sees, Anthropic error type). Throttling stays 429;
# a model or service that cannot take the request now is Anthropic's 529 overloaded_error, which
# every Anthropic client retries.
_EXCEPTIONS: dict[str, tuple[int, str]] = {
    "throttlingexception": (429, "rate_limit_error"),
    "servicequotaexceededexception": (429, "rate_limit_error"),
    "modelnotreadyexception": (529, "overloaded_error"),
    "serviceunavailableexception": (529, "overloaded_error"),
    "validationexception": (400, "invalid_request_error"),
    "accessdeniedexception": (403, "permission_error"),
    "unrecognizedclientexception": (401, "authentication_error"),
    "invalidsignatureexception": (401, "authentication_error"),
    "expiredtokenexception": (401, "authentication_error"),
    "incompletesignatureexception": (401, "authentication_error"),
    "resourcenotfoundexception": (404, "not_found_error"),
    "modeltimeoutexception": (408, "timeout_error"),
    "modelerrorexception": (500, "api_error"),
    "modelstreamerrorexception": (500, "api_error"),
    "internalserverexception": (500, "api_error"),
}


def invoke_path(model_id: str, stream: bool) -> str:
    """The runtime path for one model id (a base id, an inference profile id, or an ARN)."""
    return f"/model/{quote(model_id, safe='')}/{'invoke-with-response-stream' if stream else 'invoke'}"


# The betas Bedrock documents for Claude (AWS's "Anthropic Claude Messages API" parameters page,
# seen 2026): only these are copied from the client's `anthropic-beta` header into the body.
# Bedrock refuses a flag it does not know ("invalid beta flag"), and an Anthropic-API client
# (Claude Code) sends several that exist only on Anthropic's own API (claude-code-20250219,
# oauth-2025-04-20, prompt-caching-scope-2026-01-05, ...). A body's own `anthropic_beta` is kept.
BEDROCK_BETAS = frozenset(
    {
        "computer-use-2024-10-22",
        "computer-use-2025-01-24",
        "token-efficient-tools-2025-02-19",
        "interleaved-thinking-2025-05-14",
        "output-128k-2025-02-19",
        "dev-full-thinking-2025-05-14",
        "context-1m-2025-08-07",
        "context-management-2025-06-27",
        "effort-2025-11-24",
        "tool-search-tool-2025-10-19",
        "tool-examples-2025-10-29",
    }
)


def request_body(body: bytes, betas: str | None) -> bytes:
    """The Messages body as InvokeModel takes it. `betas`: the client's `anthropic-beta` header."""
    added: dict[str, Any] = {"anthropic_version": ANTHROPIC_VERSION}
    flags = [flag for b in betas.split(",") if (flag := b.strip()) in BEDROCK_BETAS] if betas else []
    if flags and b'"anthropic_beta"' not in body:  # a body's own list is kept as it is
        added["anthropic_beta"] = flags
    return mapped_body(body, added, drop_stream=True)


def exception_class(name: str) -> tuple[int, str] | None:
    """(status, Anthropic error type) for a Bedrock exception name (`ThrottlingException`,
    `throttlingException`, or the header's `Name:namespace` form)."""
    return _EXCEPTIONS.get(name.split(":", 1)[0].strip().lower())


def error_document(error_type: str, message: str) -> bytes:
    return orjson.dumps({"type": "error", "error": {"type": error_type, "message": message}})


def error_answer(status: int, error_type_header: str | None, raw: bytes) -> tuple[int, bytes]:
    """A Bedrock error answer as Anthropic's: (status, body). A body already in Anthropic's shape
    (Bedrock relays some of the model's own errors so) keeps its type and message."""
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError:
        doc = None
    if isinstance(doc, dict) and doc.get("type") == "error" and isinstance(doc.get("error"), dict):
        return status, raw
    known = exception_class(error_type_header) if error_type_header else None
    if known is not None:
        status, kind = known
    else:
        kind = ERROR_TYPE_BY_STATUS.get(status, "api_error")
    message = doc.get("message") or doc.get("Message") if isinstance(doc, dict) else None
    if not isinstance(message, str):
        message = f"Bedrock answered HTTP {status}" + (
            f" ({error_type_header.split(':', 1)[0]})" if error_type_header else ""
        )
    return status, error_document(kind, message)


def check_answer(raw: bytes) -> None:
    """A 2xx InvokeModel answer is the Messages answer (upstream_protocol_error otherwise)."""
    body_object(raw)


class StreamTranslator:
    """Event-stream bytes in, Anthropic SSE bytes out, incrementally.

    Each `chunk` event's inner JSON is relayed unchanged as one SSE event named by its `type`; an
    exception frame becomes Anthropic's `error` event (nothing follows it). Frames with a bad CRC,
    and chunks that are not base64 JSON, are `upstream_protocol_error`."""

    __slots__ = ("_decoder", "_chunk_blocks")

    def __init__(self) -> None:
        self._decoder = EventStreamDecoder()
        self._chunk_blocks: set[bytes] = set()  # header blocks seen to say "a chunk event"

    def feed(self, chunk: bytes) -> bytes:
        try:
            frames = self._decoder.frames(chunk)
        except EventStreamError as err:
            raise protocol_error(f"Bedrock event stream: {err}") from None
        out = []
        for block, payload in frames:
            if block in self._chunk_blocks:  # every frame but the first few: one set lookup
                out.append(_chunk(payload))
                continue
            try:
                message = Message(self._decoder.headers_of(block), payload)
            except EventStreamError as err:
                raise protocol_error(f"Bedrock event stream: {err}") from None
            if message.header(":message-type") == "event" and message.header(":event-type") == "chunk":
                self._chunk_blocks.add(block)
            out.append(_sse(message))
        return out[0] if len(out) == 1 else b"".join(out)

    def finish(self) -> bytes:
        try:
            self._decoder.finish()
        except EventStreamError as err:
            raise protocol_error(f"Bedrock event stream: {err}") from None
        return b""


def _sse(message: Message) -> bytes:
    kind = message.header(":message-type")
    if kind == "event":
        if message.header(":event-type") != "chunk":
            return b""  # initial-response and other service events carry no model output
        return _chunk(message.payload)
    if kind == "exception":
        name = message.header(":exception-type") or "exception"
        return _stream_error(name, message.payload)
    if kind == "error":
        name = message.header(":error-code") or "error"
        text = message.header(":error-message") or f"Bedrock stream error {name}"
        _, error_type = exception_class(name) or (500, "api_error")
        return encode_event("error", error_document(error_type, text))
    raise protocol_error(f"Bedrock event stream: a frame of message type {kind!r}")


_TYPE_PREFIX = b'{"type":"'


def _chunk(payload: bytes) -> bytes:
    """One chunk event's inner Anthropic event as SSE. The inner JSON is relayed as it is: the
    relay's observer parses every event; here only its `type` is read (from the prefix every
    Anthropic event starts with, else by parsing)."""
    try:
        envelope = orjson.loads(payload)
        inner = binascii.a2b_base64(envelope["bytes"], strict_mode=True)
        if inner.startswith(_TYPE_PREFIX) and (end := inner.find(b'"', 9)) > 9 and b"\\" not in inner[9:end]:
            return b"event: " + inner[9:end] + b"\ndata: " + inner + b"\n\n"
        name = orjson.loads(inner)["type"]
    except (orjson.JSONDecodeError, binascii.Error, KeyError, TypeError):
        raise protocol_error("Bedrock event stream: a chunk that is not base64 of a typed JSON event") from None
    if not isinstance(name, str):
        raise protocol_error("Bedrock event stream: a chunk event whose `type` is not a string")
    return encode_event(name, inner)


def _stream_error(name: str, payload: bytes) -> bytes:
    try:
        doc = orjson.loads(payload)
    except orjson.JSONDecodeError:
        doc = None
    message = doc.get("message") if isinstance(doc, dict) else None
    _, error_type = exception_class(name) or (500, "api_error")
    return encode_event("error", error_document(error_type, message if isinstance(message, str) else name))
