"""Open the store a URL names: sqlite:///path/to/file.db or postgresql://…"""

from __future__ import annotations

from pathlib import Path

from egress.store.base import SqlStore
from egress.store.postgres import PostgresStore
from egress.store.sqlite import SqliteStore


def open_store(url: str, busy_timeout_s: float = 5.0, connect_timeout_s: float = 5.0) -> SqlStore:
    if url.startswith("sqlite:///"):
        return SqliteStore(Path(url.removeprefix("sqlite:///")).expanduser(), busy_timeout_s)
    if url.startswith(("postgresql://", "postgres://")):
        return PostgresStore(url, connect_timeout_s)
    raise ValueError(f"unsupported store URL {url!r}: use sqlite:///PATH or postgresql://…")
