"""The masking session vault: sealed blobs only (egress.mask.vault seals them)."""

from __future__ import annotations

from egress.store.sql import SqlBase, as_bytes


class VaultTables(SqlBase):
    """Sealed vault entries with their expiry."""

    # --- mask vault (sealed blobs only; see egress.mask.vault) ---------------------------------

    def vault_get(self, entry_id: str) -> tuple[bytes, float] | None:
        with self._connection() as conn:
            cur = conn.cursor()
            cur.execute(f"SELECT sealed, expires_at FROM mask_vault WHERE entry_id = {self.param}", (entry_id,))
            row = cur.fetchone()
            conn.commit()
        return (as_bytes(row[0]), float(row[1])) if row else None

    def vault_put(self, entry_id: str, sealed: bytes, expires_at: float) -> None:
        p = self.param
        with self._connection() as conn:
            conn.cursor().execute(
                f"INSERT INTO mask_vault (entry_id, sealed, expires_at) VALUES ({p}, {p}, {p}) "
                "ON CONFLICT (entry_id) DO UPDATE SET sealed = excluded.sealed, expires_at = excluded.expires_at",
                (entry_id, sealed, expires_at),
            )
            conn.commit()

    def vault_purge(self, now: float) -> int:
        with self._connection() as conn:
            cur = conn.cursor()
            cur.execute(f"DELETE FROM mask_vault WHERE expires_at <= {self.param}", (now,))
            removed: int = cur.rowcount
            conn.commit()
        return removed
