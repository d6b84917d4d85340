"""The DB-API plumbing every table module shares: one connection per thread, the dialect's
parameter style and the hook that takes the audit chain's lock. The dialects (sqlite.py,
postgres.py) supply connections; the table modules (audit_tables.py, keys.py, …) the SQL.

Methods are synchronous: call them from a writer thread, the CLI, or `asyncio.to_thread`, never
on the event loop. Each thread keeps one connection (SQLite connections must not hop threads
mid-transaction).
"""

from __future__ import annotations

import importlib.resources
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


def as_bytes(value: Any) -> bytes:
    """A stored blob as bytes, whatever an editor of the database turned it into."""
    if isinstance(value, str):
        return value.encode("utf-8", errors="surrogateescape")
    return bytes(value) if value is not None else b""


class SqlBase(ABC):
    dialect = ""
    param = "?"

    def __init__(self) -> None:
        self._local = threading.local()
        self._all: list[Any] = []
        self._all_lock = threading.Lock()

    # --- dialect hooks ---------------------------------------------------------------------

    @abstractmethod
    def _connect(self) -> Any:
        """A new DB-API connection with no transaction open."""

    @abstractmethod
    def _lock_chain(self, cur: Any) -> None:
        """Begin the write transaction and take the lock that serialises appends to the chain."""

    @contextmanager
    def _connection(self) -> Iterator[Any]:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            self._local.conn = conn
            with self._all_lock:
                self._all.append(conn)
        try:
            yield conn
        except BaseException:
            conn.rollback()
            raise

    # --- schema ----------------------------------------------------------------------------

    def migrate(self) -> None:
        folder = importlib.resources.files("egress.store") / "migrations" / self.dialect
        scripts = sorted((p.name, p.read_text()) for p in folder.iterdir() if p.name.endswith(".sql"))
        with self._connection() as conn:
            cur = conn.cursor()
            cur.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL)"
            )
            cur.execute("SELECT version FROM schema_migrations")
            applied = {row[0] for row in cur.fetchall()}
            for name, sql in scripts:
                version = int(name.split("_", 1)[0])
                if version in applied:
                    continue
                self._run_script(cur, sql)
                cur.execute(
                    f"INSERT INTO schema_migrations (version, name) VALUES ({self.param}, {self.param})",
                    (version, name),
                )
            conn.commit()

    def _run_script(self, cur: Any, sql: str) -> None:
        for statement in (s.strip() for s in sql.split(";")):
            if statement:
                cur.execute(statement)

    def ping(self) -> None:
        with self._connection() as conn:
            conn.cursor().execute("SELECT 1")

    def close(self) -> None:
        with self._all_lock:
            conns, self._all = self._all, []
        for conn in conns:
            conn.close()
        self._local = threading.local()
