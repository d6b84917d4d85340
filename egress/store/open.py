"""Open the store a URL names: sqlite:///path/to/file.db or postgresql://…"""

from __future__ import annotations

from pathlib import Path

from egress.store.base import SqlStore
from egress.store.sqlite import SqliteStore


def open_store(url: str, busy_timeout_s: float = 5.0, connect_timeout_s: float = 5.0) -> SqlStore:
    if url.startswith("sqlite:///"):
        return SqliteStore(Path(url.removeprefix("sqlite:///")).expanduser(), busy_timeout_s)
    if url.startswith(("postgresql://", "postgres://")):
        # Imported here: psycopg costs a CLI command on SQLite a tenth of a second for nothing.
        from egress.store.postgres import PostgresStore

        return PostgresStore(url, connect_timeout_s)
    raise ValueError(f"unsupported store URL {url!r}: use sqlite:///PATH or postgresql://…")


def open_migrated(url: str, data_dir: Path, busy_timeout_s: float, connect_timeout_s: float) -> SqlStore:
    """The store with its schema migrated, the data directory created first (0700: it holds the
    audit, the sealed vault and the keys)."""
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    store = open_store(url, busy_timeout_s=busy_timeout_s, connect_timeout_s=connect_timeout_s)
    store.migrate()
    return store
