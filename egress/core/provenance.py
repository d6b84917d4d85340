"""What crosses between the code index (egress.provenance), the store and the gateway.

A repository's index is one row per file: the winnowed fingerprints of its normalised tokens
(`hashes`, little-endian uint64) and, for each, the 1-based line it starts on (`starts`,
little-endian uint32). Never the code itself: the index cannot be turned back into source.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class IndexedFile:
    path: str  # relative to the repository root, '/'-separated
    digest: str  # SHA-256 of the file's bytes: an unchanged file is not fingerprinted again
    language: str  # the lexer's name (Pygments), e.g. "Python"
    lines: int
    hashes: bytes  # uint64 little-endian, one per selected fingerprint
    starts: bytes  # uint32 little-endian, the line each fingerprint starts on
    shapes: bytes | None = None  # uint64 little-endian, sorted: line-shape keys (None: indexed before them)

    @property
    def fingerprints(self) -> int:
        return len(self.hashes) // 8


@dataclass(frozen=True, slots=True)
class IndexedRepo:
    """One indexed repository (or public code tree) as `egress index list` shows it."""

    name: str
    public: bool  # public code: its fingerprints are subtracted from the others', never matched
    source: str  # the path it was indexed from
    ref: str | None  # the git ref asked for (None: a plain directory)
    commit: str | None  # the commit indexed (None: a plain directory)
    indexed_at: float
    files: int
    lines: int
    fingerprints: int
    size_bytes: int  # the stored fingerprints' size


@dataclass(frozen=True, slots=True)
class CodeMatch:
    """Part of a text matched an indexed repository: counts only, never the code."""

    repo: str
    lines: int  # lines of the text covered by matching fingerprints
    tokens: int  # normalised tokens of the text covered
    share: float  # tokens covered / tokens of the text, 0..1
    confidence: float
    paths: tuple[str, ...] = ()  # the indexed files matched (for `egress index query`, not the audit)
