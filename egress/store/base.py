"""Storage behind one protocol; SQLite (embedded default) and PostgreSQL implement it.

Both speak DB-API, so the SQL lives once in `SqlStore`; a dialect supplies connections, the
parameter style and how a writer takes the chain's lock. The audit chain is extended inside one
write transaction that first reads the chain's tail, so several gateway processes (or replicas)
appending at once still produce one linear chain with dense sequence numbers.
"""

from __future__ import annotations

import importlib.resources
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Protocol

import orjson

from egress.core.approvals import Approval
from egress.core.records import (
    AuditEntry,
    Checkpoint,
    ConsoleLogin,
    ConsoleSession,
    ConsoleUser,
    GatewayKey,
    StoredAudit,
    StoredRecording,
)

GENESIS_HASH = "0" * 64

# link(prev_hash, canonical_record) -> hash. Injected by the audit package, which owns the chain.
Linker = Callable[[str, bytes], str]

_AUDIT_COLUMNS = (
    "seq, request_id, ts, user_name, team, api, endpoint, jurisdiction, outcome, status, record, prev_hash, hash"
)
_RECORDING_COLUMNS = "request_id, recorded_at, expires_at, key_id, sent, received, metadata"


_APPROVAL_COLUMNS = (
    "approval_id, status, user_name, team, request_id, api, model, endpoints, reasons, kinds, rules, digest, "
    "created_at, expires_at, decided_by, decided_at, note"
)


def _as_bytes(value: Any) -> bytes:
    """The stored record as bytes, whatever an editor of the database turned it into."""
    if isinstance(value, str):
        return value.encode("utf-8", errors="surrogateescape")
    return bytes(value) if value is not None else b""


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

    def list_keys(self) -> list[GatewayKey]: ...

    def revoke_key(self, key_id: str, when: float) -> bool: ...

    def active_keys(self) -> list[GatewayKey]: ...

    def vault_get(self, entry_id: str) -> tuple[bytes, float] | None: ...

    def vault_put(self, entry_id: str, sealed: bytes, expires_at: float) -> None: ...

    def vault_purge(self, now: float) -> int: ...

    def put_recordings(self, recordings: Sequence[StoredRecording]) -> None: ...

    def get_recording(self, request_id: str) -> StoredRecording | None: ...

    def purge_recordings(self, now: float) -> int: ...

    def recording_key_ids(self) -> set[str]: ...

    def approval_create(self, approval: Approval) -> None: ...

    def approval_get(self, approval_id: str) -> Approval | None: ...

    def approval_list(self, statuses: Sequence[str] | None, team: str | None, limit: int) -> list[Approval]: ...

    def approval_decide(
        self, approval_id: str, status: str, by: str, at: float, note: str | None, expires_at: float
    ) -> bool: ...

    def approval_transition(self, approval_id: str, from_status: str, to_status: str, at: float) -> bool: ...

    def approval_retry_candidates(self, user: str, digest: str, now: float) -> list[str]: ...

    def approval_overdue(self, now: float) -> list[str]: ...

    def close(self) -> None: ...


class SqlStore(ABC):
    """DB-API implementation shared by the dialects. Methods are synchronous: call them from the
    audit writer thread, the CLI, or `asyncio.to_thread`, never on the event loop.

    Each thread keeps one connection (SQLite connections must not hop threads mid-transaction).
    """

    dialect = ""
    param = "?"

    def __init__(self) -> None:
        self._local = threading.local()
        self._all: list[Any] = []
        self._all_lock = threading.Lock()

    # --- dialect hooks ---------------------------------------------------------------------

    @abstractmethod
    def _connect(self) -> Any:
        """A new DB-API connection with no transaction open."""

    @abstractmethod
    def _lock_chain(self, cur: Any) -> None:
        """Begin the write transaction and take the lock that serialises appends to the chain."""

    @contextmanager
    def _connection(self) -> Iterator[Any]:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            self._local.conn = conn
            with self._all_lock:
                self._all.append(conn)
        try:
            yield conn
        except BaseException:
            conn.rollback()
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
        for statement in (s.strip() for s in sql.split(";")):
            if statement:
                cur.execute(statement)

    def ping(self) -> None:
        with self._connection() as conn:
            conn.cursor().execute("SELECT 1")

    # --- audit -----------------------------------------------------------------------------

    def append_audit(self, entries: Sequence[AuditEntry], link: Linker) -> None:
        if not entries:
            return
        p = self.param
        with self._connection() as conn:
            cur = conn.cursor()
            self._lock_chain(cur)
            cur.execute("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
            row = cur.fetchone()
            seq, prev = (row[0], row[1]) if row else (0, GENESIS_HASH)
            rows = []
            for entry in entries:
                seq += 1
                digest = link(prev, entry.canonical)
                rows.append(
                    (
                        seq,
                        entry.request_id,
                        entry.ts,
                        entry.user,
                        entry.team,
                        entry.api,
                        entry.endpoint,
                        entry.jurisdiction,
                        entry.outcome,
                        entry.status,
                        entry.canonical,
                        prev,
                        digest,
                    )
                )
                prev = digest
            cur.executemany(
                f"INSERT INTO audit_log ({_AUDIT_COLUMNS}) VALUES ({', '.join([p] * 13)})",
                rows,
            )
            conn.commit()

    @staticmethod
    def _stored(row: Sequence[Any]) -> StoredAudit:
        entry = AuditEntry(
            request_id=row[1],
            ts=row[2],
            user=row[3],
            team=row[4],
            api=row[5],
            endpoint=row[6],
            jurisdiction=row[7],
            outcome=row[8],
            status=row[9],
            canonical=_as_bytes(row[10]),
        )
        return StoredAudit(seq=row[0], entry=entry, prev_hash=row[11], hash=row[12])

    def iter_audit(self, after_seq: int = 0, batch: int = 5000) -> Iterator[StoredAudit]:
        p = self.param
        last = after_seq
        while True:
            with self._connection() as conn:
                cur = conn.cursor()
                cur.execute(
                    f"SELECT {_AUDIT_COLUMNS} FROM audit_log WHERE seq > {p} ORDER BY seq LIMIT {p}",
                    (last, batch),
                )
                rows = cur.fetchall()
            if not rows:
                return
            for row in rows:
                yield self._stored(row)
            last = rows[-1][0]

    def audit_tail(self, n: int) -> list[StoredAudit]:
        with self._connection() as conn:
            cur = conn.cursor()
            cur.execute(f"SELECT {_AUDIT_COLUMNS} FROM audit_log ORDER BY seq DESC LIMIT {self.param}", (n,))
            rows = cur.fetchall()
        return [self._stored(r) for r in reversed(rows)]

    def audit_count(self) -> int:
        with self._connection() as conn:
            cur = conn.cursor()
            cur.execute("SELECT count(*) FROM audit_log")
            return int(cur.fetchone()[0])

    def audit_head(self) -> tuple[int, str] | None:
        """The chain's last (seq, hash), or None while it is empty."""
        with self._connection() as conn:
            cur = conn.cursor()
            cur.execute("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
            row = cur.fetchone()
            conn.commit()
        return (int(row[0]), str(row[1])) if row else None

    # --- signed checkpoints (signed by egress.audit.checkpoint; stored as given) --------------

    def append_checkpoint(self, checkpoint: Checkpoint) -> None:
        """Keep a signed checkpoint; a second signature of the same head by the same key is dropped."""
        p = self.param
        cp = checkpoint
        with self._connection() as conn:
            conn.cursor().execute(
                f"INSERT INTO audit_checkpoints (seq, key_id, hash, count, ts, signature, first_seq, root) "
                f"VALUES ({p}, {p}, {p}, {p}, {p}, {p}, {p}, {p}) ON CONFLICT (seq, key_id) DO NOTHING",
                (cp.seq, cp.key_id, cp.hash, cp.count, cp.ts, cp.signature, cp.first, cp.root),
            )
            conn.commit()

    def list_checkpoints(self) -> list[Checkpoint]:
        with self._connection() as conn:
            cur = conn.cursor()
            cur.execute(
                "SELECT seq, hash, count, ts, key_id, signature, first_seq, root FROM audit_checkpoints "
                "ORDER BY seq, key_id"
            )
            rows = cur.fetchall()
            conn.commit()
        return [
            Checkpoint(
                int(r[0]),
                str(r[1]),
                int(r[2]),
                float(r[3]),
                str(r[4]),
                str(r[5]),
                None if r[6] is None else int(r[6]),
                None if r[7] is None else str(r[7]),
            )
            for r in rows
        ]

    def last_checkpoint_seq(self) -> int:
        """The highest sequence number any stored checkpoint signs (0 when none)."""
        with self._connection() as conn:
            cur = conn.cursor()
            cur.execute("SELECT max(seq) FROM audit_checkpoints")
            row = cur.fetchone()
            conn.commit()
        return int(row[0]) if row and row[0] is not None else 0

    def iter_audit_hashes(self, first: int, last: int, batch: int = 10000) -> Iterator[tuple[int, str]]:
        """(seq, hash) of the records first..last in order, read in batches (a checkpoint's span)."""
        p = self.param
        after = first - 1
        while after < last:
            with self._connection() as conn:
                cur = conn.cursor()
                cur.execute(
                    f"SELECT seq, hash FROM audit_log WHERE seq > {p} AND seq <= {p} ORDER BY seq LIMIT {p}",
                    (after, last, batch),
                )
                rows = cur.fetchall()
                conn.commit()
            if not rows:
                return
            for row in rows:
                yield int(row[0]), str(row[1])
            after = int(rows[-1][0])

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

    def _keys(self, where: str = "") -> list[GatewayKey]:
        with self._connection() as conn:
            cur = conn.cursor()
            cur.execute(
                "SELECT key_id, key_hash, user_name, team, created_at, revoked_at FROM gateway_keys "
                f"{where} ORDER BY created_at"
            )
            return [GatewayKey(*row) for row in cur.fetchall()]

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
            changed = cur.rowcount
            conn.commit()
        return changed > 0

    # --- mask vault (sealed blobs only; see egress.mask.vault) ---------------------------------

    def vault_get(self, entry_id: str) -> tuple[bytes, float] | None:
        with self._connection() as conn:
            cur = conn.cursor()
            cur.execute(f"SELECT sealed, expires_at FROM mask_vault WHERE entry_id = {self.param}", (entry_id,))
            row = cur.fetchone()
            conn.commit()
        return (_as_bytes(row[0]), float(row[1])) if row else None

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
            removed = cur.rowcount
            conn.commit()
        return removed

    # --- recorded payloads (sealed by egress.audit.recording; stored as given) -----------------

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
            sent=None if row[4] is None else _as_bytes(row[4]),
            received=None if row[5] is None else _as_bytes(row[5]),
            metadata=_as_bytes(row[6]),
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
            removed = cur.rowcount
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

    # --- audit search (the console) ----------------------------------------------------------

    def audit_search(
        self,
        *,
        since: float | None = None,
        until: float | None = None,
        user: str | None = None,
        team: str | None = None,
        endpoint: str | None = None,
        jurisdiction: str | None = None,
        before_seq: int | None = None,
        limit: int = 50,
    ) -> list[StoredAudit]:
        """Records matching the column filters (None matches anything; `until` exclusive), newest
        first, older than `before_seq` when given (keyset pagination)."""
        p = self.param
        clauses: list[str] = []
        args: list[Any] = []
        for sql, value in (
            (f"ts >= {p}", since),
            (f"ts < {p}", until),
            (f"user_name = {p}", user),
            (f"team = {p}", team),
            (f"endpoint = {p}", endpoint),
            (f"jurisdiction = {p}", jurisdiction),
            (f"seq < {p}", before_seq),
        ):
            if value is not None:
                clauses.append(sql)
                args.append(value)
        where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
        with self._connection() as conn:
            cur = conn.cursor()
            cur.execute(f"SELECT {_AUDIT_COLUMNS} FROM audit_log {where} ORDER BY seq DESC LIMIT {p}", (*args, limit))
            rows = cur.fetchall()
            conn.commit()
        return [self._stored(r) for r in rows]

    def audit_by_request(self, request_id: str) -> StoredAudit | None:
        """The request's own record: not the approval steps (outcome `approval_…`) that share its id."""
        with self._connection() as conn:
            cur = conn.cursor()
            cur.execute(
                f"SELECT {_AUDIT_COLUMNS} FROM audit_log WHERE request_id = {self.param} "
                f"AND outcome NOT LIKE {self.param} ORDER BY seq LIMIT 1",
                (request_id, "approval%"),
            )
            row = cur.fetchone()
            conn.commit()
        return self._stored(row) if row else None

    # --- console accounts and sessions (egress.admin) -----------------------------------------

    def console_user_create(self, user: ConsoleUser) -> bool:
        """False when an account of that name exists already (it is left as it was)."""
        p = self.param
        with self._connection() as conn:
            cur = conn.cursor()
            cur.execute(
                f"INSERT INTO console_users (name, password_hash, role, team, created_at) "
                f"VALUES ({p}, {p}, {p}, {p}, {p}) ON CONFLICT (name) DO NOTHING",
                (user.name, user.password_hash, user.role, user.team, user.created_at),
            )
            created = cur.rowcount
            conn.commit()
        return created > 0

    def _console_users(self, where: str = "", args: tuple[Any, ...] = ()) -> list[ConsoleUser]:
        with self._connection() as conn:
            cur = conn.cursor()
            cur.execute(
                f"SELECT name, password_hash, role, team, created_at FROM console_users {where} ORDER BY name", args
            )
            rows = cur.fetchall()
            conn.commit()
        return [ConsoleUser(str(r[0]), str(r[1]), str(r[2]), r[3], float(r[4])) for r in rows]

    def console_user(self, name: str) -> ConsoleUser | None:
        found = self._console_users(f"WHERE name = {self.param}", (name,))
        return found[0] if found else None

    def console_users(self) -> list[ConsoleUser]:
        return self._console_users()

    def console_user_remove(self, name: str) -> bool:
        """Remove the account and end its sessions."""
        p = self.param
        with self._connection() as conn:
            cur = conn.cursor()
            cur.execute(f"DELETE FROM console_sessions WHERE user_name = {p}", (name,))
            cur.execute(f"DELETE FROM console_users WHERE name = {p}", (name,))
            removed = cur.rowcount
            conn.commit()
        return removed > 0

    def console_session_put(self, session: ConsoleSession) -> None:
        p = self.param
        s = session
        with self._connection() as conn:
            conn.cursor().execute(
                f"INSERT INTO console_sessions (token_hash, user_name, role, team, csrf, created_at, expires_at) "
                f"VALUES ({p}, {p}, {p}, {p}, {p}, {p}, {p})",
                (s.token_hash, s.user, s.role, s.team, s.csrf, s.created_at, s.expires_at),
            )
            conn.commit()

    def console_session(self, token_hash: str) -> ConsoleSession | None:
        with self._connection() as conn:
            cur = conn.cursor()
            cur.execute(
                "SELECT token_hash, user_name, role, team, csrf, created_at, expires_at FROM console_sessions "
                f"WHERE token_hash = {self.param}",
                (token_hash,),
            )
            row = cur.fetchone()
            conn.commit()
        if row is None:
            return None
        return ConsoleSession(str(row[0]), str(row[1]), str(row[2]), row[3], str(row[4]), float(row[5]), float(row[6]))

    def console_session_end(self, token_hash: str) -> None:
        with self._connection() as conn:
            conn.cursor().execute(f"DELETE FROM console_sessions WHERE token_hash = {self.param}", (token_hash,))
            conn.commit()

    def console_login_put(self, login: ConsoleLogin, now: float) -> None:
        """Keep a sign-in in progress (and drop those that expired before `now`)."""
        p = self.param
        g = login
        with self._connection() as conn:
            cur = conn.cursor()
            cur.execute(f"DELETE FROM console_logins WHERE expires_at <= {p}", (now,))
            cur.execute(
                f"INSERT INTO console_logins (login_hash, state, nonce, code_verifier, next_path, expires_at) "
                f"VALUES ({p}, {p}, {p}, {p}, {p}, {p})",
                (g.login_hash, g.state, g.nonce, g.code_verifier, g.next_path, g.expires_at),
            )
            conn.commit()

    def console_login_take(self, login_hash: str) -> ConsoleLogin | None:
        """The sign-in in progress, removed as it is read: a callback can use it once."""
        p = self.param
        with self._connection() as conn:
            cur = conn.cursor()
            cur.execute(
                "SELECT login_hash, state, nonce, code_verifier, next_path, expires_at FROM console_logins "
                f"WHERE login_hash = {p}",
                (login_hash,),
            )
            row = cur.fetchone()
            cur.execute(f"DELETE FROM console_logins WHERE login_hash = {p}", (login_hash,))
            taken = cur.rowcount
            conn.commit()
        if row is None or taken == 0:
            return None
        return ConsoleLogin(str(row[0]), str(row[1]), str(row[2]), str(row[3]), str(row[4]), float(row[5]))

    def console_session_purge(self, now: float) -> int:
        with self._connection() as conn:
            cur = conn.cursor()
            cur.execute(f"DELETE FROM console_sessions WHERE expires_at <= {self.param}", (now,))
            removed = cur.rowcount
            conn.commit()
        return removed

    # --- approvals (egress.approve): conditional updates, so racing writers cannot both win ------

    def approval_create(self, approval: Approval) -> None:
        a = approval
        p = self.param
        with self._connection() as conn:
            conn.cursor().execute(
                f"INSERT INTO approvals ({_APPROVAL_COLUMNS}) VALUES ({', '.join([p] * 17)})",
                (
                    a.approval_id,
                    a.status,
                    a.user,
                    a.team,
                    a.request_id,
                    a.api,
                    a.model,
                    orjson.dumps(list(a.endpoints)).decode(),
                    orjson.dumps(list(a.reasons)).decode(),
                    orjson.dumps(a.kinds).decode(),
                    orjson.dumps(a.rules).decode(),
                    a.digest,
                    a.created_at,
                    a.expires_at,
                    a.decided_by,
                    a.decided_at,
                    a.note,
                ),
            )
            conn.commit()

    @staticmethod
    def _approval(row: Sequence[Any]) -> Approval:
        return Approval(
            approval_id=row[0],
            status=row[1],
            user=row[2],
            team=row[3],
            request_id=row[4],
            api=row[5],
            model=row[6],
            endpoints=tuple(orjson.loads(row[7])),
            reasons=tuple(orjson.loads(row[8])),
            kinds=orjson.loads(row[9]),
            rules=orjson.loads(row[10]),
            digest=row[11],
            created_at=float(row[12]),
            expires_at=float(row[13]),
            decided_by=row[14],
            decided_at=float(row[15]) if row[15] is not None else None,
            note=row[16],
        )

    def approval_get(self, approval_id: str) -> Approval | None:
        with self._connection() as conn:
            cur = conn.cursor()
            cur.execute(f"SELECT {_APPROVAL_COLUMNS} FROM approvals WHERE approval_id = {self.param}", (approval_id,))
            row = cur.fetchone()
            conn.commit()
        return self._approval(row) if row else None

    def approval_list(self, statuses: Sequence[str] | None, team: str | None, limit: int) -> list[Approval]:
        """Newest first; `statuses` None means any."""
        p = self.param
        where: list[str] = []
        params: list[Any] = []
        if statuses is not None:
            where.append(f"status IN ({', '.join([p] * len(statuses))})")
            params.extend(statuses)
        if team is not None:
            where.append(f"team = {p}")
            params.append(team)
        clause = f"WHERE {' AND '.join(where)} " if where else ""
        with self._connection() as conn:
            cur = conn.cursor()
            cur.execute(
                f"SELECT {_APPROVAL_COLUMNS} FROM approvals {clause}ORDER BY created_at DESC LIMIT {p}",
                (*params, limit),
            )
            rows = cur.fetchall()
            conn.commit()
        return [self._approval(r) for r in rows]

    def approval_decide(
        self, approval_id: str, status: str, by: str, at: float, note: str | None, expires_at: float
    ) -> bool:
        """pending -> `status`, only while it is pending and not past its deadline (at most one
        decision wins); `expires_at` becomes the deadline for using an approval."""
        p = self.param
        with self._connection() as conn:
            cur = conn.cursor()
            cur.execute(
                f"UPDATE approvals SET status = {p}, decided_by = {p}, decided_at = {p}, note = {p}, "
                f"expires_at = {p} WHERE approval_id = {p} AND status = 'pending' AND expires_at > {p}",
                (status, by, at, note, expires_at, approval_id, at),
            )
            changed = cur.rowcount
            conn.commit()
        return changed == 1

    def approval_transition(self, approval_id: str, from_status: str, to_status: str, at: float) -> bool:
        """`from_status` -> `to_status` while the approval is still in `from_status` (at most one
        writer wins); approved -> used also requires it to be within its deadline."""
        p = self.param
        deadline = f" AND expires_at > {p}" if to_status == "used" else ""
        params: tuple[Any, ...] = (to_status, approval_id, from_status) + ((at,) if deadline else ())
        with self._connection() as conn:
            cur = conn.cursor()
            cur.execute(f"UPDATE approvals SET status = {p} WHERE approval_id = {p} AND status = {p}{deadline}", params)
            changed = cur.rowcount
            conn.commit()
        return changed == 1

    def approval_retry_candidates(self, user: str, digest: str, now: float) -> list[str]:
        """Approved, unused, unexpired approvals of this user for this digest, oldest decision first."""
        p = self.param
        with self._connection() as conn:
            cur = conn.cursor()
            cur.execute(
                f"SELECT approval_id FROM approvals WHERE digest = {p} AND user_name = {p} "
                f"AND status = 'approved' AND expires_at > {p} ORDER BY decided_at",
                (digest, user, now),
            )
            rows = cur.fetchall()
            conn.commit()
        return [str(r[0]) for r in rows]

    def approval_overdue(self, now: float) -> list[str]:
        """Pending or approved approvals past their deadline (to be marked expired)."""
        with self._connection() as conn:
            cur = conn.cursor()
            cur.execute(
                "SELECT approval_id FROM approvals WHERE status IN ('pending', 'approved') "
                f"AND expires_at <= {self.param}",
                (now,),
            )
            rows = cur.fetchall()
            conn.commit()
        return [str(r[0]) for r in rows]

    def close(self) -> None:
        with self._all_lock:
            conns, self._all = self._all, []
        for conn in conns:
            conn.close()
        self._local = threading.local()
