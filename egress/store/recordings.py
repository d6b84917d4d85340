"""Recorded payloads: sealed by egress.recording and stored as given."""

from __future__ import annotations

from collections.abc import Sequence

from egress.core.records import StoredRecording
from egress.store.sql import SqlBase, as_bytes

_RECORDING_COLUMNS = "request_id, recorded_at, expires_at, key_id, sent, received, metadata"



class RecordingTables(SqlBase):
    """Sealed recordings, their retention and the key ids they need."""

    # --- recorded payloads (sealed by egress.recording; stored as given) -----------------

    def put_recordings(self, recordings: Sequence[StoredRecording]) -> None:
        """Keep sealed payloads; a second recording of the same request is dropped."""
        if not recordings:
            return
        p = self.param
        with self._connection() as conn:
            conn.cursor().executemany(
                f"INSERT INTO recordings ({_RECORDING_COLUMNS}) VALUES ({', '.join([p] * 7)}) "
                "ON CONFLICT (request_id) DO NOTHING",
                [(r.request_id, r.recorded_at, r.expires_at, r.key_id, r.sent, r.received, r.metadata) for r in recordings],
            )
            conn.commit()

    def get_recording(self, request_id: str) -> StoredRecording | None:
        with self._connection() as conn:
            cur = conn.cursor()
            cur.execute(f"SELECT {_RECORDING_COLUMNS} FROM recordings WHERE request_id = {self.param}", (request_id,))
            row = cur.fetchone()
            conn.commit()
        if row is None:
            return None
        return StoredRecording(
            request_id=str(row[0]),
            recorded_at=float(row[1]),
            expires_at=float(row[2]),
            key_id=str(row[3]),
            sent=None if row[4] is None else as_bytes(row[4]),
            received=None if row[5] is None else as_bytes(row[5]),
            metadata=as_bytes(row[6]),
        )

    def purge_recordings(self, now: float) -> int:
        """Delete the payloads whose retention ended (the row and its metadata stay)."""
        with self._connection() as conn:
            cur = conn.cursor()
            cur.execute(
                f"UPDATE recordings SET sent = NULL, received = NULL WHERE expires_at <= {self.param} "
                "AND (sent IS NOT NULL OR received IS NOT NULL)",
                (now,),
            )
            removed: int = cur.rowcount
            conn.commit()
        return removed

    def recording_key_ids(self) -> set[str]:
        """The keys that stored payloads still need."""
        with self._connection() as conn:
            cur = conn.cursor()
            cur.execute("SELECT DISTINCT key_id FROM recordings WHERE sent IS NOT NULL OR received IS NOT NULL")
            rows = cur.fetchall()
            conn.commit()
        return {str(r[0]) for r in rows}
