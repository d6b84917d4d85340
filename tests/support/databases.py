"""Real databases for store tests: a file SQLite, and a throwaway PostgreSQL database."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg

from egress.store.base import SqlStore
from egress.store.postgres import PostgresStore
from egress.store.sqlite import SqliteStore

ADMIN_URL = os.environ.get("EGRESS_TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


@contextmanager
def throwaway_postgres() -> Iterator[str]:
    """Create an empty database on the local PostgreSQL server, yield its URL, drop it after."""
    name = "egress_test_" + secrets.token_hex(4)
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = ADMIN_URL.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def migrated_store(kind: str, folder: Path) -> Iterator[SqlStore]:
    """A migrated, empty store: a SQLite file in `folder` ("sqlite"), or a throwaway PostgreSQL
    database ("postgres"); closed (and dropped) after."""
    if kind == "sqlite":
        store: SqlStore = SqliteStore(folder / "egress.db")
        store.migrate()
        yield store
        store.close()
        return
    with throwaway_postgres() as url:
        store = PostgresStore(url)
        store.migrate()
        yield store
        store.close()
