"""Verify the audit: the hash chain, then every signed checkpoint against it.

The chain names the first record that was edited, deleted, inserted or reordered. The
checkpoints add what a chain alone cannot show: a chain rewritten from some record on (every
later hash recomputed) no longer ends at a signed hash, and a chain cut short no longer reaches
a signed sequence number (truncation).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from egress.audit.chain import Break, VerifyReport, verify
from egress.audit.checkpoint import signature_problem
from egress.core.records import Checkpoint, StoredAudit


class AuditSource(Protocol):
    """Where the audit lives (a `Store`)."""

    def iter_audit(self, after_seq: int = 0, batch: int = 5000) -> Iterator[StoredAudit]: ...

    def list_checkpoints(self) -> list[Checkpoint]: ...


@dataclass(frozen=True, slots=True)
class AuditReport:
    chain: VerifyReport
    checkpoints_verified: int
    checkpoint_break: Break | None
    covered_seq: int  # the highest sequence number a valid checkpoint vouches for

    @property
    def ok(self) -> bool:
        return self.chain.ok and self.checkpoint_break is None

    @property
    def breaks(self) -> list[Break]:
        return [b for b in (self.chain.first_break, self.checkpoint_break) if b is not None]


def _tap(records: Iterable[StoredAudit], watch: set[int], seen: dict[int, str]) -> Iterator[StoredAudit]:
    """The records, unchanged, noting the hash of each one a checkpoint names."""
    for stored in records:
        if stored.seq in watch:
            seen[stored.seq] = stored.hash
        yield stored


def verify_store(source: AuditSource, public: Ed25519PublicKey | None) -> AuditReport:
    """Verify a live store. The checkpoints are read before the records: a checkpoint is stored
    only after the records it covers are committed, so a gateway writing meanwhile cannot make
    the chain look truncated."""
    checkpoints = source.list_checkpoints()
    return verify_audit(source.iter_audit(), checkpoints, public)


def verify_audit(
    records: Iterable[StoredAudit],
    checkpoints: Sequence[Checkpoint],
    public: Ed25519PublicKey | None,
    check_columns: bool = True,
) -> AuditReport:
    """Chain first; then every checkpoint's signature, truncation against the furthest one, and
    each checkpoint's hash against the record it names; the first failure is reported."""
    seen: dict[int, str] = {}
    chain = verify(_tap(records, {cp.seq for cp in checkpoints}, seen), check_columns)
    ordered = sorted(checkpoints, key=lambda c: (c.seq, c.key_id))
    problem = next((p for p in (signature_break(cp, public) for cp in ordered) if p), None)
    if problem is None and ordered and chain.ok and ordered[-1].seq > chain.last_seq:
        problem = truncation_break(ordered[-1], chain.last_seq)
    verified = covered = 0
    for cp in ordered:
        if problem is not None:
            break
        if cp.seq in seen and seen[cp.seq] != cp.hash:
            problem = Break(
                cp.seq,
                None,
                f"{_where(cp)}: record {cp.seq} no longer has the signed hash "
                "(records up to it were rewritten and re-chained)",
            )
        elif cp.seq in seen:
            verified += 1
            covered = cp.seq
    return AuditReport(chain, verified, problem, covered)


def _where(cp: Checkpoint) -> str:
    return f"checkpoint at record {cp.seq} (key {cp.key_id})"


def signature_break(cp: Checkpoint, public: Ed25519PublicKey | None) -> Break | None:
    if public is None:
        return Break(cp.seq, None, f"{_where(cp)}: no public key to check its signature")
    bad = signature_problem(cp, public)
    return Break(cp.seq, None, f"{_where(cp)}: {bad}") if bad else None


def truncation_break(furthest: Checkpoint, last_seq: int) -> Break:
    first = last_seq + 1
    return Break(
        first,
        None,
        f"records {first}..{furthest.seq} are missing: the chain ends at record {last_seq} but the "
        f"{_where(furthest)} covers {furthest.seq} records (truncated)",
    )
