"""SQLite: the embedded default.

Durability: WAL with synchronous=FULL (the default), so a commit returns only after the WAL is
fsynced. A committed transaction survives a process kill and, as far as the disk honours fsync,
a power loss. `store.sqlite_synchronous: normal` (an explicit choice, never a default) fsyncs at
checkpoints only: a commit then survives a process kill but a power loss may lose the last ones.
The audit writer batches commits, so the fsync is shared by every record of a batch.

Waiting on a lock is bounded: another process holding the write lock (`BEGIN EXCLUSIVE`) makes a
statement wait at most `busy_timeout_s`, then fail (the audit writer reports it to readiness).

The database, its -wal and -shm files hold the audit and the sealed vault: the file is created
0600 (SQLite gives -wal and -shm the database's mode) in a directory created 0700.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import stat
from pathlib import Path
from typing import Any

from egress.store.base import SqlStore
from egress.store.settings import SqliteSync, StoreSettings

log = logging.getLogger("egress.store")

# SQLite result codes after which the connection is not trusted again (reopened on next use).
_DISCARD = ("SQLITE_IOERR", "SQLITE_FULL", "SQLITE_CANTOPEN", "SQLITE_CORRUPT", "SQLITE_NOTADB")
# The store section's defaults, for a store opened without a configuration (tests, benchmarks).
_DEFAULTS = StoreSettings()


class SqliteStore(SqlStore):
    dialect = "sqlite"
    param = "?"

    def __init__(
        self,
        path: Path,
        busy_timeout_s: float = _DEFAULTS.busy_timeout_s,
        synchronous: SqliteSync = _DEFAULTS.sqlite_synchronous,
    ) -> None:
        super().__init__()
        self.path = path
        self.busy_timeout_s = busy_timeout_s
        self.synchronous = SqliteSync(synchronous)
        if not path.parent.exists():
            path.parent.mkdir(parents=True, mode=0o700)
        _private_file(path)

    def _connect(self) -> _Autobegin:
        conn = sqlite3.connect(self.path, timeout=self.busy_timeout_s, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={self.synchronous.value.upper()}")
        conn.execute(f"PRAGMA busy_timeout={int(self.busy_timeout_s * 1000)}")
        return _Autobegin(conn)

    def _is_disconnect(self, exc: BaseException, conn: Any) -> bool:
        name = getattr(exc, "sqlite_errorname", "") or ""
        return name.startswith(_DISCARD)

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


def _private_file(path: Path) -> None:
    """Create the database file 0600 before SQLite does (it would use the umask: often 0644);
    an existing one readable by others is tightened, with a warning."""
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:
        for candidate in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
            try:
                mode = stat.S_IMODE(candidate.stat().st_mode)
            except FileNotFoundError:
                continue
            if mode & 0o077:
                log.warning("%s was readable by others (mode %o); now 0600", candidate.name, mode)
                candidate.chmod(0o600)
        return
    os.close(fd)
