"""Compiled detection artefacts kept on disk between starts (the Hyperscan automata).

Keys name what was compiled (a digest of the patterns and the Hyperscan version), so a changed
rule set never loads a stale automaton. Writes are atomic (a temporary file renamed into place);
an unreadable or missing directory only costs a recompile.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from pathlib import Path

log = logging.getLogger("egress.detect")


def default_cache_dir(env: Mapping[str, str]) -> Path:
    """$XDG_CACHE_HOME/egress, else ~/.cache/egress (the configuration's detection.cache_dir
    default)."""
    base = env.get("XDG_CACHE_HOME") or str(Path(env.get("HOME", "~")).expanduser() / ".cache")
    return Path(base) / "egress"


class FileBlobCache:
    """A directory of blobs by key. `on_miss` is told of each miss (a compile follows: `egress
    serve` says so, it takes seconds)."""

    def __init__(self, directory: Path | None, on_miss: Callable[[], None] | None = None) -> None:
        self.directory = directory
        self.on_miss = on_miss

    def get(self, key: str) -> bytes | None:
        blob = self._read(key)
        if blob is None and self.on_miss is not None:
            self.on_miss()
        return blob

    def _read(self, key: str) -> bytes | None:
        if self.directory is None:
            return None
        try:
            return (self.directory / key).read_bytes()
        except OSError:
            return None

    def put(self, key: str, blob: bytes) -> None:
        if self.directory is None:
            return
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            tmp = self.directory / f".{key}.{os.getpid()}.tmp"
            tmp.write_bytes(blob)
            tmp.replace(self.directory / key)
        except OSError as exc:
            log.warning("cannot cache the compiled rules in %s: %s", self.directory, exc.strerror)
