"""PostgreSQL: for several gateway processes or replicas sharing one audit chain."""

from __future__ import annotations

from typing import Any

import psycopg

from egress.store.base import SqlStore
from egress.store.settings import StoreSettings

# Any constant shared by every egress process: the advisory lock that serialises chain appends.
_CHAIN_LOCK = 0x6567_7265_7373  # "egress"
# The store section's defaults, for a store opened without a configuration (tests, benchmarks).
_DEFAULTS = StoreSettings()


class PostgresStore(SqlStore):
    dialect = "postgres"
    param = "%s"

    def __init__(self, url: str, connect_timeout_s: float = _DEFAULTS.connect_timeout_s) -> None:
        super().__init__()
        self.url = url
        self.connect_timeout_s = connect_timeout_s

    def _connect(self) -> psycopg.Connection[Any]:
        # Bounded: an unreachable server costs connect_timeout_s, not the kernel's TCP timeout.
        return psycopg.connect(self.url, autocommit=False, connect_timeout=max(1, round(self.connect_timeout_s)))

    def _is_disconnect(self, exc: BaseException, conn: Any) -> bool:
        # A terminated backend (AdminShutdown), a dropped socket, a closed connection.
        return isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError) or conn.closed or conn.broken

    def _lock_chain(self, cur: Any) -> None:
        cur.execute("SELECT pg_advisory_xact_lock(%s)", (_CHAIN_LOCK,))
