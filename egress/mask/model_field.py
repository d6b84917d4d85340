"""The model's name, edited in place: the mapped id in the request that leaves, the client's own
name where the answer echoes it (egress.route.model_map says which id an endpoint gets).

Byte-level, like masking and restoring: only the string literal of the `model` value changes;
every other byte reaches the provider as the agent wrote it, and the client as the provider wrote
it. A literal is found on the quote view (`literals.quote_view`), where every `"` left delimits a
string, so a `"model"` inside some text (its quotes escaped) is never taken for the key.

Invariants:
- the request's first top-level `model` literal is rewritten, nested `model` keys (a tool's
  schema) never. A body that repeats the key is not scanned to its end for the others (that
  would cost a pass over every body): the policy decided on the parsed name (orjson keeps the
  last), whose mapped id replaces the first, so a provider reading either one is asked for the
  model the policy saw, never for another;
- in an answer, only the literal at the API's echo path (`ApiSpec.model_echo_body`,
  `model_echo_event`) is rewritten, the first one, and only when the client's name differs from
  the id the upstream was asked for; an event without that path is passed on as it came.
"""

from __future__ import annotations

import re

import orjson

from egress.mask.literals import quote_view, splice
from egress.wire.sse import data_span

_KEY = b'"model"'
_AFTER_KEY = re.compile(rb'\s*:\s*"')
_STRING = re.compile(rb'"[^"]*"')
# The tokens that give a JSON text its shape, on the quote view: strings, brackets, separators.
_TOKEN = re.compile(rb'"[^"]*"|[{}\[\],]')


def encoded(model: str) -> bytes:
    """The content of a JSON string literal holding `model` (no quotes)."""
    return orjson.dumps(model)[1:-1]


def top_level_spans(raw: bytes, first_only: bool = False) -> list[tuple[int, int]]:
    """Content spans of the string values of top-level `model` keys in a JSON object text (the
    first only, with `first_only`).

    A `"model"` whose quote is not escaped and that a `:` follows is an object key (in valid
    JSON a closing quote is followed by `,` `:` `]` `}`, never a letter). Its depth is the
    brackets opened before it, counted on the quote view of the text before it with every
    string emptied (C speed). Only that prefix is viewed, cut where a key starts (no string is
    split): a body that names its model first, as the agents do, costs a few bytes' work; one
    that names it last (the OpenAI Python SDK) one pass over its messages."""
    spans: list[tuple[int, int]] = []
    depth = 0
    last = 0
    at = raw.find(_KEY)
    while at >= 0:
        after = _AFTER_KEY.match(raw, at + len(_KEY))
        if after is not None and not _escaped(raw, at):
            seg = _STRING.sub(b'""', quote_view(raw[last:at]))
            depth += seg.count(b"{") + seg.count(b"[") - seg.count(b"}") - seg.count(b"]")
            last = at
            if depth == 1:
                end = _string_end(raw, after.end())
                if end < 0:
                    break
                spans.append((after.end(), end))
                if first_only:
                    break
        at = raw.find(_KEY, at + len(_KEY))
    return spans


def _escaped(raw: bytes, i: int) -> bool:
    """Is `raw[i]` escaped (an odd run of backslashes before it)?"""
    j = i - 1
    while j >= 0 and raw[j] == 0x5C:
        j -= 1
    return (i - 1 - j) % 2 == 1


def _string_end(raw: bytes, start: int) -> int:
    """Index of the quote closing the string whose content starts at `start`, or -1."""
    end = raw.find(b'"', start)
    while end >= 0 and _escaped(raw, end):
        end = raw.find(b'"', end + 1)
    return end


def with_model(body: bytes, model: str) -> bytes | None:
    """The request `body` with its (first) top-level `model` value set to `model`; None when the
    body names its model in no form egress can rewrite in place (the key spelled with escapes)."""
    spans = top_level_spans(body, first_only=True)
    if not spans:
        return None
    value = encoded(model)
    return splice(body, [(start, end, value) for start, end in spans])


def path_span(raw: bytes, path: tuple[str, ...], start: int = 0, end: int | None = None) -> tuple[int, int] | None:
    """Content span of the first string value at the object key `path` (top-level key first) in
    the JSON text `raw[start:end]`; None when there is none.

    Walks the tokens from the start and stops at the first match: the APIs write the model
    before the long parts of an answer (content, output), so this reads a few tokens."""
    view = quote_view(raw)
    want = tuple(f'"{key}"'.encode() for key in path)
    depth = len(want)
    # One frame per open container: the key being read in it (None in an array, or before a key).
    keys: list[bytes | None] = []
    objects: list[bool] = []
    expect_key = False
    for m in _TOKEN.finditer(view, start, len(view) if end is None else end):
        token = m.group()
        first = token[0]
        if first == 0x22:  # '"'
            if expect_key:
                keys[-1] = token
                expect_key = False
            elif len(keys) == depth and tuple(keys) == want:
                return m.start() + 1, m.end() - 1
        elif first == 0x7B:  # '{'
            keys.append(None)
            objects.append(True)
            expect_key = True
        elif first == 0x5B:  # '['
            keys.append(None)
            objects.append(False)
            expect_key = False
        elif first == 0x2C:  # ','
            expect_key = bool(objects) and objects[-1]
        else:  # '}' or ']'
            if not keys:
                return None
            keys.pop()
            objects.pop()
            expect_key = False
            if not keys:
                return None  # the top-level value is over
    return None


class ModelEcho:
    """Puts the client's model name back where an answer echoes the upstream's id.

    `body` and `event` are the API's echo paths in a whole answer and in a stream event's data;
    an empty path means the API echoes nothing there."""

    __slots__ = ("_value", "_body_key", "_event_key", "body_path", "event_path")

    def __init__(self, client_model: str, body_path: tuple[str, ...], event_path: tuple[str, ...]) -> None:
        self._value = encoded(client_model)
        # A quick test before any walk: the last key of the path, quoted, must be in the bytes.
        self._body_key = f'"{body_path[-1]}"'.encode() if body_path else b""
        self._event_key = f'"{event_path[-1]}"'.encode() if event_path else b""
        self.body_path = body_path
        self.event_path = event_path

    def body(self, raw: bytes) -> bytes:
        if not self.body_path or self._body_key not in raw:
            return raw
        return self._set(raw, path_span(raw, self.body_path))

    def event(self, raw: bytes) -> bytes:
        """One whole SSE event; the data of a single `data:` line is edited, else it is left."""
        if not self.event_path or self._event_key not in raw:
            return raw
        span = data_span(raw)
        if span is None:
            return raw
        return self._set(raw, path_span(raw, self.event_path, span[0], span[1]))

    def _set(self, raw: bytes, span: tuple[int, int] | None) -> bytes:
        if span is None or raw[span[0] : span[1]] == self._value:
            return raw
        return raw[: span[0]] + self._value + raw[span[1] :]
