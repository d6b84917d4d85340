"""Storage behind one protocol; SQLite (embedded default) and PostgreSQL implement it.

Both speak DB-API, so the SQL lives once, in one module per group of tables (audit_tables.py,
keys.py, vault.py, recordings.py, console.py, approvals.py) over the shared plumbing in sql.py;
a dialect (sqlite.py, postgres.py) supplies connections, the parameter style and how a writer
takes the audit chain's lock.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Protocol

from egress.core.approvals import Approval, ApprovalStatus
from egress.core.records import (
    GENESIS_HASH,
    AuditEntry,
    Checkpoint,
    GatewayKey,
    StoredAudit,
    StoredRecording,
)
from egress.store.approvals import ApprovalTables
from egress.store.audit_tables import AuditTables, Linker
from egress.store.console import ConsoleTables
from egress.store.keys import KeyTables
from egress.store.provenance import ProvenanceTables
from egress.store.recordings import RecordingTables
from egress.store.siem_cursors import SiemCursor, SiemCursorTables
from egress.store.usage import UsageRow, UsageTables
from egress.store.vault import VaultTables

__all__ = ["GENESIS_HASH", "Linker", "SqlStore", "Store"]


class Store(Protocol):
    def migrate(self) -> None: ...

    def ping(self) -> None: ...

    def append_audit(self, entries: Sequence[AuditEntry], link: Linker) -> None: ...

    def iter_audit(self, after_seq: int = 0, batch: int = 5000) -> Iterator[StoredAudit]: ...

    def audit_tail(self, n: int) -> list[StoredAudit]: ...

    def audit_count(self) -> int: ...

    def audit_head(self) -> tuple[int, str] | None: ...

    def append_checkpoint(self, checkpoint: Checkpoint) -> None: ...

    def list_checkpoints(self) -> list[Checkpoint]: ...

    def last_checkpoint_seq(self) -> int: ...

    def iter_audit_hashes(self, first: int, last: int, batch: int = 10000) -> Iterator[tuple[int, str]]: ...

    def create_key(self, key: GatewayKey) -> None: ...

    def create_keys(self, keys: Sequence[GatewayKey]) -> None: ...

    def list_keys(self) -> list[GatewayKey]: ...

    def revoke_key(self, key_id: str, when: float) -> bool: ...

    def active_keys(self) -> list[GatewayKey]: ...

    def get_key(self, key_id: str) -> GatewayKey | None: ...

    def rotate_key(self, old_id: str, successor: GatewayKey, old_expires_at: float) -> bool: ...

    def touch_keys(self, used: Mapping[str, float]) -> None: ...

    def vault_get(self, entry_id: str) -> tuple[bytes, float] | None: ...

    def vault_put(self, entry_id: str, sealed: bytes, expires_at: float) -> None: ...

    def vault_purge(self, now: float) -> int: ...

    def put_recordings(self, recordings: Sequence[StoredRecording]) -> None: ...

    def get_recording(self, request_id: str) -> StoredRecording | None: ...

    def purge_recordings(self, now: float) -> int: ...

    def recording_key_ids(self) -> set[str]: ...

    def approval_create(self, approval: Approval) -> None: ...

    def approval_get(self, approval_id: str) -> Approval | None: ...

    def approval_list(
        self, statuses: Sequence[ApprovalStatus] | None, team: str | None, limit: int
    ) -> list[Approval]: ...

    def approval_decide(
        self, approval_id: str, status: ApprovalStatus, by: str, at: float, note: str | None, expires_at: float
    ) -> bool: ...

    def approval_transition(
        self, approval_id: str, from_status: ApprovalStatus, to_status: ApprovalStatus, at: float
    ) -> bool: ...

    def approval_retry_candidates(self, user: str, digest: str, now: float) -> list[str]: ...

    def approval_overdue(self, now: float) -> list[str]: ...

    def siem_cursor(self, sink: str) -> SiemCursor | None: ...

    def siem_acquire(self, sink: str, owner: str, now: float, ttl_s: float) -> SiemCursor | None: ...

    def siem_advance(self, sink: str, owner: str, seq: int, hash_: str, now: float, ttl_s: float) -> bool: ...

    def siem_release(self, sink: str, owner: str) -> None: ...

    def siem_batch(self, after_seq: int, limit: int) -> list[StoredAudit]: ...

    def usage_add(self, minutes: Sequence[UsageRow], days: Sequence[UsageRow]) -> None: ...

    def usage_rows(self, table: str, since: float, team: str | None = None, user: str | None = None) -> list[UsageRow]: ...

    def close(self) -> None: ...


class SqlStore(
    AuditTables,
    KeyTables,
    VaultTables,
    RecordingTables,
    ConsoleTables,
    ApprovalTables,
    ProvenanceTables,
    SiemCursorTables,
    UsageTables,
):
    """Every table, over one connection per thread. Methods are synchronous: call them from a
    writer thread, the CLI, or `asyncio.to_thread`, never on the event loop."""
