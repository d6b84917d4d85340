"""Audit records of approval steps: requested, approved, denied, expired, cancelled, used.

Each step is its own record in the chain (next to the request's own record, which carries the
approval's id, final status and approver), written by whoever took the step: the gateway, the
CLI, the console. Invariant: ids, who, when, counts and reasons only, never prompt content.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Protocol

from egress.audit.chain import link
from egress.core.approvals import Approval
from egress.core.audit_record import APPROVAL_TYPE, RECORD_VERSION, ApprovalStep, AuditRecord
from egress.core.records import AuditEntry


def approval_step_entry(approval: Approval, step: str, actor: str | None, ts: float) -> AuditEntry:
    """The audit entry of one step; `actor` is the approver (None: the gateway itself)."""
    record = AuditRecord(
        v=RECORD_VERSION,
        type=APPROVAL_TYPE,
        request_id=approval.request_id,
        ts=ts,
        user=approval.user,
        team=approval.team,
        api=approval.api,
        model=approval.model,
        endpoint=None,
        jurisdiction=None,
        outcome=f"approval_{step}",
        status=None,
        approval=ApprovalStep(
            id=approval.approval_id,
            step=step,
            status=approval.status,
            actor=actor or "egress",
            approver=approval.decided_by,
            note=approval.note,
            digest=approval.digest,
            facts=approval.facts(),
        ),
    )
    return AuditEntry(
        request_id=approval.request_id,
        ts=ts,
        user=approval.user,
        team=approval.team,
        api=approval.api,
        endpoint=None,
        jurisdiction=None,
        outcome=f"approval_{step}",
        status=None,
        canonical=record.canonical(),
    )


class _Submits(Protocol):
    def submit(self, entry: AuditEntry) -> None: ...


class _Appends(Protocol):
    def append_audit(self, entries: Sequence[AuditEntry], link: Callable[[str, bytes], str]) -> None: ...


class WriterJournal:
    """Approval steps taken in the gateway process go through its audit writer (group commit)."""

    def __init__(self, writer: _Submits) -> None:
        self._writer = writer

    def __call__(self, approval: Approval, step: str, actor: str | None) -> None:
        self._writer.submit(approval_step_entry(approval, step, actor, time.time()))


class ChainJournal:
    """Approval steps taken by a short-lived process (the CLI) are appended to the chain at once,
    inside the store's locked write transaction like every other append."""

    def __init__(self, store: _Appends) -> None:
        self._store = store

    def __call__(self, approval: Approval, step: str, actor: str | None) -> None:
        self._store.append_audit([approval_step_entry(approval, step, actor, time.time())], link)
