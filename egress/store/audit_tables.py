"""The audit chain's tables: records, signed checkpoints, and the console's audit search.

The chain is extended inside one write transaction that first reads its tail (under the
dialect's lock), so several gateway processes or replicas appending at once still produce one
linear chain with dense sequence numbers."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

from egress.core.records import GENESIS_HASH, AuditEntry, Checkpoint, StoredAudit
from egress.store.sql import SqlBase, as_bytes

# link(prev_hash, canonical_record) -> hash. Injected by the audit package, which owns the chain.
Linker = Callable[[str, bytes], str]

_AUDIT_COLUMNS = (
    "seq, request_id, ts, user_name, team, api, endpoint, jurisdiction, outcome, status, record, prev_hash, hash"
)



class AuditTables(SqlBase):
    """Audit records and checkpoints, stored as the audit package made them."""

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
            canonical=as_bytes(row[10]),
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

    def audit_egress_of(self, request_id: str) -> list[StoredAudit]:
        """A request's write-ahead egress records (outcome `egress`), one per attempted endpoint,
        in chain order."""
        p = self.param
        with self._connection() as conn:
            cur = conn.cursor()
            cur.execute(
                f"SELECT {_AUDIT_COLUMNS} FROM audit_log WHERE request_id = {p} AND outcome = {p} ORDER BY seq",
                (request_id, "egress"),
            )
            rows = cur.fetchall()
            conn.commit()
        return [self._stored(r) for r in rows]

    def audit_by_request(self, request_id: str) -> StoredAudit | None:
        """The request's own record: not the approval steps (outcome `approval_…`) nor the
        write-ahead egress records (outcome `egress`) that share its id."""
        p = self.param
        with self._connection() as conn:
            cur = conn.cursor()
            cur.execute(
                f"SELECT {_AUDIT_COLUMNS} FROM audit_log WHERE request_id = {p} "
                f"AND outcome NOT LIKE {p} AND outcome <> {p} ORDER BY seq LIMIT 1",
                (request_id, "approval%", "egress"),
            )
            row = cur.fetchone()
            conn.commit()
        return self._stored(row) if row else None
