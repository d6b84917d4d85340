"""The DB-API plumbing every table module shares: one connection per thread, the dialect's
parameter style and the hook that takes the audit chain's lock. The dialects (sqlite.py,
postgres.py) supply connections; the table modules (audit_tables.py, keys.py, …) the SQL.

Methods are synchronous: call them from a writer thread, the CLI, or `asyncio.to_thread`, never
on the event loop. Each thread keeps one connection (SQLite connections must not hop threads
mid-transaction).

Connections come back: a statement that fails with a connection-level error (the server closed
it, the backend was terminated, the socket broke) discards that thread's connection, and the
next use opens a new one. While opening fails, attempts are spaced by a bounded exponential
backoff shared by all threads (`StoreUnavailable` is raised at once in between), so an outage
costs one connect attempt per backoff step, not one per call.
"""

from __future__ import annotations

import importlib.resources
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


def as_bytes(value: Any) -> bytes:
    """A stored blob as bytes, whatever an editor of the database turned it into."""
    if isinstance(value, str):
        return value.encode("utf-8", errors="surrogateescape")
    return bytes(value) if value is not None else b""


class StoreUnavailable(Exception):
    """The store cannot be reached now; a new connection is attempted after the backoff."""


# Reconnect backoff: the first retry after this long, doubling up to the cap.
RECONNECT_FIRST_S = 0.05
RECONNECT_CAP_S = 2.0


class SqlBase(ABC):
    dialect = ""
    param = "?"

    def __init__(self) -> None:
        self._local = threading.local()
        self._all: list[Any] = []
        self._all_lock = threading.Lock()
        # No connect attempt before this time.monotonic(); the next delay if one fails.
        self._retry_at = 0.0
        self._retry_delay = RECONNECT_FIRST_S
        self._broken = False  # a connection was discarded or failed to open since the last open
        self.reconnects = 0  # connections opened after one was discarded or failed to open

    # --- dialect hooks ---------------------------------------------------------------------

    @abstractmethod
    def _connect(self) -> Any:
        """A new DB-API connection with no transaction open."""

    @abstractmethod
    def _lock_chain(self, cur: Any) -> None:
        """Begin the write transaction and take the lock that serialises appends to the chain."""

    def _is_disconnect(self, exc: BaseException, conn: Any) -> bool:
        """Is `conn` unusable after `exc` (discard it) rather than just this statement failing?"""
        return False

    def _open(self) -> Any:
        with self._all_lock:
            now = time.monotonic()
            if now < self._retry_at:
                raise StoreUnavailable(f"the {self.dialect} store is unreachable; retrying in {self._retry_at - now:.2f} s")
        try:
            conn = self._connect()
        except Exception:
            with self._all_lock:
                self._broken = True
                self._retry_at = time.monotonic() + self._retry_delay
                self._retry_delay = min(self._retry_delay * 2, RECONNECT_CAP_S)
            raise
        with self._all_lock:
            if self._broken:
                self.reconnects += 1
                self._broken = False
            self._retry_at = 0.0
            self._retry_delay = RECONNECT_FIRST_S
            self._all.append(conn)
        return conn

    def _discard(self, conn: Any) -> None:
        """Forget this thread's connection; the next use opens another."""
        self._local.conn = None
        with self._all_lock:
            if conn in self._all:
                self._all.remove(conn)
            self._broken = True  # the next open is a reconnect, not delayed: the server may be fine
        try:
            conn.close()
        except Exception:  # noqa: BLE001, S110 - closing a broken connection may fail too; it is gone either way
            pass

    @contextmanager
    def _connection(self) -> Iterator[Any]:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._open()
            self._local.conn = conn
        try:
            yield conn
        except BaseException as exc:
            if self._is_disconnect(exc, conn):
                self._discard(conn)
                raise
            try:
                conn.rollback()
            except Exception:  # noqa: BLE001 - a rollback that fails means the connection is gone
                self._discard(conn)
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
        for statement in statements(sql):
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


def statements(sql: str) -> list[str]:
    """A migration script's statements: `--` comments dropped (they may hold `;` and apostrophes),
    split on the `;` outside single-quoted literals ('' is a quote inside one)."""
    out: list[str] = []
    current: list[str] = []
    i, n, quoted = 0, len(sql), False
    while i < n:
        ch = sql[i]
        if quoted:
            current.append(ch)
            quoted = ch != "'"
        elif ch == "'":
            current.append(ch)
            quoted = True
        elif sql.startswith("--", i):
            end = sql.find("\n", i)
            i = n if end < 0 else end
            continue
        elif ch == ";":
            out.append("".join(current))
            current = []
        else:
            current.append(ch)
        i += 1
    out.append("".join(current))
    return [s.strip() for s in out if s.strip()]
