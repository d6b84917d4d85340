"""Code to a stream of normalised tokens, with Pygments as the lexer.

Why Pygments: it is a pure-Python, well-kept library with lexers for some 600 languages behind
one interface (`get_tokens_unprocessed`), it needs no compiled grammars per language (as
tree-sitter does), and its token types are a shared hierarchy (Comment, String, Name, Keyword,
…), which is what normalisation needs: the same rule for every language.

Normalisation makes the stream survive what agents and people do to code:
- whitespace, comments and docstrings are dropped (reindenting, reflowing, adding or removing
  comments change nothing);
- every identifier loses its name but keeps who it is: it becomes "the name last seen d names
  ago" (d ≤ NAME_REACH), or "a name not seen within NAME_REACH names". A consistent renaming
  changes nothing, yet `x = f(x)` and `x = f(y)` differ: the structure of which names repeat
  is the most telling part of code once the names are gone. Builtins (`len`, `self`) are kept;
- every string literal, however it is split into tokens (prefixes, escapes, the expressions
  interpolated into it), becomes one `S`; every number `0`;
- keywords, operators and punctuation are kept as written: they are the code's shape;
- a line break (any run of them, blank lines included) is one token: reindenting, removing or
  adding whole comment lines keep it, and it tells `f(a)` on one line from a call spread over two.

Each normalised token is a stable 64-bit value (BLAKE2b of its text), so fingerprints computed by
different processes and versions of Python agree (Python's own `hash` of a string does not).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from pygments.lexer import Lexer
from pygments.lexers import get_lexer_by_name, get_lexer_for_filename
from pygments.token import Comment, Keyword, Literal, Name, Number, Operator, Punctuation, String, Text, Whitespace
from pygments.util import ClassNotFound

# How far back (in identifiers) a repeated identifier is recognised as the same one. A small
# reach keeps an excerpt's tokens equal to its file's after a few lines: at the start of an
# excerpt, a name last seen just before the excerpt began reads as new there, not in the file.
NAME_REACH = 8

# What a Pygments token type becomes.
_DROP, _NAME, _STRING, _NUMBER, _KEEP, _INTERPOL, _TEXT = range(7)


@dataclass(frozen=True, slots=True)
class Tokens:
    """A text's normalised tokens: `values[i]` is token i's 64-bit value, `lines[i]` its 1-based line."""

    values: np.ndarray  # uint64
    lines: np.ndarray  # uint32

    def __len__(self) -> int:
        return len(self.values)


def _category(ttype: object) -> int:
    if ttype in String.Interpol:
        return _INTERPOL
    if ttype in Comment or ttype in String.Doc or ttype in Whitespace:
        return _DROP
    if ttype in String or ttype in Literal.String:
        return _STRING
    if ttype in Number:
        return _NUMBER
    if ttype in Name.Builtin or ttype in Keyword or ttype in Operator or ttype in Punctuation:
        return _KEEP
    if ttype in Name:
        return _NAME
    if ttype in Text:
        return _TEXT  # whitespace is dropped; other text is kept (a lexer's catch-all)
    if ttype in Literal:
        return _NUMBER
    return _KEEP


def _value(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).digest(), "little")


class Normaliser:
    """Normalised tokens of a text for one language. Not thread-safe for the same instance only
    in its caches, which are idempotent (a race fills an entry twice with the same value)."""

    def __init__(self, lexer: Lexer) -> None:
        self.lexer = lexer
        self.language = lexer.aliases[0] if lexer.aliases else lexer.name
        self._categories: dict[object, int] = {}
        self._values: dict[str, int] = {}
        self._new_name = _value("N")
        self._names = [_value(f"N{d}") for d in range(NAME_REACH + 1)]  # [d]: the name seen d ago
        self._string = _value("S")
        self._number = _value("0")
        self._newline = _value("\n")

    def tokens(self, text: str) -> Tokens:
        categories = self._categories
        values = self._values
        out: list[int] = []
        offsets: list[int] = []
        previous_string = False
        interpolating = 0  # inside `{…}` of an f-string / template: part of the literal
        string, number, newline = self._string, self._number, self._newline
        new_name, names = self._new_name, self._names
        seen: dict[str, int] = {}  # identifier -> its last position among the identifiers
        count = 0
        for offset, ttype, value in self.lexer.get_tokens_unprocessed(text):
            category = categories.get(ttype)
            if category is None:
                category = categories[ttype] = _category(ttype)
            if category == _INTERPOL:
                interpolating = max(0, interpolating + value.count("{") - value.count("}"))
                continue
            if interpolating:
                continue
            if category == _TEXT and value.strip():
                category = _KEEP  # a lexer's catch-all text that is not whitespace
            if category == _DROP or category == _TEXT:
                if "\n" in value and out and out[-1] != newline:
                    out.append(newline)  # line structure: one token per run of line breaks
                    offsets.append(offset)
                    previous_string = False
                continue
            if category == _STRING:
                if previous_string:
                    continue  # the parts of one literal (prefix, escapes, interpolation) are one S
                previous_string = True
                out.append(string)
                offsets.append(offset)
                continue
            previous_string = False
            if category == _NAME:
                ago = count - seen.get(value, -NAME_REACH - 1)
                out.append(names[ago] if ago <= NAME_REACH else new_name)
                seen[value] = count
                count += 1
            elif category == _NUMBER:
                out.append(number)
            else:
                word = value.strip()
                v = values.get(word)
                if v is None:
                    v = values[word] = _value(word)
                out.append(v)
            offsets.append(offset)
        return Tokens(np.array(out, dtype=np.uint64), _line_numbers(text, offsets))


def _line_numbers(text: str, offsets: list[int]) -> np.ndarray:
    if not offsets:
        return np.zeros(0, dtype=np.uint32)
    raw = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
    newlines = np.flatnonzero(raw == 10)
    return (np.searchsorted(newlines, np.array(offsets, dtype=np.int64)) + 1).astype(np.uint32)


def lexer_for_path(path: str) -> Lexer | None:
    """The lexer for a file name, or None when Pygments knows no language for it."""
    name = path.rsplit("/", 1)[-1]
    dot = name.rfind(".")
    return _lexer_for_name("x" + name[dot:] if dot > 0 else name)


@lru_cache(maxsize=1024)
def _lexer_for_name(name: str) -> Lexer | None:
    # Keyed by extension (Pygments matches file names against patterns: slow, so once per suffix).
    try:
        return get_lexer_for_filename(name, stripnl=False, ensurenl=False)
    except ClassNotFound:
        return None


def lexer_named(name: str) -> Lexer:
    """The lexer of a language as Pygments names it (ValueError if it knows none)."""
    try:
        return get_lexer_by_name(name.lower(), stripnl=False, ensurenl=False)
    except ClassNotFound:
        for alias in (name.lower().replace(" ", ""), name.lower().replace(" ", "-")):
            try:
                return get_lexer_by_name(alias, stripnl=False, ensurenl=False)
            except ClassNotFound:
                continue
    raise ValueError(f"Pygments has no lexer named {name!r}")
