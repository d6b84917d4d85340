"""Each API's answer stream as text streams: the grammar that streaming restoration reads.

An answer's events carry text in pieces (an Anthropic content block's deltas, a Chat choice's
content or tool-call arguments, a Responses output item's deltas). A grammar says, for one
event, which text literals in it continue which stream, which streams it ends, and whether it
is a copy of finished text. The restoring engine (`egress.mask.streams.StreamRestorer`) does the
rest, the same way for every API; a new API needs only its grammar here.

Invariant: signed or opaque text (Anthropic `thinking` and `signature`, encrypted reasoning) is
never named as a field, and `SKIP_KEYS` keeps the whole-event restore out of it: its signature
covers the masked text.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Collection, Hashable
from dataclasses import dataclass, field
from typing import Any

import orjson

from egress.wire.sse import data_span

# Keys whose string values are signed or opaque in some API's answer: never restored.
SKIP_KEYS = frozenset({b"thinking", b"signature", b"encrypted_content", b"thoughtSignature"})
# Keys whose string values are JSON text (tool-call arguments): a value inside is escaped twice.
DEPTH2_KEYS = frozenset({b"arguments", b"partial_json"})


@dataclass(frozen=True, slots=True)
class Field:
    """One streamed text literal inside an event: the `occurrence`-th literal of key `key`."""

    stream: Hashable
    key: bytes
    occurrence: int
    depth: int


ALL = None  # "every stream" in Plan.ends_before


@dataclass(slots=True)
class Plan:
    fields: list[Field] = field(default_factory=list)
    ends_before: list[Hashable] | None = field(default_factory=list)  # None: every stream
    final: frozenset[Hashable] = frozenset()  # streams this event itself ends: hold nothing back
    whole: bool = False  # restore every placeholder in the event (a copy of finished text)


class StreamGrammar(ABC):
    """One answer stream's grammar (a new one per answer: it may remember what it has seen)."""

    sequenced = False  # events carry sequence_number, renumbered after an inserted event
    response_id: str | None = None  # the id the provider gave this answer, where the API has one

    @abstractmethod
    def plan(self, doc: dict[str, Any], held: Collection[Hashable]) -> Plan:
        """What this event holds: streamed text fields, streams it ends, copies. `held`: the
        streams whose tail the engine holds back now."""

    def plan_raw(self, data: bytes) -> Plan | None:
        """A plan for a data line that is not JSON (Chat's `[DONE]`); None: pass through."""
        return None

    def observe(self, raw: bytes) -> None:  # noqa: B027 - an optional hook, empty by default
        """Facts read from every event, whatever it holds (the Responses answer's id)."""


class MessagesGrammar(StreamGrammar):
    """Anthropic Messages: one stream per content block index."""

    def plan(self, doc: dict[str, Any], held: Collection[Hashable]) -> Plan:
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


class ChatGrammar(StreamGrammar):
    """Chat Completions: per choice, one stream for content, refusal and each tool call."""

    def plan_raw(self, data: bytes) -> Plan | None:
        return Plan(ends_before=ALL) if data == b"[DONE]" else None

    def plan(self, doc: dict[str, Any], held: Collection[Hashable]) -> Plan:
        choices = doc.get("choices")
        if not isinstance(choices, list) or not choices:
            return Plan(whole=True)
        plan = Plan()
        counts: dict[bytes, int] = {}
        final: set[Hashable] = set()
        ending: list[Any] = []

        def add(stream: tuple[Any, ...], key: bytes, depth: int) -> None:
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
                final.update(f.stream for f in plan.fields if _part(f.stream, 0) == ci)
        plan.final = frozenset(final)
        plan.ends_before = [s for s in held if _part(s, 0) in ending]
        if not plan.fields:
            plan.whole = True
        return plan


class CompletionsGrammar(StreamGrammar):
    """Legacy text completions: one stream per choice, its `text` (`logprobs` tokens are not
    text the client reads as the answer and are left as the model wrote them)."""

    def plan_raw(self, data: bytes) -> Plan | None:
        return Plan(ends_before=ALL) if data == b"[DONE]" else None

    def plan(self, doc: dict[str, Any], held: Collection[Hashable]) -> Plan:
        choices = doc.get("choices")
        if not isinstance(choices, list) or not choices:
            return Plan(whole=True)
        plan = Plan()
        ending: list[Any] = []
        final: set[Hashable] = set()
        for choice in choices:
            if not isinstance(choice, dict):
                continue
            ci = choice.get("index", 0)
            if isinstance(choice.get("text"), str):
                plan.fields.append(Field(("text", ci), b"text", len(plan.fields), 1))
                if choice.get("finish_reason") is not None:
                    final.add(("text", ci))
            if choice.get("finish_reason") is not None:
                ending.append(ci)
        plan.final = frozenset(final)
        plan.ends_before = [s for s in held if _part(s, 1) in ending]
        if not plan.fields:
            plan.whole = True
        return plan


class ResponsesGrammar(StreamGrammar):
    """OpenAI Responses: one stream per (delta event type, output index, content or summary index)."""

    sequenced = True

    def observe(self, raw: bytes) -> None:
        if self.response_id is None and b'"response.created"' in raw:
            span = data_span(raw)
            try:
                doc = orjson.loads(raw[span[0] : span[1]]) if span else None
            except orjson.JSONDecodeError:
                return
            response = doc.get("response") if isinstance(doc, dict) else None
            if isinstance(response, dict) and isinstance(response.get("id"), str):
                self.response_id = response["id"]

    def plan(self, doc: dict[str, Any], held: Collection[Hashable]) -> Plan:
        kind = doc.get("type")
        if not isinstance(kind, str):
            return Plan(whole=True)
        oi = doc.get("output_index")
        sub = doc.get("content_index", doc.get("summary_index"))
        if kind.endswith(".delta") and isinstance(doc.get("delta"), str):
            depth = 2 if "function_call_arguments" in kind else 1
            return Plan(fields=[Field((kind, oi, sub), b"delta", 0, depth)])
        if kind == "response.output_item.done":
            return Plan(ends_before=[s for s in held if _part(s, 1) == oi], whole=True)
        if kind == "response.content_part.done":
            return Plan(ends_before=[s for s in held if _part(s, 1) == oi and _part(s, 2) == sub], whole=True)
        if kind.endswith(".done"):
            return Plan(ends_before=[(kind[:-5] + ".delta", oi, sub)], whole=True)
        if kind in ("response.completed", "response.incomplete", "response.failed", "error"):
            return Plan(ends_before=ALL, whole=True)
        return Plan(whole=True)


class GeminiGrammar(StreamGrammar):
    """Gemini (`streamGenerateContent?alt=sse`): every event is a whole GenerateContentResponse.
    Per candidate, one stream for its answer text and one for its thought text, continued by
    each event's `content.parts[].text`; a candidate's `finishReason` ends its streams. Function
    calls arrive whole (their `args` are restored in place, depth 1); `thoughtSignature` is
    opaque (SKIP_KEYS). Literals are counted in document order, every string-valued `text` key
    included (a function call's args may hold one), as the engine finds them in the bytes."""

    def plan(self, doc: dict[str, Any], held: Collection[Hashable]) -> Plan:
        candidates = doc.get("candidates")
        if not isinstance(candidates, list) or not candidates:
            return Plan(ends_before=ALL if doc.get("error") else [], whole=True)
        plan = Plan()
        seen = 0  # string-valued `text` literals before the current position
        whole = False  # a part that is not text (a function call): restored in place
        ending: list[Any] = []
        final: set[Hashable] = set()
        answering: set[Any] = set()  # candidates whose answer text this event continues
        for key, value in doc.items():
            if key != "candidates":
                seen += _text_literals(value)
                continue
            for candidate in value:
                if not isinstance(candidate, dict):
                    seen += _text_literals(candidate)
                    continue
                ci = candidate.get("index", 0)
                for ckey, cvalue in candidate.items():
                    if ckey != "content" or not isinstance(cvalue, dict):
                        seen += _text_literals(cvalue)
                        continue
                    for pkey, parts in cvalue.items():
                        if pkey != "parts" or not isinstance(parts, list):
                            seen += _text_literals(parts)
                            continue
                        for part in parts:
                            if not isinstance(part, dict):
                                seen += _text_literals(part)
                                continue
                            for k, v in part.items():
                                if k == "text" and isinstance(v, str):
                                    thought = part.get("thought") is True
                                    plan.fields.append(Field((ci, "thought" if thought else "text"), b"text", seen, 1))
                                    seen += 1
                                    if not thought:
                                        answering.add(ci)
                                elif k not in ("thought", "thoughtSignature"):
                                    whole = True
                                    seen += _text_literals(v)
                if candidate.get("finishReason"):
                    ending.append(ci)
                    final.update(f.stream for f in plan.fields if _part(f.stream, 0) == ci)
        # A candidate's thoughts are over once its answer text begins; its finish ends both.
        final.update(
            f.stream for f in plan.fields if _part(f.stream, 1) == "thought" and _part(f.stream, 0) in answering
        )
        plan.final = frozenset(final)
        plan.ends_before = [
            s for s in held if _part(s, 0) in ending or (_part(s, 0) in answering and _part(s, 1) == "thought")
        ]
        plan.whole = whole or not plan.fields
        return plan


def _text_literals(value: Any) -> int:
    """String-valued `text` keys in a JSON value (the literals `"text": "…"` in its bytes)."""
    if isinstance(value, dict):
        return sum(1 if k == "text" and isinstance(v, str) else _text_literals(v) for k, v in value.items())
    if isinstance(value, list):
        return sum(_text_literals(v) for v in value)
    return 0


def _part(stream: Hashable, i: int) -> Any:
    """Part `i` of a tuple stream key (these grammars key every stream by a tuple)."""
    return stream[i] if isinstance(stream, tuple) else None
