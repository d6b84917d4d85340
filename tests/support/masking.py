"""Helpers for the masking tests: a fixed-key masker, a literal 'detector', stream builders.

The literal detector finds exactly the planted values: these tests are about masking and
restoration, so detection is taken out of the picture (the inspection engine has its own tests;
the end-to-end tests use the real one)."""

from __future__ import annotations

import json
from typing import Any

from egress.core.exchange import Action, Api, Decision, Finding, MaskedRequest, Prompt
from egress.mask.masker import Masker
from egress.mask.placeholders import MaskingKeys, Placeholders
from egress.wire.apis import APIS
from egress.wire.sse import SseDecoder

KEYS = MaskingKeys.derive(b"\x07" * 32)
PLACEHOLDERS = Placeholders(KEYS)
MASK_SECRETS = Decision(Action.MASK, ("sim",), ("secret",), (), "dec_test", "test")


def literal_findings(prompt: Prompt, planted: dict[str, str]) -> tuple[Finding, ...]:
    """A finding wherever a planted value occurs as written in a segment (value -> rule id)."""
    out = []
    for index, segment in enumerate(prompt.segments):
        for value, rule in planted.items():
            # In JSON text (tool-call arguments) the value is escaped, \u-style or not.
            forms = {json.dumps(value)[1:-1], json.dumps(value, ensure_ascii=False)[1:-1]} if segment.json_text else {value}
            for needle in forms:
                start = segment.text.find(needle)
                while start >= 0:
                    out.append(Finding("secret", rule, index, start, start + len(needle), 0.9))
                    start = segment.text.find(needle, start + len(needle))
    return tuple(out)


def mask_request(api: Api, body: bytes, planted: dict[str, str], masker: Masker | None = None) -> MaskedRequest:
    parsed = APIS[api].parse_request(api, body)
    findings = literal_findings(parsed.prompt, planted)
    return (masker or Masker(PLACEHOLDERS)).apply(body, parsed, findings, MASK_SECRETS)


def sse(event: str | None, data: Any) -> bytes:
    payload = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    head = f"event: {event}\n" if event else ""
    return (head + f"data: {payload}\n\n").encode()


def run_stream(restorer: Any, wire: bytes, cuts: list[int]) -> bytes:
    """Feed `wire` to the restorer through the real SSE framer, split at `cuts` (byte offsets)."""
    decoder = SseDecoder()
    out = []
    last = 0
    for cut in [*sorted(set(cuts)), len(wire)]:
        if cut <= last:
            continue
        for event in decoder.feed(wire[last:cut]):
            out.append(restorer.feed(event))
        last = cut
    tail = decoder.finish()
    if tail:
        out.append(restorer.feed(tail))
    out.append(restorer.finish())
    return b"".join(out)


def events(wire: bytes) -> list[tuple[str | None, Any]]:
    out = []
    for block in wire.decode("utf-8").split("\n\n"):
        if not block.strip():
            continue
        name, data = None, None
        for line in block.split("\n"):
            if line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:"):
                data = line[5:].lstrip(" ")
        assert data is not None
        out.append((name, data if data == "[DONE]" else json.loads(data)))
    return out
