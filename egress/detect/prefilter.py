"""The whole-pattern prefilter: one Hyperscan automaton of every rule pattern it accepts.

On ASCII text (nearly all source code) Hyperscan's byte semantics and RE2's UTF-8 semantics
agree, so a rule whose whole pattern Hyperscan does not find in a text cannot match there, and
RE2 need not run at all. Compiling the automaton takes seconds, so the compiled database is kept
in a cache (keyed by the patterns and the Hyperscan version) that the caller supplies.
"""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Any, Protocol

import hyperscan

log = logging.getLogger("egress.detect")

FLAGS = hyperscan.HS_FLAG_ALLOWEMPTY | hyperscan.HS_FLAG_SINGLEMATCH
_CHUNK = 32


class BlobCache(Protocol):
    def get(self, key: str) -> bytes | None: ...

    def put(self, key: str, blob: bytes) -> None: ...


def _compile(patterns: list[tuple[int, bytes]], flags: int = FLAGS) -> Any:
    db = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
    db.compile(
        expressions=[p for _, p in patterns],
        ids=[i for i, _ in patterns],
        elements=len(patterns),
        flags=[flags] * len(patterns),
    )
    return db


def _accepted(patterns: list[tuple[int, bytes]], flags: int) -> list[tuple[int, bytes]]:
    """The patterns Hyperscan can compile: chunks first, one by one only inside a failing chunk."""
    ok: list[tuple[int, bytes]] = []
    for start in range(0, len(patterns), _CHUNK):
        chunk = patterns[start : start + _CHUNK]
        try:
            _compile(chunk, flags)
            ok.extend(chunk)
            continue
        except hyperscan.error:
            pass
        for item in chunk:
            try:
                _compile([item], flags)
                ok.append(item)
            except hyperscan.error:
                continue
    return ok


def cache_key(patterns: list[tuple[int, bytes]], flags: int = FLAGS) -> str:
    version = hyperscan.__version__  # type: ignore[attr-defined]  # set by the package, not in its stubs
    digest = hashlib.sha256(f"hyperscan {version} flags {flags}\n".encode())
    for index, pattern in patterns:
        digest.update(f"{index}\0".encode() + pattern + b"\0")
    return "prefilter-" + digest.hexdigest()[:32]


def build(patterns: list[tuple[int, str]], cache: BlobCache | None, flags: int = FLAGS) -> tuple[Any, frozenset[int]]:
    """(database, ids it covers) for the patterns Hyperscan accepts; (None, ∅) if none."""
    encoded = [(i, p.encode()) for i, p in patterns]
    key = cache_key(encoded, flags)
    blob = cache.get(key) if cache is not None else None
    if blob is not None:
        try:
            header_len = int.from_bytes(blob[:4], "big")
            ids = json.loads(blob[4 : 4 + header_len])
            db = hyperscan.loadb(blob[4 + header_len :], hyperscan.HS_MODE_BLOCK)
            db.scratch = hyperscan.Scratch(db)  # a loaded database has no scratch space yet
            return db, frozenset(ids)
        except (ValueError, TypeError, hyperscan.error):
            log.warning("discarding an unreadable compiled prefilter in the cache")
    accepted = _accepted(encoded, flags)
    if not accepted:
        return None, frozenset()
    db = _compile(accepted, flags)
    ids = [i for i, _ in accepted]
    if cache is not None:
        header = json.dumps(ids).encode()
        cache.put(key, len(header).to_bytes(4, "big") + header + hyperscan.dumpb(db))
    return db, frozenset(ids)
