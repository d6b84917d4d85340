"""Open the store a URL names: sqlite:///path/to/file.db or postgresql://…"""

from __future__ import annotations

from pathlib import Path

from egress.store.base import SqlStore
from egress.store.settings import StoreSettings
from egress.store.sqlite import SqliteStore


def open_store(url: str, settings: StoreSettings | None = None) -> SqlStore:
    """The store at `url`, bounded as `settings` say (default: the store section's defaults)."""
    settings = settings if settings is not None else StoreSettings()
    if url.startswith("sqlite:///"):
        return SqliteStore(
            Path(url.removeprefix("sqlite:///")).expanduser(), settings.busy_timeout_s, settings.sqlite_synchronous
        )
    if url.startswith(("postgresql://", "postgres://")):
        # Imported here: psycopg costs a CLI command on SQLite a tenth of a second for nothing.
        from egress.store.postgres import PostgresStore

        return PostgresStore(url, settings.connect_timeout_s)
    raise ValueError(f"unsupported store URL {url!r}: use sqlite:///PATH or postgresql://…")


def open_migrated(url: str, data_dir: Path, settings: StoreSettings) -> SqlStore:
    """The store with its schema migrated, the data directory created first (0700: it holds the
    audit, the sealed vault and the keys)."""
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    store = open_store(url, settings)
    store.migrate()
    return store
