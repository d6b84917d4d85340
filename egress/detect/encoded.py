"""Encoded text that may carry a credential: base64 (a Kubernetes Secret's `data:`, a Docker
`auth`, a JWT or key wrapped once more), URL encoding and JSON `\\uXXXX` escapes.

`views(text)` finds such runs and decodes them; the scanner scans each decoded text like any
other and reports what it finds there over the encoded run, so masking replaces the encoded
text that carries the credential (and restoring puts that text back byte for byte).

Bounded and linear: base64 runs are found by C-level byte operations (one `translate` of the
text's UTF-8 that marks the base64 characters, then `find` of MIN_BASE64 marks: a few calls per
run, none per character); the URL and JSON runs by one RE2 pass each, only on text holding a
`%` or a `\\u`. At most `MAX_VIEWS` runs are decoded, and a base64 run is decoded only when it
mixes cases (one case only is a name or a constant, not base64 of text), is long enough to hold a
credential with its context and decodes to printable UTF-8.
"""

from __future__ import annotations

import binascii
import json
from dataclasses import dataclass
from urllib.parse import unquote

import re2

from egress.detect.budget import Budget
from egress.detect.offsets import CharOffsets, identity

# Shorter base64 runs hold at most a bare value, which the key-in-context rules see as it is.
MIN_BASE64 = 24
MAX_VIEWS = 256
# Decoded text with a smaller share of printable characters is binary (an image, a hash).
_PRINTABLE_SHARE = 0.9
# A budget is checked every this many base64 runs.
_CHECK_EVERY = 1024

# Base64 characters (both alphabets) become `_MARK`, every other byte a space: a run of at least
# MIN_BASE64 base64 characters is then a run of marks, found with `bytes.find`.
_BASE64_CHARS = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/_-"
_MARK = b"a"
_MARKS = bytes(_MARK[0] if c in _BASE64_CHARS else 0x20 for c in range(256))
_RUN_OF_MARKS = _MARK * MIN_BASE64
_URL_SAFE = bytes.maketrans(b"-_", b"+/")

# One RE2 pattern per escaping encoding (linear whatever the text). The URL one runs only on
# text where its gate (two escapes with only run characters between: what the pattern needs)
# occurs; the gate starts with a literal `%`, which RE2 skips to.
_URL_GATE = re2.compile(rb"%[0-9A-Fa-f]{2}[A-Za-z0-9._~+\-]*%[0-9A-Fa-f]{2}")
_URL = re2.compile(rb"[A-Za-z0-9._~+\-]*(?:%[0-9A-Fa-f]{2}[A-Za-z0-9._~+\-]*){2,}")
_JSON = re2.compile(rb"(?:[A-Za-z0-9_.:=+\-/ ]*\\u[0-9A-Fa-f]{4}){2,}[A-Za-z0-9_.:=+\-/ ]*")


@dataclass(frozen=True, slots=True)
class View:
    """`text` decodes the original text's [start, end)."""

    start: int
    end: int
    text: str
    encoding: str  # base64 | url | json


def views(text: str, data: bytes | None = None, budget: Budget | None = None) -> list[View]:
    """The decoded runs of `text` worth scanning, in order of encoding, then of position: the
    same runs, in the same order, as RE2's `[A-Za-z0-9+/_-]{24,}={0,2}`, `_URL` and `_JSON`
    would find. `data` is the text's UTF-8 (lone surrogates replaced), when the caller has it;
    `budget` is checked every `_CHECK_EVERY` base64 runs."""
    if data is None:
        data = text.encode("utf-8", errors="replace")
    ascii_only = len(data) == len(text)
    to_chars = identity if ascii_only else CharOffsets(data)
    out: list[View] = []
    marks = data.translate(_MARKS)
    size = len(data)
    at = marks.find(_RUN_OF_MARKS)
    runs = 0
    while at >= 0:
        runs += 1
        if budget is not None and runs % _CHECK_EVERY == 0:
            budget.check()
        end = marks.find(b" ", at + MIN_BASE64)
        if end < 0:
            end = size
        padded = end + 2 if data.startswith(b"==", end) else end + 1 if data.startswith(b"=", end) else end
        raw = data[at:padded]
        if not (raw.islower() or raw.isupper()):  # one case only: a name or a constant
            decoded = _base64(raw)
            if decoded is not None:
                out.append(View(to_chars(at), to_chars(padded), decoded, "base64"))
                if len(out) >= MAX_VIEWS:
                    return out
        at = marks.find(_RUN_OF_MARKS, end)
    passes = []
    if b"%" in data and _URL_GATE.search(data):
        passes.append(("url", _URL))
    if b"\\u" in data:
        passes.append(("json", _JSON))
    for kind, pattern in passes:
        to_chars = identity if ascii_only else CharOffsets(data)
        for m in pattern.finditer(data):
            decoded = _unescape(kind, m.group())
            if decoded is None:
                continue
            b_start, b_end = m.span()
            out.append(View(to_chars(b_start), to_chars(b_end), decoded, kind))
            if len(out) >= MAX_VIEWS:
                return out
    return out


def _unescape(kind: str, raw: bytes) -> str | None:
    text = raw.decode("ascii")
    try:
        decoded = unquote(text, errors="strict") if kind == "url" else json.loads(f'"{text}"')
    except ValueError:  # a bad escape, or bytes that are not UTF-8
        return None
    return decoded if decoded != text and _printable(decoded) else None


def _base64(raw: bytes) -> str | None:
    body = raw.rstrip(b"=")
    if len(body) < MIN_BASE64:
        return None
    if len(body) > MIN_BASE64 and _base64(body[:MIN_BASE64]) is None:
        return None  # its first 18 bytes are not text: the whole is not worth decoding
    padding = b"=" * (-len(body) % 4)
    try:
        if b"-" in body or b"_" in body:  # the URL-safe alphabet (`+` and `/` read the same)
            decoded = binascii.a2b_base64(body.translate(_URL_SAFE) + padding, strict_mode=False)
        else:
            decoded = binascii.a2b_base64(body + padding, strict_mode=True)
        text = decoded.decode("utf-8")
    except (binascii.Error, ValueError):
        return None
    return text if _printable(text) else None


def _printable(text: str) -> bool:
    if not text:
        return False
    if text.isprintable():
        return True
    printable = sum(1 for c in text if c.isprintable() or c in "\n\r\t")
    return printable >= _PRINTABLE_SHARE * len(text)
