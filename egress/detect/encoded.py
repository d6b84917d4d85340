"""Encoded text that may carry a credential: base64 (a Kubernetes Secret's `data:`, a Docker
`auth`, a JWT or key wrapped once more), URL encoding and JSON `\\uXXXX` escapes.

`views(text)` finds such runs and decodes them; the scanner scans each decoded text like any
other and reports what it finds there over the encoded run, so masking replaces the encoded
text that carries the credential (and restoring puts that text back byte for byte).

Bounded: one RE2 pass per encoding finds the candidates, at most `MAX_VIEWS` of them are
decoded, and a base64 run is decoded only when it is long enough to hold a credential with
its context and decodes to printable UTF-8.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from urllib.parse import unquote

import re2

# Shorter base64 runs hold at most a bare value, which the key-in-context rules see as it is.
MIN_BASE64 = 24
MAX_VIEWS = 256
# Decoded text with a smaller share of printable characters is binary (an image, a hash).
_PRINTABLE_SHARE = 0.9

# One RE2 pattern per encoding (linear whatever the text); the URL and JSON ones run only on
# text holding a `%` or a `\u`.
_BASE64 = re2.compile(rb"[A-Za-z0-9+/_-]{24,}={0,2}")
_URL = re2.compile(rb"[A-Za-z0-9._~+\-]*(?:%[0-9A-Fa-f]{2}[A-Za-z0-9._~+\-]*){2,}")
_JSON = re2.compile(rb"(?:[A-Za-z0-9_.:=+\-/ ]*\\u[0-9A-Fa-f]{4}){2,}[A-Za-z0-9_.:=+\-/ ]*")


@dataclass(frozen=True, slots=True)
class View:
    """`text` decodes the original text's [start, end)."""

    start: int
    end: int
    text: str
    encoding: str  # base64 | url | json


def views(text: str) -> list[View]:
    """The decoded runs of `text` worth scanning, in order of encoding, then of position."""
    data = text.encode("utf-8", errors="replace")
    ascii_only = len(data) == len(text)
    out: list[View] = []
    passes = [("base64", _BASE64)]
    if b"%" in data:
        passes.append(("url", _URL))
    if b"\\u" in data:
        passes.append(("json", _JSON))
    for kind, pattern in passes:
        for m in pattern.finditer(data):
            raw = m.group()
            if kind == "base64" and (raw.islower() or raw.isupper()):
                continue  # one case only: a name or a constant, not base64 of text
            decoded = _decode(kind, raw)
            if decoded is None:
                continue
            b_start, b_end = m.span()
            start = b_start if ascii_only else len(data[:b_start].decode("utf-8", errors="replace"))
            end = b_end if ascii_only else start + len(data[b_start:b_end].decode("utf-8", errors="replace"))
            out.append(View(start, end, decoded, kind))
            if len(out) >= MAX_VIEWS:
                return out
    return out


def _decode(kind: str, raw: bytes) -> str | None:
    if kind == "base64":
        return _base64(raw)
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
    padded = body + b"=" * (-len(body) % 4)
    try:
        if b"-" in body or b"_" in body:
            decoded = base64.urlsafe_b64decode(padded)
        else:
            decoded = base64.b64decode(padded, validate=True)
        text = decoded.decode("utf-8")
    except (binascii.Error, ValueError):
        return None
    return text if _printable(text) else None


def _printable(text: str) -> bool:
    if not text:
        return False
    printable = sum(1 for c in text if c.isprintable() or c in "\n\r\t")
    return printable >= _PRINTABLE_SHARE * len(text)
