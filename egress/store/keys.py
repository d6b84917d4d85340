"""Gateway keys: only their SHA-256 is stored (egress.gateway.auth)."""

from __future__ import annotations

from collections.abc import Sequence

from egress.core.records import GatewayKey
from egress.store.sql import SqlBase


class KeyTables(SqlBase):
    """Gateway keys."""

    # --- gateway keys ----------------------------------------------------------------------

    def create_key(self, key: GatewayKey) -> None:
        p = self.param
        with self._connection() as conn:
            conn.cursor().execute(
                f"INSERT INTO gateway_keys (key_id, key_hash, user_name, team, created_at, revoked_at) "
                f"VALUES ({p}, {p}, {p}, {p}, {p}, {p})",
                (key.key_id, key.key_hash, key.user, key.team, key.created_at, key.revoked_at),
            )
            conn.commit()

    def create_keys(self, keys: Sequence[GatewayKey]) -> None:
        """All of them in one transaction: a failure leaves none created."""
        p = self.param
        with self._connection() as conn:
            cur = conn.cursor()
            for key in keys:
                cur.execute(
                    f"INSERT INTO gateway_keys (key_id, key_hash, user_name, team, created_at, revoked_at) "
                    f"VALUES ({p}, {p}, {p}, {p}, {p}, {p})",
                    (key.key_id, key.key_hash, key.user, key.team, key.created_at, key.revoked_at),
                )
            conn.commit()

    def _keys(self, where: str = "") -> list[GatewayKey]:
        with self._connection() as conn:
            cur = conn.cursor()
            cur.execute(
                "SELECT key_id, key_hash, user_name, team, created_at, revoked_at FROM gateway_keys "
                f"{where} ORDER BY created_at"
            )
            rows = cur.fetchall()
            # End the read transaction: an idle-in-transaction session would hold its table
            # lock (and keep PostgreSQL from vacuuming) until the next refresh.
            conn.commit()
        return [GatewayKey(*row) for row in rows]

    def list_keys(self) -> list[GatewayKey]:
        return self._keys()

    def active_keys(self) -> list[GatewayKey]:
        return self._keys("WHERE revoked_at IS NULL")

    def revoke_key(self, key_id: str, when: float) -> bool:
        p = self.param
        with self._connection() as conn:
            cur = conn.cursor()
            cur.execute(
                f"UPDATE gateway_keys SET revoked_at = {p} WHERE key_id = {p} AND revoked_at IS NULL",
                (when, key_id),
            )
            changed: int = cur.rowcount
            conn.commit()
        return changed > 0
