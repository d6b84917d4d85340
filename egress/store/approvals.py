"""Approvals (egress.approve). State changes are conditional updates, so two approvers or two
replicas racing cannot both win."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from egress.core.approvals import Approval, ApprovalStatus
from egress.store.sql import SqlBase

_APPROVAL_COLUMNS = (
    "approval_id, status, user_name, team, request_id, api, model, endpoints, reasons, kinds, rules, digest, "
    "created_at, expires_at, decided_by, decided_at, note"
)



class ApprovalTables(SqlBase):
    """Approval requests and their decisions."""

    # --- approvals (egress.approve): conditional updates, so racing writers cannot both win ------

    def approval_create(self, approval: Approval) -> None:
        with self._connection() as conn:
            self._insert_approval(conn.cursor(), approval)
            conn.commit()

    def _insert_approval(self, cur: Any, approval: Approval) -> None:
        a = approval
        p = self.param
        cur.execute(
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

    def approval_join_or_create(self, approval: Approval, now: float) -> tuple[str, bool]:
        """Insert `approval` unless a pending, unexpired approval of the same user and digest
        exists: then (that approval's id, False), else (its own id, True). Atomic across
        processes sharing the store: SQLite takes its write lock before the check (BEGIN
        IMMEDIATE), PostgreSQL a transaction-scoped advisory lock on the digest, so two identical
        requests racing on two replicas cannot both create one."""
        p = self.param
        with self._connection() as conn:
            cur = conn.cursor()
            if self.dialect == "postgres":
                cur.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", ("egress.approval:" + approval.digest,))
            else:
                cur.execute("BEGIN IMMEDIATE")
            cur.execute(
                f"SELECT approval_id FROM approvals WHERE digest = {p} AND user_name = {p} "
                f"AND status = 'pending' AND expires_at > {p} ORDER BY created_at LIMIT 1",
                (approval.digest, approval.user, now),
            )
            row = cur.fetchone()
            if row is None:
                self._insert_approval(cur, approval)
            conn.commit()
        return (approval.approval_id, True) if row is None else (str(row[0]), False)

    @staticmethod
    def _approval(row: Sequence[Any]) -> Approval:
        return Approval(
            approval_id=row[0],
            status=ApprovalStatus(row[1]),
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

    def approval_list(self, statuses: Sequence[ApprovalStatus] | None, team: str | None, limit: int) -> list[Approval]:
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
        self, approval_id: str, status: ApprovalStatus, by: str, at: float, note: str | None, expires_at: float
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
            changed: int = cur.rowcount
            conn.commit()
        return changed == 1

    def approval_transition(
        self, approval_id: str, from_status: ApprovalStatus, to_status: ApprovalStatus, at: float
    ) -> bool:
        """`from_status` -> `to_status` while the approval is still in `from_status` (at most one
        writer wins); approved -> used also requires it to be within its deadline."""
        p = self.param
        deadline = f" AND expires_at > {p}" if to_status == ApprovalStatus.USED else ""
        params: tuple[Any, ...] = (to_status, approval_id, from_status) + ((at,) if deadline else ())
        with self._connection() as conn:
            cur = conn.cursor()
            cur.execute(f"UPDATE approvals SET status = {p} WHERE approval_id = {p} AND status = {p}{deadline}", params)
            changed: int = cur.rowcount
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
