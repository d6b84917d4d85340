"""Byte-level work on JSON text: find the string literal around a position, and put restored values
into literals without re-encoding anything else.

Why bytes: an answer must reach the client exactly as the provider wrote it, except where a
placeholder stood, and a request must reach the provider exactly as the agent wrote it, except
where a value was masked. Re-serialising would change number formats, escapes and spacing.
Placeholders ([A-Za-z0-9_] only) appear verbatim in raw JSON at any nesting depth.

The search for string boundaries runs on a *view* of the JSON (`quote_view`): the same length,
with every escape pair (`\\\\`, `\\"`) blanked, so that every `"` left in it delimits a string.
Positions in the view are positions in the raw bytes.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterator, Mapping, Sequence
from typing import Protocol

from egress.mask.placeholders import PATTERN

_BACKSLASH = 0x5C
_WS = b" \t\r\n"


class Replacements(Protocol):
    """A placeholder's replacement at depth 1 (inside a JSON string) and depth 2 (inside JSON text
    held in a string, e.g. tool-call arguments): the value escaped once or twice."""

    def get(self, placeholder: bytes) -> tuple[bytes, bytes] | None: ...


def quote_view(raw: bytes) -> bytes:
    """`raw` with escaped backslashes and escaped quotes blanked out (same length).

    In valid JSON a backslash always starts an escape; scanning left to right, runs of
    backslashes pair up exactly as `bytes.replace` pairs them, so what is left of `"` are the
    string delimiters and nothing else."""
    if b"\\" not in raw:
        return raw
    return raw.replace(b"\\\\", b"\0\0").replace(b'\\"', b"\0\0")


def literal_start(view: bytes, pos: int) -> int:
    """Index of the opening quote of the string literal that contains `pos`, or -1."""
    return view.rfind(b'"', 0, pos)


def literal_end(view: bytes, content_start: int) -> int:
    """Index of the closing quote of the literal whose content starts at `content_start`, or -1."""
    return view.find(b'"', content_start)


def key_of(view: bytes, quote: int) -> bytes | None:
    """The object key whose value is the literal opening at `quote`; None for an array element."""
    j = quote - 1
    while j >= 0 and view[j] in _WS:
        j -= 1
    if j < 0 or view[j] != 0x3A:  # ':'
        return None
    j -= 1
    while j >= 0 and view[j] in _WS:
        j -= 1
    if j < 0 or view[j] != 0x22:
        return None
    start = view.rfind(b'"', 0, j)
    return view[start + 1 : j] if start >= 0 else None


def inside_escape(raw: bytes, i: int) -> bool:
    """True if `raw[i]` is not where a character starts: right after a backslash, or within the
    hex digits of a `\\uXXXX` escape. Cutting or matching there would split an escape."""
    b = i - 1
    while b >= 0 and raw[b] == _BACKSLASH:
        b -= 1
    if (i - 1 - b) % 2 == 1:
        return True
    for k in range(max(i - 5, 0), i - 1):
        if raw[k] == _BACKSLASH and raw[k + 1] == 0x75 and not inside_escape(raw, k):  # 'u'
            return True
    return False


def field_literals(raw: bytes, pattern: re.Pattern[bytes]) -> list[tuple[int, int]]:
    """Content spans (start, end) of every string literal of one key, in document order.
    `pattern` matches `"key"\\s*:\\s*"` (see `key_pattern`); a key cannot occur inside a string,
    where every quote is escaped."""
    view = quote_view(raw)
    spans = []
    for m in pattern.finditer(view):
        end = literal_end(view, m.end())
        if end < 0:
            break
        spans.append((m.end(), end))
    return spans


def key_pattern(key: bytes) -> re.Pattern[bytes]:
    return re.compile(b'"' + re.escape(key) + rb'"\s*:\s*"')


def splice(raw: bytes, edits: Sequence[tuple[int, int, bytes]]) -> bytes:
    """`raw` with each (start, end) span replaced; `edits` sorted by start and not overlapping."""
    if not edits:
        return raw
    out: list[bytes] = []
    last = 0
    for start, end, new in edits:
        out.append(raw[last:start])
        out.append(new)
        last = end
    out.append(raw[last:])
    return b"".join(out)


def known_placeholders(
    raw: bytes, table: Replacements, start: int = 0
) -> Iterator[tuple[int, int, tuple[bytes, bytes]]]:
    """(start, end, replacements) of each issued placeholder in `raw`, left to right.

    A placeholder-shaped run that was not issued (the model invented it, or glued `EGX_` in front
    of a real one) is skipped one byte at a time, so a real placeholder inside it is still found."""
    pos = start
    while True:
        m = PATTERN.search(raw, pos)
        if m is None:
            return
        repl = table.get(m.group())
        if repl is None:
            pos = m.start() + 1
            continue
        yield m.start(), m.end(), repl
        pos = m.end()


def replace_all(
    raw: bytes, table: Replacements, *, depth2_keys: Collection[bytes], skip_keys: Collection[bytes]
) -> bytes:
    """Replace every known placeholder in `raw`, escaped for the literal it sits in.

    Literals under `skip_keys` (signed or opaque text) are left alone; unknown placeholders (the
    model invented them) are left as written."""
    if b"EGX_" not in raw:
        return raw
    view = quote_view(raw)
    edits = []
    for start, end, repl in known_placeholders(raw, table):
        quote = literal_start(view, start)
        key = key_of(view, quote) if quote >= 0 else None
        if key in skip_keys:
            continue
        edits.append((start, end, repl[1] if key in depth2_keys else repl[0]))
    return splice(raw, edits)


def restore_text(lit: bytes, table: Replacements, depth: int) -> bytes:
    """Replace known placeholders inside one literal's raw content."""
    if b"EGX_" not in lit:
        return lit
    return splice(lit, [(start, end, repl[depth - 1]) for start, end, repl in known_placeholders(lit, table)])


class Prefixes(Protocol):
    longest: int

    def could_grow(self, tail: bytes) -> bool: ...


def held_suffix(lit: bytes, table: Replacements, prefixes: Prefixes) -> int:
    """Where the tail that could still grow into a known placeholder starts (len(lit) if none).

    Only the tail after the last complete placeholder is considered, and never a tail that
    starts inside an escape sequence."""
    longest = prefixes.longest
    floor = max(len(lit) - longest + 1, 0)
    if b"EGX_" in lit:
        for _, end, _ in known_placeholders(lit, table, max(floor - longest, 0)):
            floor = max(floor, end)
    i = lit.find(b"E", floor)
    while i >= 0:
        if prefixes.could_grow(lit[i:]) and not inside_escape(lit, i):
            return i
        i = lit.find(b"E", i + 1)
    return len(lit)


Table = Mapping[bytes, tuple[bytes, bytes]]
