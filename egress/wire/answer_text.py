"""The text of a model's answer, from the bytes an upstream sent: for people reading a recording.

One reader per API (each API's entry in `egress.wire.apis` names its own; `apis.answer_text`
picks it). Streams are framed with the gateway's own SSE decoder; the text is what the API
streams as answer text: Anthropic `text_delta`s, Responses output items' `output_text` (their
deltas when cut short), Chat Completions `delta.content` (and `refusal`) of the first choice,
legacy completions' `text` of the first choice (FIM answers are Chat-shaped).
Whole answers give their text blocks, `output_text` parts or message content. Anything that is
not an answer (an error body, a cut-off stream, a foreign event) contributes no text; this never
raises on what an upstream sent.
"""

from __future__ import annotations

from typing import Any

import orjson

from egress.wire.sse import SseDecoder, SseEvent
from egress.wire.translate.chat_answer import ShapeError, parse_answer


def messages_text(raw: bytes, stream: bool) -> str:
    if stream:
        return "".join(text for doc in _stream_documents(raw) for text in _messages_delta(doc))
    doc = _document(raw)
    return "".join(_strings(b.get("text") for b in _dicts(doc.get("content")) if b.get("type") == "text"))


def chat_text(raw: bytes, stream: bool) -> str:
    if stream:
        return "".join(text for doc in _stream_documents(raw) for text in _chat_delta(doc))
    try:
        return parse_answer(raw).text
    except ShapeError:
        return ""


def completions_text(raw: bytes, stream: bool) -> str:
    """Legacy text completions: the first choice's `text`, whole or streamed."""
    docs = _stream_documents(raw) if stream else [_document(raw)]
    return "".join(
        _strings(c.get("text") for doc in docs for c in _dicts(doc.get("choices")) if c.get("index", 0) == 0)
    )


def responses_text(raw: bytes, stream: bool) -> str:
    if stream:
        return "".join(_responses_stream_text(_stream_documents(raw)))
    doc = _document(raw)
    parts = (p for item in _dicts(doc.get("output")) for p in _dicts(item.get("content")))
    return "".join(_strings(p.get("text") for p in parts if p.get("type") == "output_text"))


def gemini_text(raw: bytes, stream: bool) -> str:
    """Gemini: the first candidate's text parts (thoughts left out), whole or streamed (every
    event is a whole GenerateContentResponse holding the next piece)."""
    docs = _stream_documents(raw) if stream else [_document(raw)]
    candidates = (c for doc in docs for c in _dicts(doc.get("candidates")) if c.get("index", 0) == 0)
    contents = (c.get("content") for c in candidates)
    parts = (p for content in contents if isinstance(content, dict) for p in _dicts(content.get("parts")))
    return "".join(_strings(p.get("text") for p in parts if p.get("thought") is not True))


def no_text(raw: bytes, stream: bool) -> str:
    """For APIs whose answer holds no model text (count_tokens, compaction)."""
    return ""


def _document(raw: bytes) -> dict[str, Any]:
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return {}
    return doc if isinstance(doc, dict) else {}


def _stream_documents(raw: bytes) -> list[dict[str, Any]]:
    decoder = SseDecoder()
    events = decoder.feed(raw)
    tail = decoder.finish()
    docs: list[dict[str, Any]] = []
    for event in [*events, tail] if tail else events:
        data = SseEvent.parse(event).data
        if not data or data == "[DONE]":
            continue
        try:
            doc = orjson.loads(data)
        except orjson.JSONDecodeError:
            continue
        if isinstance(doc, dict):
            docs.append(doc)
    return docs


def _responses_stream_text(docs: list[dict[str, Any]]) -> list[str]:
    """Per output item: its finished text (`output_item.done`) when the stream got that far (some
    streams send only that), else the deltas that arrived (a stream cut short)."""
    deltas: dict[int, list[str]] = {}
    done: dict[int, str] = {}
    for doc in docs:
        kind = doc.get("type")
        index = doc.get("output_index")
        if kind == "response.output_text.delta" and isinstance(doc.get("delta"), str):
            deltas.setdefault(index if isinstance(index, int) else 0, []).append(doc["delta"])
        elif kind == "response.output_item.done" and isinstance(doc.get("item"), dict):
            parts = _dicts(doc["item"].get("content"))
            text = "".join(_strings(p.get("text") for p in parts if p.get("type") == "output_text"))
            done[index if isinstance(index, int) else len(done)] = text
    return [done[i] if i in done else "".join(deltas[i]) for i in sorted(deltas.keys() | done.keys())]


def _messages_delta(doc: dict[str, Any]) -> list[str]:
    delta = doc.get("delta")
    if doc.get("type") == "content_block_delta" and isinstance(delta, dict) and delta.get("type") == "text_delta":
        return _strings([delta.get("text")])
    return []


def _chat_delta(doc: dict[str, Any]) -> list[str]:
    deltas = (c.get("delta") for c in _dicts(doc.get("choices")) if c.get("index", 0) == 0)
    return _strings(d.get(key) for d in deltas if isinstance(d, dict) for key in ("content", "refusal"))


def _dicts(value: Any) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _strings(values: Any) -> list[str]:
    return [v for v in values if isinstance(v, str)]
