"""Verify the audit: the hash chain, then every signed checkpoint against it.

The chain names the first record that was edited, deleted, inserted or reordered. The
checkpoints add what a chain alone cannot show: a chain rewritten from some record on (every
later hash recomputed) no longer ends at a signed hash, and a chain cut short no longer reaches
a signed sequence number (truncation).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from egress.audit.chain import Break, VerifyReport, verify
from egress.audit.checkpoint import signature_problem
from egress.core.records import Checkpoint, StoredAudit


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


def verify_audit(
    records: Iterable[StoredAudit], checkpoints: Sequence[Checkpoint], public: Ed25519PublicKey | None
) -> AuditReport:
    """Chain first; then each checkpoint, in sequence order, until the first one that fails."""
    seen: dict[int, str] = {}
    chain = verify(_tap(records, {cp.seq for cp in checkpoints}, seen))
    verified = 0
    covered = 0
    for cp in sorted(checkpoints, key=lambda c: (c.seq, c.key_id)):
        problem = checkpoint_problem(cp, public, chain, seen.get(cp.seq))
        if problem is not None:
            return AuditReport(chain, verified, problem, covered)
        if cp.seq in seen:
            verified += 1
            covered = cp.seq
    return AuditReport(chain, verified, None, covered)


def checkpoint_problem(
    cp: Checkpoint, public: Ed25519PublicKey | None, chain: VerifyReport, hash_at_seq: str | None
) -> Break | None:
    """Why `cp` does not vouch for the chain as read, or None (also when a chain break comes
    first: a checkpoint past the first broken record cannot be compared)."""
    where = f"checkpoint at record {cp.seq} (key {cp.key_id})"
    if public is None:
        return Break(cp.seq, None, f"{where}: no public key to check its signature")
    bad_signature = signature_problem(cp, public)
    if bad_signature:
        return Break(cp.seq, None, f"{where}: {bad_signature}")
    if chain.ok and cp.seq > chain.last_seq:
        first = chain.last_seq + 1
        return Break(
            first,
            None,
            f"records {first}..{cp.seq} are missing: the chain ends at record {chain.last_seq} but the "
            f"{where} covers {cp.seq} records (truncated)",
        )
    if hash_at_seq is not None and hash_at_seq != cp.hash:
        return Break(
            cp.seq,
            None,
            f"{where}: record {cp.seq} no longer has the signed hash (records up to it were rewritten and re-chained)",
        )
    return None
