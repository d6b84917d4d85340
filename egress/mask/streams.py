"""Streaming restoration: put masked values back into an answer event by event, never buffering it.

One engine for every API. Each API's grammar (`egress.wire.stream_grammar`, named by its entry in
`egress.wire.apis`) names its text-bearing streams (an Anthropic content block, a Chat choice's
content or tool-call arguments, a Responses output item's text or arguments); the engine keeps,
per stream, only the tail that could still grow into a placeholder:

  * a placeholder split across events, chunks or UTF-8 boundaries is held only while it could
    still complete, and released as soon as it cannot;
  * at a stream's end (block stop, finish_reason, `.done`) a held tail is released in a delta of
    its own, emitted before the event that ends the stream, so text never changes order; at the
    end of an answer that was cut short (`finish`), a held tail is dropped, never released raw;
  * events that carry no placeholder and continue no held tail pass through as the same bytes;
  * copies of finished text (Responses `.done`, `output_item.done`, `response.completed`; Chat and
    Anthropic starts) are restored whole, the same way as the deltas were;
  * signed text (Anthropic `thinking`) is never touched: its signature covers the masked text.

Inside text that is itself JSON (tool-call arguments), a value is restored JSON-escaped (depth 2).
"""

from __future__ import annotations

import re
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Protocol

import orjson

from egress.mask import literals
from egress.mask.literals import Prefixes, Replacements
from egress.wire.sse import data_span
from egress.wire.stream_grammar import DEPTH2_KEYS, SKIP_KEYS, Field, Plan, StreamGrammar

_SEQ = re.compile(rb'"sequence_number"(\s*:\s*)(\d+)')
_KEY_PATTERNS: dict[bytes, re.Pattern[bytes]] = {}


def _pattern(key: bytes) -> re.Pattern[bytes]:
    pattern = _KEY_PATTERNS.get(key)
    if pattern is None:
        pattern = _KEY_PATTERNS[key] = literals.key_pattern(key)
    return pattern


@dataclass(slots=True)
class _Held:
    tail: bytes
    template: bytes  # the last event of this stream, to carry the tail when it must be released
    fields: list[Field]
    target: Field


class _Map(Replacements, Prefixes, Protocol):
    """What the engine needs of a restore map (see egress.mask.restore.RestoreMap)."""


class StreamRestorer:
    """Restores one answer stream, read through its API's grammar."""

    def __init__(self, grammar: StreamGrammar, table: _Map) -> None:
        self.grammar = grammar
        self.table = table
        self.held: dict[Hashable, _Held] = {}
        self.inserted = 0  # events added so far (Responses sequence numbers shift by this)
        self.last_seq = -1
        self.dropped = 0  # bytes of placeholder fragments dropped by `finish` (a cut stream)

    @property
    def response_id(self) -> str | None:
        """The id the provider gave this answer, once seen (APIs with stateful ids)."""
        return self.grammar.response_id

    # --- the engine --------------------------------------------------------------------------

    def feed(self, raw: bytes) -> bytes:
        """Restore one whole SSE event; may hold back text that could still complete a placeholder."""
        self.grammar.observe(raw)
        if not self.held and not self.inserted and not _maybe_placeholder(raw):
            return raw
        span = data_span(raw)
        if span is None:
            return raw
        data = raw[span[0] : span[1]]
        try:
            doc = orjson.loads(data)
        except orjson.JSONDecodeError:
            plan = self.grammar.plan_raw(data.strip())
            if plan is None:
                return raw
        else:
            if not isinstance(doc, dict):
                return raw
            plan = self.grammar.plan(doc, self.held.keys())
        seq = self._seq_of(raw)
        out: list[bytes] = []
        ends = list(self.held) if plan.ends_before is None else [s for s in plan.ends_before if s in self.held]
        for stream in ends:
            if stream not in plan.final:
                out.append(self._release(stream, seq))
        out.append(self._renumber(self._apply(raw, plan), seq))
        return out[0] if len(out) == 1 else b"".join(out)

    def finish(self) -> bytes:
        """The stream is over: drop what is still held, and return nothing.

        Every held tail is a proper prefix of an issued placeholder (`literals.held_suffix`), kept
        because it could still complete one. A stream that ended properly has ended every text
        stream first (block stop, finish_reason, `.done`, the terminal event), which released its
        tail as the model's own text; a tail still held here belongs to a stream that was cut
        short, and releasing it would show the client a raw placeholder fragment (`EGX_AWS_A`).
        The caller reports the cut as the API's error event instead."""
        self.dropped = sum(len(h.tail) for h in self.held.values())
        self.held.clear()
        return b""

    def _apply(self, raw: bytes, plan: Plan) -> bytes:
        if plan.fields:
            raw = self._apply_fields(raw, plan)
        if plan.whole and b"EGX_" in raw:
            raw = literals.replace_all(raw, self.table, depth2_keys=DEPTH2_KEYS, skip_keys=SKIP_KEYS)
        return raw

    def _apply_fields(self, raw: bytes, plan: Plan) -> bytes:
        spans = self._locate(raw, plan.fields)
        if spans is None:
            # The event is not shaped as its type promises: restore what is whole, hold nothing.
            return literals.replace_all(raw, self.table, depth2_keys=DEPTH2_KEYS, skip_keys=SKIP_KEYS)
        edits: list[tuple[int, int, bytes]] = []
        for f, (start, end) in zip(plan.fields, spans, strict=True):
            held = self.held.pop(f.stream, None)
            text = raw[start:end] if held is None else held.tail + raw[start:end]
            cut = len(text)
            if f.stream not in plan.final:
                cut = literals.held_suffix(text, self.table, self.table)
            released = literals.restore_text(text[:cut], self.table, f.depth)
            if cut < len(text):
                self.held[f.stream] = _Held(text[cut:], raw, plan.fields, f)
            if held is not None or released != raw[start:end]:
                edits.append((start, end, released))
        return literals.splice(raw, sorted(edits))

    def _locate(self, raw: bytes, fields: list[Field]) -> list[tuple[int, int]] | None:
        found: dict[bytes, list[tuple[int, int]]] = {}
        spans = []
        for f in fields:
            literal_spans = found.get(f.key)
            if literal_spans is None:
                literal_spans = found[f.key] = literals.field_literals(raw, _pattern(f.key))
            if f.occurrence >= len(literal_spans):
                return None
            spans.append(literal_spans[f.occurrence])
        return spans

    def _release(self, stream: Hashable, seq: int | None) -> bytes:
        """An event carrying only the held tail, shaped like the stream's last event.

        `seq` is the original sequence number of the event it goes before (None at the end)."""
        held = self.held.pop(stream)
        raw = held.template
        spans = self._locate(raw, held.fields)
        assert spans is not None  # the template was located when it was held
        edits = [
            (start, end, held.tail if f is held.target else b"")
            for f, (start, end) in zip(held.fields, spans, strict=True)
        ]
        for start, end, new in sorted(edits, reverse=True):
            raw = raw[:start] + new + raw[end:]
        if self.grammar.sequenced:
            number = seq + self.inserted if seq is not None else self.last_seq + 1
            raw = _set_seq(raw, number)
            self.last_seq = number
            self.inserted += 1
        return raw

    def _seq_of(self, raw: bytes) -> int | None:
        """The event's sequence number as the provider wrote it."""
        if not self.grammar.sequenced:
            return None
        m = _SEQ.search(raw)
        return int(m.group(2)) if m else None

    def _renumber(self, raw: bytes, seq: int | None) -> bytes:
        """Shift the event's sequence number past the events egress inserted before it."""
        if seq is None:
            return raw
        number = seq + self.inserted
        self.last_seq = number
        return _set_seq(raw, number) if self.inserted else raw


def _set_seq(raw: bytes, number: int) -> bytes:
    return _SEQ.sub(lambda m: b'"sequence_number"' + m.group(1) + str(number).encode(), raw, count=1)


_MAYBE = re.compile(rb'E(?:GX_|GX"|G"|")')


def _maybe_placeholder(raw: bytes) -> bool:
    """Could this event hold a placeholder, or the start of one at the end of a literal?"""
    return _MAYBE.search(raw) is not None
