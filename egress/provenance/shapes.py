"""Line shapes: which lines of a text could be indexed code, found before anything is lexed.

Lexing (tokens.py) is the costly part of a lookup: Pygments' lexers are pure Python, some
4 ms per kilobyte of code. Most of what an agent sends (prose, logs, code of other projects) matches
nothing, so a lookup first asks a cheaper question of every line, with a handful of regular
expression passes over the whole text and one hash per line:

- a line's shape is the line with line-number prefixes (`  12→`, `12:`), a leading `+`,
  one-line string literals (-> `S`), `#` and `//` comments and all whitespace removed, every
  word made `w` and every number `0`: `    total = price(item, 2)  # net` -> `w=w(w,0)`.
  Reindenting, renaming, adding or removing comments, numbering lines or making a diff of code
  leave the shape of its lines as it was;
- lines whose shape is shorter than MIN_SHAPE characters (blank lines, comments, `}`, `w:`)
  imports (boilerplate, which never counts in a match either) and lines starting with `-` (a
  diff's old side) are skipped; the key of a
  kept line is the hash of its shape and the shapes of the next two kept lines (three lines:
  a single line's shape, `w=w(w)`, occurs in any code);
- `egress index` stores each file's keys; the lookup holds those of the repositories it
  recognises, less idioms (keys found in more than `max_files` files), sorted.

A text is lexed only around the lines that start a key the index holds (lookup.py): a text
with none of them costs a few regular-expression passes, not a lexer. Both sides compute keys
the same way from the same code, so an excerpt of indexed code keeps the keys of every three
consecutive kept lines it carries whole: only a line the transformation itself changed (a diff's
changed line, an inserted line) breaks the keys that span it.
"""

from __future__ import annotations

import re
import zlib

import numpy as np

MIN_SHAPE = 3  # a shorter shape (blank, `}`, `ww` as in `return x`) is skipped: it tells nothing
SPAN = 3  # kept lines per key

# Bytes patterns over the UTF-8 text: about twice as fast as str patterns; a non-ASCII
# character is neither a word nor a blank here, on both sides alike.
_PREFIX = re.compile(r"^[ \t]*(?:\d{1,7}(?:→|:|\t))?[ \t]*\+?".encode(), re.MULTILINE)
_STRING = re.compile(rb"\"(?:[^\"\\\n]|\\.)*\"|'(?:[^'\\\n]|\\.)*'")
_COMMENT = re.compile(rb"(?:#|//)[^\n]*")  # a `#` or `//` to the end of the line (a URL's too: alike)
# Words reserved in Python and reserved or rare as names in most other languages stay as written:
# renaming never changes them, and they tell `if w:` from `w(w):`. Every other word is `w`: a
# keyword of one language only (`type`, `match`, `new`, `default`, `func`) is a name in another,
# and a renamed name must keep its shape.
_KEYWORDS = (
    "and as assert async await break class continue def del elif else except finally for from if import "
    "in is lambda nonlocal not or pass raise return self try while with yield None True False"
).split()
_WORD = re.compile(rb"\b(?!(?:" + "|".join(_KEYWORDS).encode() + rb")\b)\w+")  # numbers too
_BLANKS = b" \t\r\f\v"
# Skipped lines: imports (boilerplate) and lines that start with `-` (a diff's old side: the new
# side is kept, so a changed line counts once; in code, a rare line such as `-1,`: alike).
_SKIPPED = (b"import", b"fromw", b"usingw", b"package", b"require(", b"-")

_MUL = (np.uint64(0x9E3779B97F4A7C15), np.uint64(0xC2B2AE3D27D4EB4F), np.uint64(0x165667B19E3779F9))


def shapes(text: str) -> list[bytes]:
    """The shape of each line of `text` (see the module docstring), one per line."""
    data = _PREFIX.sub(b"", text.encode("utf-8", "surrogatepass"))
    data = _STRING.sub(b"S", data)
    data = _COMMENT.sub(b"", data)
    return _WORD.sub(b"w", data).translate(None, _BLANKS).split(b"\n")


def line_keys(text: str) -> tuple[np.ndarray, np.ndarray]:
    """(keys, lines): keys[i] covers the kept lines lines[i], lines[i + 1], lines[i + 2]
    (0-based line numbers; `lines` has SPAN - 1 more entries than `keys`, or is empty)."""
    kept: list[int] = []
    hashes: list[int] = []
    for i, shape in enumerate(shapes(text)):
        if len(shape) >= MIN_SHAPE and not shape.startswith(_SKIPPED):
            kept.append(i)
            hashes.append(zlib.crc32(shape))
    if len(kept) < SPAN:
        return np.zeros(0, dtype=np.uint64), np.zeros(0, dtype=np.int64)
    h = np.array(hashes, dtype=np.uint64)
    n = len(h) - SPAN + 1
    keys = np.zeros(n, dtype=np.uint64)
    for j in range(SPAN):
        keys = keys + h[j : j + n] * _MUL[j]  # wraps mod 2**64
    return keys, np.array(kept, dtype=np.int64)


def file_keys(text: str) -> bytes:
    """The distinct keys of a file, as `egress index` stores them (uint64 little-endian, sorted)."""
    return np.unique(line_keys(text)[0]).astype("<u8").tobytes()
