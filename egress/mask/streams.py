"""Streaming restoration: put masked values back into an answer event by event, never buffering it.

One engine, three event grammars. Each API names its text-bearing streams (an Anthropic content
block, a Chat choice's content or tool-call arguments, a Responses output item's text or
arguments); the engine keeps, per stream, only the tail that could still grow into a placeholder:

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
from abc import ABC, abstractmethod
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Protocol

import orjson

from egress.mask import literals
from egress.mask.literals import Prefixes, Replacements

SKIP_KEYS = frozenset({b"thinking", b"signature", b"encrypted_content"})
DEPTH2_KEYS = frozenset({b"arguments", b"partial_json"})
_SEQ = re.compile(rb'"sequence_number"(\s*:\s*)(\d+)')
_KEY_PATTERNS: dict[bytes, re.Pattern[bytes]] = {}


def _pattern(key: bytes) -> re.Pattern[bytes]:
    pattern = _KEY_PATTERNS.get(key)
    if pattern is None:
        pattern = _KEY_PATTERNS[key] = literals.key_pattern(key)
    return pattern


@dataclass(frozen=True, slots=True)
class Field:
    """One streamed text literal inside an event: the `occurrence`-th literal of key `key`."""

    stream: Hashable
    key: bytes
    occurrence: int
    depth: int


ALL = None  # "every stream" in Plan.ends


@dataclass(slots=True)
class Plan:
    fields: list[Field] = field(default_factory=list)
    ends_before: list[Hashable] | None = field(default_factory=list)  # None: every stream
    final: frozenset[Hashable] = frozenset()  # streams this event itself ends: hold nothing back
    whole: bool = False  # restore every placeholder in the event (a copy of finished text)


@dataclass(slots=True)
class _Held:
    tail: bytes
    template: bytes  # the last event of this stream, to carry the tail when it must be released
    fields: list[Field]
    target: Field


class _Map(Replacements, Prefixes, Protocol):
    """What the engine needs of a restore map (see egress.mask.restore.RestoreMap)."""


class StreamRestorer(ABC):
    """Restores one answer stream. Subclasses say how their API's events map onto streams."""

    sequenced = False  # Responses: events carry sequence_number, renumbered after an insertion

    def __init__(self, table: _Map) -> None:
        self.table = table
        self.held: dict[Hashable, _Held] = {}
        self.inserted = 0  # events added so far (Responses sequence numbers shift by this)
        self.last_seq = -1
        self.response_id: str | None = None
        self.dropped = 0  # bytes of placeholder fragments dropped by `finish` (a cut stream)

    # --- per API ---------------------------------------------------------------------------

    @abstractmethod
    def plan(self, doc: dict) -> Plan:
        """What this event of the API holds: streamed text fields, streams it ends, copies."""

    def plan_raw(self, data: bytes) -> Plan | None:
        """A plan for a data line that is not JSON (Chat's `[DONE]`); None: pass through."""
        return None

    def observe(self, raw: bytes) -> None:  # noqa: B027 - an optional hook, empty by default
        """Hook for facts read from the stream whatever it holds (the Responses response id)."""

    # --- the engine --------------------------------------------------------------------------

    def feed(self, raw: bytes) -> bytes:
        self.observe(raw)
        if not self.held and not self.inserted and not _maybe_placeholder(raw):
            return raw
        span = _data_span(raw)
        if span is None:
            return raw
        data = raw[span[0] : span[1]]
        try:
            doc = orjson.loads(data)
        except orjson.JSONDecodeError:
            plan = self.plan_raw(data.strip())
            if plan is None:
                return raw
        else:
            if not isinstance(doc, dict):
                return raw
            plan = self.plan(doc)
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
        if self.sequenced:
            number = seq + self.inserted if seq is not None else self.last_seq + 1
            raw = _set_seq(raw, number)
            self.last_seq = number
            self.inserted += 1
        return raw

    def _seq_of(self, raw: bytes) -> int | None:
        """The event's sequence number as the provider wrote it."""
        if not self.sequenced:
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


def _data_span(raw: bytes) -> tuple[int, int] | None:
    """The payload of the event's one `data:` line (multi-line data passes through untouched)."""
    start = raw.find(b"data:")
    if start < 0 or (start > 0 and raw[start - 1] not in b"\r\n"):
        return None
    start += 5
    if start < len(raw) and raw[start] == 0x20:
        start += 1
    end = raw.find(b"\n", start)
    if end < 0:
        end = len(raw)
    if end > start and raw[end - 1] == 0x0D:
        end -= 1
    if raw.find(b"data:", end) >= 0:
        return None
    return start, end


# --- the three APIs -----------------------------------------------------------------------------


class AnthropicStream(StreamRestorer):
    def plan(self, doc: dict) -> Plan:
        kind = doc.get("type")
        if kind == "content_block_delta":
            index = doc.get("index")
            delta = doc.get("delta")
            dtype = delta.get("type") if isinstance(delta, dict) else None
            if dtype == "text_delta":
                return Plan(fields=[Field(index, b"text", 0, 1)])
            if dtype == "input_json_delta":
                return Plan(fields=[Field(index, b"partial_json", 0, 2)])
            if dtype in ("thinking_delta", "signature_delta"):
                return Plan()
            return Plan(whole=True)
        if kind == "content_block_stop":
            return Plan(ends_before=[doc.get("index")])
        if kind in ("message_delta", "message_stop", "error"):
            return Plan(ends_before=ALL, whole=True)
        if kind == "content_block_start":
            block = doc.get("content_block")
            if isinstance(block, dict) and block.get("type") in ("thinking", "redacted_thinking"):
                return Plan()
        return Plan(whole=True)


class ChatStream(StreamRestorer):
    def plan_raw(self, data: bytes) -> Plan | None:
        return Plan(ends_before=ALL) if data == b"[DONE]" else None

    def plan(self, doc: dict) -> Plan:
        choices = doc.get("choices")
        if not isinstance(choices, list) or not choices:
            return Plan(whole=True)
        plan = Plan()
        counts: dict[bytes, int] = {}
        final: set[Hashable] = set()
        ending: list[int] = []

        def add(stream: Hashable, key: bytes, depth: int) -> None:
            n = counts.get(key, 0)
            counts[key] = n + 1
            plan.fields.append(Field(stream, key, n, depth))

        for choice in choices:
            if not isinstance(choice, dict):
                continue
            ci = choice.get("index", 0)
            delta = choice.get("delta")
            if isinstance(delta, dict):
                for key in ("content", "refusal"):
                    if isinstance(delta.get(key), str):
                        add((ci, key), key.encode(), 1)
                calls = delta.get("tool_calls")
                if isinstance(calls, list):
                    for call in calls:
                        fn = call.get("function") if isinstance(call, dict) else None
                        if isinstance(fn, dict) and isinstance(fn.get("arguments"), str):
                            add((ci, "tool", call.get("index", 0)), b"arguments", 2)
            if choice.get("finish_reason") is not None:
                ending.append(ci)
                final.update(f.stream for f in plan.fields if f.stream[0] == ci)  # type: ignore[index]
        plan.final = frozenset(final)
        plan.ends_before = [s for s in self.held if s[0] in ending]  # type: ignore[index]
        if not plan.fields:
            plan.whole = True
        return plan


class ResponsesStream(StreamRestorer):
    sequenced = True

    def observe(self, raw: bytes) -> None:
        if self.response_id is None and b'"response.created"' in raw:
            span = _data_span(raw)
            try:
                doc = orjson.loads(raw[span[0] : span[1]]) if span else None
            except orjson.JSONDecodeError:
                return
            response = doc.get("response") if isinstance(doc, dict) else None
            if isinstance(response, dict) and isinstance(response.get("id"), str):
                self.response_id = response["id"]

    def plan(self, doc: dict) -> Plan:
        kind = doc.get("type")
        if not isinstance(kind, str):
            return Plan(whole=True)
        oi = doc.get("output_index")
        sub = doc.get("content_index", doc.get("summary_index"))
        if kind.endswith(".delta") and isinstance(doc.get("delta"), str):
            depth = 2 if "function_call_arguments" in kind else 1
            return Plan(fields=[Field((kind, oi, sub), b"delta", 0, depth)])
        if kind == "response.output_item.done":
            return Plan(ends_before=[s for s in self.held if s[1] == oi], whole=True)  # type: ignore[index]
        if kind == "response.content_part.done":
            return Plan(ends_before=[s for s in self.held if s[1] == oi and s[2] == sub], whole=True)  # type: ignore[index]
        if kind.endswith(".done"):
            return Plan(ends_before=[(kind[:-5] + ".delta", oi, sub)], whole=True)
        if kind in ("response.completed", "response.incomplete", "response.failed", "error"):
            return Plan(ends_before=ALL, whole=True)
        return Plan(whole=True)
