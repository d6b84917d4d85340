"""The text of a model's answer, from the bytes an upstream sent: for people reading a recording.

Streams are framed with the gateway's own SSE decoder; the text is what the API streams as
answer text: Anthropic `text_delta`s, Responses `response.output_text.delta`s, Chat Completions
`delta.content`. Whole answers give their text blocks, `output_text` parts or message content.
Anything that is not an answer (an error body, a cut-off stream, a foreign event) contributes no
text; this never raises on what an upstream sent.
"""

from __future__ import annotations

from typing import Any

import orjson

from egress.core.exchange import Api
from egress.wire.sse import SseDecoder, SseEvent
from egress.wire.translate_chat import ShapeError, parse_answer


def answer_text(api: Api, raw: bytes, stream: bool) -> str:
    if stream:
        return "".join(_stream_deltas(api, raw))
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return ""
    if not isinstance(doc, dict):
        return ""
    if api is Api.ANTHROPIC_MESSAGES:
        return "".join(_strings(b.get("text") for b in _dicts(doc.get("content")) if b.get("type") == "text"))
    if api is Api.OPENAI_RESPONSES:
        parts = (p for item in _dicts(doc.get("output")) for p in _dicts(item.get("content")))
        return "".join(_strings(p.get("text") for p in parts if p.get("type") == "output_text"))
    if api is Api.OPENAI_CHAT:
        try:
            return parse_answer(raw).text
        except ShapeError:
            return ""
    return ""


def _stream_deltas(api: Api, raw: bytes) -> list[str]:
    decoder = SseDecoder()
    events = decoder.feed(raw)
    tail = decoder.finish()
    out: list[str] = []
    for event in [*events, tail] if tail else events:
        data = SseEvent.parse(event).data
        if not data or data == "[DONE]":
            continue
        try:
            doc = orjson.loads(data)
        except orjson.JSONDecodeError:
            continue
        if isinstance(doc, dict):
            out.extend(_deltas(api, doc))
    return out


def _deltas(api: Api, doc: dict[str, Any]) -> list[str]:
    if api is Api.ANTHROPIC_MESSAGES:
        delta = doc.get("delta")
        if doc.get("type") == "content_block_delta" and isinstance(delta, dict) and delta.get("type") == "text_delta":
            return _strings([delta.get("text")])
        return []
    if api is Api.OPENAI_RESPONSES:
        return _strings([doc.get("delta")]) if doc.get("type") == "response.output_text.delta" else []
    if api is Api.OPENAI_CHAT:
        deltas = (c.get("delta") for c in _dicts(doc.get("choices")) if c.get("index", 0) == 0)
        return _strings(d.get("content") for d in deltas if isinstance(d, dict))
    return []


def _dicts(value: Any) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _strings(values: Any) -> list[str]:
    return [v for v in values if isinstance(v, str)]
