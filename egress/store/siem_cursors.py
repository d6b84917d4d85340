"""SIEM delivery cursors (egress/siem): per sink, the last record the sink acknowledged and the
lease naming the one gateway process that delivers to it now.

Invariants: a cursor only moves forward, and only its lease holder moves it (the owner check and
`seq < new` are in the same UPDATE, so a process that lost its lease cannot move it back or
forward). A lease is taken when free, held by the caller already, or expired; a process killed
with SIGKILL stops renewing it and another takes over after `lease_until`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from egress.core.records import GENESIS_HASH, StoredAudit
from egress.store.audit_tables import _AUDIT_COLUMNS, AuditTables
from egress.store.sql import SqlBase


@dataclass(frozen=True, slots=True)
class SiemCursor:
    sink: str
    seq: int  # the last record the sink acknowledged (0: none yet)
    hash: str  # its hash (the genesis hash before the first)
    delivered_at: float  # Unix seconds of the last acknowledgement (0: never)
    owner: str | None
    lease_until: float


_CURSOR_COLUMNS = "sink, seq, hash, delivered_at, owner, lease_until"


class SiemCursorTables(SqlBase):
    def siem_cursor(self, sink: str) -> SiemCursor | None:
        with self._connection() as conn:
            cur = conn.cursor()
            cur.execute(f"SELECT {_CURSOR_COLUMNS} FROM siem_cursors WHERE sink = {self.param}", (sink,))
            row = cur.fetchone()
            conn.commit()
        return _cursor(row) if row else None

    def siem_acquire(self, sink: str, owner: str, now: float, ttl_s: float) -> SiemCursor | None:
        """Take or renew the sink's lease until now + ttl_s; the cursor when held, else None."""
        p = self.param
        with self._connection() as conn:
            cur = conn.cursor()
            cur.execute(
                f"INSERT INTO siem_cursors ({_CURSOR_COLUMNS}) VALUES ({p}, 0, {p}, 0, NULL, 0) "
                "ON CONFLICT (sink) DO NOTHING",
                (sink, GENESIS_HASH),
            )
            cur.execute(
                f"UPDATE siem_cursors SET owner = {p}, lease_until = {p} "
                f"WHERE sink = {p} AND (owner = {p} OR owner IS NULL OR lease_until < {p})",
                (owner, now + ttl_s, sink, owner, now),
            )
            taken: bool = cur.rowcount == 1
            cur.execute(f"SELECT {_CURSOR_COLUMNS} FROM siem_cursors WHERE sink = {p}", (sink,))
            row = cur.fetchone()
            conn.commit()
        return _cursor(row) if taken else None

    def siem_advance(self, sink: str, owner: str, seq: int, hash_: str, now: float, ttl_s: float) -> bool:
        """Move the cursor forward to (seq, hash_) and renew the lease; False when `owner` no
        longer holds it (or the cursor is already there)."""
        p = self.param
        with self._connection() as conn:
            cur = conn.cursor()
            cur.execute(
                f"UPDATE siem_cursors SET seq = {p}, hash = {p}, delivered_at = {p}, lease_until = {p} "
                f"WHERE sink = {p} AND owner = {p} AND seq < {p}",
                (seq, hash_, now, now + ttl_s, sink, owner, seq),
            )
            moved: bool = cur.rowcount == 1
            conn.commit()
        return moved

    def siem_release(self, sink: str, owner: str) -> None:
        """Give the lease up (a clean stop), so another process may take over at once."""
        p = self.param
        with self._connection() as conn:
            conn.cursor().execute(
                f"UPDATE siem_cursors SET owner = NULL, lease_until = 0 WHERE sink = {p} AND owner = {p}",
                (sink, owner),
            )
            conn.commit()

    def siem_batch(self, after_seq: int, limit: int) -> list[StoredAudit]:
        """Up to `limit` committed records after `after_seq`, in sequence order."""
        p = self.param
        with self._connection() as conn:
            cur = conn.cursor()
            cur.execute(
                f"SELECT {_AUDIT_COLUMNS} FROM audit_log WHERE seq > {p} ORDER BY seq LIMIT {p}", (after_seq, limit)
            )
            rows = cur.fetchall()
            conn.commit()
        return [AuditTables._stored(r) for r in rows]


def _cursor(row: Any) -> SiemCursor:
    owner = None if row[4] is None else str(row[4])
    return SiemCursor(str(row[0]), int(row[1]), str(row[2]), float(row[3]), owner, float(row[5]))
