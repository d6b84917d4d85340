"""The Messages body as a cloud's own API takes it (Bedrock, Vertex): without `model` (and, for
Bedrock, `stream`), with the cloud's `anthropic_version` (and betas) added. Sans-IO.

Clients write `model` first, and the TypeScript SDK (Claude Code) writes `stream` last: for such a
body the edit is made on the bytes, at the two ends, and the rest (the long `messages`) is copied
as the client wrote it, never parsed again. Any other shape is parsed and re-serialised.

Invariant: both ways give the same JSON document. The byte edit applies only where the text
cannot mean anything else: a body that starts `{"model":"<no escapes>",` has that member first
at the top level, and one that ends `,"stream":true}` (or false) has it last at the top level, in a
JSON text that parsed at the door (nothing after the final `}` can reopen a string).
"""

from __future__ import annotations

import re
from typing import Any

import orjson

# Anthropic's error type for a cloud's HTTP status, where the cloud's own error names none that
# maps (Bedrock's exception names and Vertex's gRPC statuses are read first).
ERROR_TYPE_BY_STATUS: dict[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    408: "timeout_error",
    413: "request_too_large",
    429: "rate_limit_error",
    503: "overloaded_error",
    504: "timeout_error",
    529: "overloaded_error",
}

_HEAD_MODEL = re.compile(rb'\A\s*\{\s*"model"\s*:\s*"[^"\\]*"\s*,')
_TAIL_STREAM = re.compile(rb',\s*"stream"\s*:\s*(?:true|false)\s*\}\s*\Z')
_TAIL_SPAN = 64  # the end of the body where `,"stream":true}` is looked for


def mapped_body(body: bytes, added: dict[str, Any], drop_stream: bool) -> bytes:
    """`body` without its top-level `model` (and `stream` when `drop_stream`), with `added`'s
    members. `added` names keys the body does not have at its top level (the caller checks)."""
    fast = _edited(body, added, drop_stream)
    if fast is not None:
        return fast
    doc = orjson.loads(body)
    if not isinstance(doc, dict):
        raise ValueError("a Messages request is a JSON object")
    doc.pop("model", None)
    if drop_stream:
        doc.pop("stream", None)
    doc.update(added)
    return orjson.dumps(doc)


def _edited(body: bytes, added: dict[str, Any], drop_stream: bool) -> bytes | None:
    head = _HEAD_MODEL.match(body)
    if head is None or any(f'"{key}"'.encode() in body for key in added):
        return None
    members = orjson.dumps(added)[1:-1]  # `"k":v,...` without the braces
    if not drop_stream:
        return b"{" + members + b"," + body[head.end() :]
    tail = _TAIL_STREAM.search(body, max(head.end(), len(body) - _TAIL_SPAN))
    if tail is None:
        return None
    middle = body[head.end() : tail.start()]
    if not middle.strip():
        return None
    return b"{" + members + b"," + middle + b"}"
