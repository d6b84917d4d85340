"""The Gemini API (generateContent, streamGenerateContent, countTokens): request text locations,
the model and streaming from the path, usage in answers, native errors.

Gemini puts the model in the path (`/v1beta/models/{model}:generateContent`) and says whether the
answer streams by the method (`:streamGenerateContent?alt=sse`); the body has neither. The parser
reads the body; `from_route` completes the parsed request from the path and query.

Text locations inspected (fail closed: a part key egress does not know is walked whole):
- `contents[].parts[].text` (thought summaries too: they are not signed),
- `contents[].parts[].functionCall.args`, `functionResponse.response` and a function response's
  own `parts`, `executableCode` and `codeExecutionResult`,
- `systemInstruction.parts[]` (as `contents`),
- countTokens' `generateContentRequest` (the same, one level down).
Never inspected or rewritten: `inlineData` and `fileData` (media), `thoughtSignature` (opaque,
signed by Google: sent back byte for byte on the same part), `cachedContent` (a name), tools and
generation settings (as for the other APIs, declarations are not prompt text).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

import orjson

from egress.core.errors import EgressError, ErrorCode
from egress.core.exchange import Api, ParsedRequest, Prompt, SegmentKind, TextSegment, Usage
from egress.wire.body import load_object
from egress.wire.segments import Path, add_text, walk_strings
from egress.wire.sse import encode_event
from egress.wire.upstream_checks import body_object, event_document, protocol_error

# Part keys whose values are media, names or signatures: never text a developer wrote.
_OPAQUE_PART_KEYS = frozenset({"inlineData", "fileData", "thoughtSignature", "thought", "videoMetadata"})
# Code the model ran (code execution): its text key, and the keys that are structure.
_CODE_PARTS = {
    "executableCode": ("code", ("id", "language", "code")),
    "codeExecutionResult": ("output", ("id", "outcome", "output")),
}
_MODELS = "/models/"


def parse_request(api: Api, body: bytes) -> ParsedRequest:
    doc = load_object(body)
    out: list[TextSegment] = []
    _request_segments(doc, (), out)
    inner = doc.get("generateContentRequest")  # countTokens may wrap a whole generate request
    if isinstance(inner, dict):
        _request_segments(inner, ("generateContentRequest",), out)
    elif inner is not None:
        walk_strings(inner, ("generateContentRequest",), SegmentKind.OTHER, out)
    # The model and streaming are in the path: `from_route` fills them in.
    return ParsedRequest(api=api, model="", stream=api is Api.GEMINI_STREAM, document=doc, prompt=Prompt(tuple(out)))


def _request_segments(doc: dict[str, Any], base: Path, out: list[TextSegment]) -> None:
    system = doc.get("systemInstruction")
    if isinstance(system, dict):
        _content_segments(system, (*base, "systemInstruction"), SegmentKind.SYSTEM, out)
    elif system is not None:
        walk_strings(system, (*base, "systemInstruction"), SegmentKind.SYSTEM, out)
    contents = doc.get("contents")
    if isinstance(contents, list):
        for c, content in enumerate(contents):
            where = (*base, "contents", c)
            if isinstance(content, dict):
                _content_segments(content, where, SegmentKind.MESSAGE, out)
            else:
                walk_strings(content, where, SegmentKind.MESSAGE, out)
    elif contents is not None:
        walk_strings(contents, (*base, "contents"), SegmentKind.MESSAGE, out)


def _content_segments(content: dict[str, Any], path: Path, kind: SegmentKind, out: list[TextSegment]) -> None:
    """One `Content` ({role, parts}): its parts; any other key but `role` is walked whole."""
    for key, value in content.items():
        if key == "role":
            continue
        if key == "parts" and isinstance(value, list):
            for p, part in enumerate(value):
                _part_segments(part, (*path, "parts", p), kind, out)
        else:
            walk_strings(value, (*path, key), kind, out)


def _part_segments(part: Any, path: Path, kind: SegmentKind, out: list[TextSegment]) -> None:
    if not isinstance(part, dict):
        walk_strings(part, path, kind, out)
        return
    for key, value in part.items():
        if key in _OPAQUE_PART_KEYS:
            continue
        if key == "text":
            if isinstance(value, str):
                add_text(value, (*path, "text"), kind, out)
            else:
                walk_strings(value, (*path, "text"), kind, out)
        elif key == "functionCall" and isinstance(value, dict):
            walk_strings(value.get("args"), (*path, "functionCall", "args"), SegmentKind.TOOL_INPUT, out)
            _rest(value, ("id", "name", "args"), (*path, "functionCall"), SegmentKind.TOOL_INPUT, out)
        elif key == "functionResponse" and isinstance(value, dict):
            where = (*path, "functionResponse")
            walk_strings(value.get("response"), (*where, "response"), SegmentKind.TOOL_RESULT, out)
            parts = value.get("parts")
            if isinstance(parts, list):  # a multimodal function response: parts of its own
                for p, inner in enumerate(parts):
                    _part_segments(inner, (*where, "parts", p), SegmentKind.TOOL_RESULT, out)
            _rest(
                value,
                ("id", "name", "response", "parts", "willContinue", "scheduling"),
                where,
                SegmentKind.TOOL_RESULT,
                out,
            )
        elif key in _CODE_PARTS and isinstance(value, dict):
            text_key, known = _CODE_PARTS[key]
            add_text(value.get(text_key), (*path, key, text_key), kind, out)
            _rest(value, known, (*path, key), kind, out)
        else:
            # Any part type egress does not know yet: all of it.
            walk_strings(value, (*path, key), kind, out)


def _rest(obj: dict[str, Any], known: tuple[str, ...], path: Path, kind: SegmentKind, out: list[TextSegment]) -> None:
    """Fail closed: the keys of a known object that egress does not read, walked whole."""
    for key, value in obj.items():
        if key not in known:
            walk_strings(value, (*path, key), kind, out)


# --- the route -----------------------------------------------------------------------------


def model_from_path(path: str) -> str:
    """`/v1beta/models/gemini-2.5-pro:generateContent` -> `gemini-2.5-pro` ('' if none)."""
    start = path.rfind(_MODELS)
    end = path.rfind(":")
    return path[start + len(_MODELS) : end] if 0 <= start < end else ""


def from_route(parsed: ParsedRequest, path: str, query: str) -> ParsedRequest:
    """The parsed request with the model named by the path. A streamed request must ask for
    server-sent events (`alt=sse`): the JSON-array stream (no `alt`) is refused, precisely."""
    model = model_from_path(path)
    if not model:
        raise EgressError(ErrorCode.INVALID_REQUEST, f"the path names no model: {path}")
    if parsed.api is Api.GEMINI_STREAM and ("alt", "sse") not in parse_qsl(query):
        raise EgressError(
            ErrorCode.INVALID_REQUEST,
            "streamGenerateContent is served as server-sent events only: add ?alt=sse "
            "(the JSON-array stream is not supported by this gateway)",
        )
    return ParsedRequest(parsed.api, model, parsed.stream, parsed.document, parsed.prompt)


# --- answers -------------------------------------------------------------------------------


def _apply_usage(usage: Usage, raw: Any) -> None:
    if not isinstance(raw, dict):
        return
    if isinstance(raw.get("promptTokenCount"), int):
        usage.input_tokens = raw["promptTokenCount"]
    candidates, thoughts = raw.get("candidatesTokenCount"), raw.get("thoughtsTokenCount")
    if isinstance(candidates, int) or isinstance(thoughts, int):
        # totalTokenCount = prompt + candidates + thoughts (+ tool-use prompt): thoughts are output.
        usage.output_tokens = (candidates if isinstance(candidates, int) else 0) + (
            thoughts if isinstance(thoughts, int) else 0
        )
    if isinstance(raw.get("cachedContentTokenCount"), int):
        usage.cache_read_tokens = raw["cachedContentTokenCount"]


def read_usage(doc: dict[str, Any], usage: Usage) -> None:
    """Usage of a whole answer (generateContent's `usageMetadata`, countTokens' `totalTokens`)."""
    _apply_usage(usage, doc.get("usageMetadata"))
    if isinstance(doc.get("totalTokens"), int) and usage.input_tokens is None:
        usage.input_tokens = doc["totalTokens"]


def check_body(body: bytes) -> None:
    """A 2xx generateContent answer is an object with a `candidates` list, or (a prompt the
    provider blocked) a `promptFeedback` object."""
    doc = body_object(body)
    if not isinstance(doc.get("candidates"), list) and not isinstance(doc.get("promptFeedback"), dict):
        raise protocol_error("a success status with a body that has no `candidates` list")


def check_count_body(body: bytes) -> None:
    """A 2xx countTokens answer is an object whose `totalTokens`, when present, is an integer
    (proto3 JSON leaves out a zero)."""
    total = body_object(body).get("totalTokens", 0)
    if not isinstance(total, int) or isinstance(total, bool):
        raise protocol_error("a success status with a body whose `totalTokens` is not an integer")


class StreamObserver:
    """Reads usage from a Gemini SSE stream (`data: {GenerateContentResponse}` per event, no
    `event:` line, no `[DONE]`) and checks its grammar (upstream_protocol_error for an event
    that is not SSE or not a JSON object).

    `complete`: every candidate the stream started has its `finishReason`, or the prompt was
    blocked (`promptFeedback.blockReason`), or the API's in-stream error came: the stream itself
    just ends after the last chunk, so a stream cut before that is truncated."""

    __slots__ = ("usage", "complete", "_open", "_seen")

    def __init__(self, usage: Usage) -> None:
        self.usage = usage
        self.complete = False
        self._open: set[Any] = set()
        self._seen = False

    def observe(self, raw: bytes) -> None:
        doc = event_document(raw)
        if doc is None:
            return
        if doc.get("error"):
            self.complete = True
            return
        candidates = doc.get("candidates")
        if isinstance(candidates, list):
            for candidate in candidates:
                if not isinstance(candidate, dict):
                    continue
                index = candidate.get("index", 0)
                self._seen = True
                if candidate.get("finishReason"):
                    self._open.discard(index)
                    self.complete = not self._open
                else:
                    self._open.add(index)
                    self.complete = False
        feedback = doc.get("promptFeedback")
        if isinstance(feedback, dict) and feedback.get("blockReason") and not self._open:
            self.complete = True
        if "usageMetadata" in doc:
            _apply_usage(self.usage, doc["usageMetadata"])  # cumulative: the last one is the total

    def error_event(self, err: EgressError) -> bytes:
        # google-genai raises APIError for a data line that starts with {"error":.
        return encode_event(None, orjson.dumps({"error": _error_fields(err)}))


# "Still there, nothing yet" while a streamed request waits (an approval): Gemini's SSE has no
# ping, and google-genai reads an SSE comment as a JSON chunk and fails; a chunk whose one part
# is empty text is read as no text by every Gemini client.
KEEPALIVE = b'data: {"candidates":[{"content":{"role":"model","parts":[{"text":""}]},"index":0}]}\n\n'


# --- egress's own errors -------------------------------------------------------------------

# Google's canonical status names by HTTP status (google.rpc.Code's HTTP mapping).
STATUS_NAME = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    405: "INVALID_ARGUMENT",
    408: "DEADLINE_EXCEEDED",
    409: "ABORTED",
    413: "INVALID_ARGUMENT",
    415: "INVALID_ARGUMENT",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    501: "UNIMPLEMENTED",
    502: "UNAVAILABLE",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


def status_name(status: int) -> str:
    return STATUS_NAME.get(status, "INTERNAL" if status >= 500 else "FAILED_PRECONDITION")


def _error_fields(err: EgressError) -> dict[str, Any]:
    metadata = {k: v if isinstance(v, str) else orjson.dumps(v).decode() for k, v in err.details.items()}
    return {
        "code": err.status,
        "message": f"egress: {err.message}",
        "status": status_name(err.status),
        "details": [
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": err.code.value.upper(),
                "domain": "egress",
                "metadata": metadata,
            },
            # How long to wait (google.rpc.RetryInfo), as Google's own 429s say it.
            *(
                [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": f"{err.retry_after_s}s"}]
                if err.retry_after_s is not None
                else []
            ),
        ],
    }


def render_error(err: EgressError, request_id: str) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    body = orjson.dumps({"error": _error_fields(err)})
    headers = [
        (b"content-type", b"application/json; charset=UTF-8"),
        (b"x-egress-request-id", request_id.encode()),
    ]
    return err.status, headers, body
