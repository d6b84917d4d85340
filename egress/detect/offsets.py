"""Byte offsets in a text's UTF-8 as character offsets of the text."""

from __future__ import annotations

# UTF-8 continuation bytes: every other byte starts a character.
CONTINUATIONS = bytes(range(0x80, 0xC0))


def identity(offset: int) -> int:
    """ASCII text: a byte offset is the character offset."""
    return offset


class CharOffsets:
    """Byte offset -> character offset for non-ASCII text, computed only where asked.

    In well-formed UTF-8 (the text's own encoding) a prefix holds one character per byte that is
    not a continuation byte (a prefix cut inside a character decodes to one U+FFFD, counted by its
    lead byte too). Offsets usually come in increasing order (one rule's matches, one encoding's
    runs), so the count continues from the last offset: linear per pass, not per offset."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._byte = 0
        self._continuations = 0

    def __call__(self, offset: int) -> int:
        if offset < self._byte:
            self._byte, self._continuations = 0, 0
        piece = self._data[self._byte : offset]
        self._continuations += len(piece) - len(piece.translate(None, CONTINUATIONS))
        self._byte = offset
        return offset - self._continuations
