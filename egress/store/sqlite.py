"""SQLite: the embedded default. WAL, full fsync on commit (the audit writer batches commits)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from egress.store.base import SqlStore


class SqliteStore(SqlStore):
    dialect = "sqlite"
    param = "?"

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA busy_timeout=30000")
        return _Autobegin(conn)

    def _lock_chain(self, cur: Any) -> None:
        # IMMEDIATE takes the write lock now, before the tail is read: no other process can
        # append between our read of the tail and our insert.
        cur.execute("BEGIN IMMEDIATE")


class _Autobegin:
    """sqlite3 in autocommit mode, except that a write statement outside a transaction opens one,
    so `commit()` covers everything written since the last commit (like DB-API's default)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def cursor(self) -> _Cursor:
        return _Cursor(self._conn)

    def commit(self) -> None:
        if self._conn.in_transaction:
            self._conn.commit()

    def rollback(self) -> None:
        if self._conn.in_transaction:
            self._conn.rollback()

    def close(self) -> None:
        self._conn.close()


class _Cursor:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self._cur = conn.cursor()

    def _begin_if_write(self, sql: str) -> None:
        head = sql.lstrip()[:6].upper()
        if not self._conn.in_transaction and head in ("INSERT", "UPDATE", "DELETE", "CREATE"):
            self._cur.execute("BEGIN")

    def execute(self, sql: str, params: Any = ()) -> _Cursor:
        self._begin_if_write(sql)
        self._cur.execute(sql, params)
        return self

    def executemany(self, sql: str, rows: Any) -> _Cursor:
        self._begin_if_write(sql)
        self._cur.executemany(sql, rows)
        return self

    def fetchone(self) -> Any:
        return self._cur.fetchone()

    def fetchall(self) -> list[Any]:
        return self._cur.fetchall()

    @property
    def rowcount(self) -> int:
        return self._cur.rowcount
