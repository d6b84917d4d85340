"""PostgreSQL: for several gateway processes or replicas sharing one audit chain."""

from __future__ import annotations

from typing import Any

import psycopg

from egress.store.base import SqlStore

# Any constant shared by every egress process: the advisory lock that serialises chain appends.
_CHAIN_LOCK = 0x6567_7265_7373  # "egress"


class PostgresStore(SqlStore):
    dialect = "postgres"
    param = "%s"

    def __init__(self, url: str) -> None:
        super().__init__()
        self.url = url

    def _connect(self) -> psycopg.Connection[Any]:
        return psycopg.connect(self.url, autocommit=False)

    def _lock_chain(self, cur: Any) -> None:
        cur.execute("SELECT pg_advisory_xact_lock(%s)", (_CHAIN_LOCK,))
