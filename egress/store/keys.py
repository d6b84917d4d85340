"""Gateway keys: only their SHA-256 is stored (egress.gateway.auth), with their scope, expiry,
owner or service account, predecessor (rotation) and last use.

Invariants: a scope that is stored but cannot be read back fails the read (it must never widen
to "any"); last use is written in batches by the gateways (`touch_keys`), never per request,
and only ever moves forward.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from egress.core.key_scope import UNSCOPED, KeyScope
from egress.core.records import GatewayKey
from egress.store.sql import SqlBase

# Expired keys stay in the gateways' key ring this long (then they read as unknown).
EXPIRED_KEPT_S = 7 * 86_400
_COLUMNS = (
    "key_id, key_hash, user_name, team, created_at, revoked_at, expires_at, scope, service_account, rotated_from, "
    "last_used_at"
)


def _scope_text(scope: KeyScope) -> str | None:
    return None if scope.unrestricted else orjson.dumps(scope.as_json()).decode()


def _row(key: GatewayKey) -> tuple[Any, ...]:
    return (
        key.key_id,
        key.key_hash,
        key.user,
        key.team,
        key.created_at,
        key.revoked_at,
        key.expires_at,
        _scope_text(key.scope),
        key.service_account,
        key.rotated_from,
        key.last_used_at,
    )


def _key(row: Sequence[Any]) -> GatewayKey:
    scope = UNSCOPED if row[7] is None else KeyScope.from_json(orjson.loads(row[7]))
    return GatewayKey(
        key_id=row[0],
        key_hash=row[1],
        user=row[2],
        team=row[3],
        created_at=row[4],
        revoked_at=row[5],
        expires_at=row[6],
        scope=scope,
        service_account=row[8],
        rotated_from=row[9],
        last_used_at=row[10],
    )


class KeyTables(SqlBase):
    """Gateway keys."""

    # --- gateway keys ----------------------------------------------------------------------

    def _insert(self, cur: Any, key: GatewayKey) -> None:
        p = self.param
        cur.execute(
            f"INSERT INTO gateway_keys ({_COLUMNS}) VALUES ({', '.join([p] * 11)})",
            _row(key),
        )

    def create_key(self, key: GatewayKey) -> None:
        with self._connection() as conn:
            self._insert(conn.cursor(), key)
            conn.commit()

    def create_keys(self, keys: Sequence[GatewayKey]) -> None:
        """All of them in one transaction: a failure leaves none created."""
        with self._connection() as conn:
            cur = conn.cursor()
            for key in keys:
                self._insert(cur, key)
            conn.commit()

    def _keys(self, where: str = "", params: tuple[Any, ...] = ()) -> list[GatewayKey]:
        with self._connection() as conn:
            cur = conn.cursor()
            cur.execute(f"SELECT {_COLUMNS} FROM gateway_keys {where} ORDER BY created_at", params)
            rows = cur.fetchall()
            # End the read transaction: an idle-in-transaction session would hold its table
            # lock (and keep PostgreSQL from vacuuming) until the next refresh.
            conn.commit()
        return [_key(row) for row in rows]

    def list_keys(self) -> list[GatewayKey]:
        return self._keys()

    def get_key(self, key_id: str) -> GatewayKey | None:
        found = self._keys(f"WHERE key_id = {self.param}", (key_id,))
        return found[0] if found else None

    def active_keys(self) -> list[GatewayKey]:
        """Keys not revoked. Keys that expired within EXPIRED_KEPT_S are included, so the gateway
        refuses them as expired (a precise answer); older ones are left out (the gateway's memory
        does not grow with every key ever issued) and are refused as unknown."""
        return self._keys(
            f"WHERE revoked_at IS NULL AND (expires_at IS NULL OR expires_at > {self.param})",
            (time.time() - EXPIRED_KEPT_S,),
        )

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

    def rotate_key(self, old_id: str, successor: GatewayKey, old_expires_at: float) -> bool:
        """In one transaction: the old key (active) now expires at `old_expires_at` (or earlier,
        if it already did) and its successor is created. False, and nothing done, when the old
        key is not active."""
        p = self.param
        with self._connection() as conn:
            cur = conn.cursor()
            cur.execute(
                f"UPDATE gateway_keys SET expires_at = CASE WHEN expires_at IS NOT NULL AND expires_at < {p} "
                f"THEN expires_at ELSE {p} END WHERE key_id = {p} AND revoked_at IS NULL",
                (old_expires_at, old_expires_at, old_id),
            )
            if cur.rowcount != 1:
                conn.rollback()
                return False
            self._insert(cur, successor)
            conn.commit()
        return True

    def touch_keys(self, used: Mapping[str, float]) -> None:
        """Record last use for many keys in one transaction; a time never moves backwards."""
        if not used:
            return
        p = self.param
        with self._connection() as conn:
            cur = conn.cursor()
            cur.executemany(
                f"UPDATE gateway_keys SET last_used_at = {p} WHERE key_id = {p} "
                f"AND (last_used_at IS NULL OR last_used_at < {p})",
                [(when, key_id, when) for key_id, when in sorted(used.items())],
            )
            conn.commit()
