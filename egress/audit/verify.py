"""Verify the audit: the hash chain, then every signed checkpoint against it.

The chain names the first record that was edited, deleted, inserted or reordered. The
checkpoints add what a chain alone cannot show: a chain rewritten from some record on (every
later hash recomputed) no longer ends at a signed hash, and a chain cut short no longer reaches
a signed sequence number (truncation). For each v2 checkpoint the Merkle root over its span is
recomputed from the records (`egress.audit.spans`): a root that does not match is a break, since
inclusion proofs handed to auditors are checked against it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from egress.audit.chain import Break, VerifyReport, verify
from egress.audit.checkpoint import signature_problem
from egress.audit.spans import SpanRootCheck
from egress.core.records import Checkpoint, StoredAudit


class AuditSource(Protocol):
    """Where the audit lives (a `Store`)."""

    def iter_audit(self, after_seq: int = 0, batch: int = 5000) -> Iterator[StoredAudit]: ...

    def list_checkpoints(self) -> list[Checkpoint]: ...


@dataclass(frozen=True, slots=True)
class Membership:
    """A filtered export's records against the signed log: `proven` have an inclusion proof that
    leads to the signed root of a checkpoint; the others have none, either because no checkpoint
    covered them yet when exported (`not_yet_covered`, after the export's last checkpoint) or
    because only version 1 checkpoints, which sign no root, cover them (`v1_only`)."""

    proven: int
    not_yet_covered: int
    v1_only: int
    first_break: Break | None


@dataclass(frozen=True, slots=True)
class AuditReport:
    chain: VerifyReport
    checkpoints_verified: int
    checkpoint_break: Break | None
    covered_seq: int  # the highest sequence number a valid checkpoint vouches for
    membership: Membership | None = None  # filtered exports only

    @property
    def ok(self) -> bool:
        return self.chain.ok and self.checkpoint_break is None and self.membership_break is None

    @property
    def membership_break(self) -> Break | None:
        return self.membership.first_break if self.membership is not None else None

    @property
    def breaks(self) -> list[Break]:
        found = (self.chain.first_break, self.checkpoint_break, self.membership_break)
        return [b for b in found if b is not None]


def _tap(
    records: Iterable[StoredAudit], watch: set[int], seen: dict[int, str], spans: SpanRootCheck
) -> Iterator[StoredAudit]:
    """The records, unchanged, noting the hash of each one a checkpoint names and feeding the
    span roots."""
    for stored in records:
        if stored.seq in watch:
            seen[stored.seq] = stored.hash
        spans.feed(stored.seq, stored.hash)
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
    each checkpoint's hash against the record it names and its span root against its records;
    the first failure is reported."""
    seen: dict[int, str] = {}
    spans = SpanRootCheck(checkpoints)
    chain = verify(_tap(records, {cp.seq for cp in checkpoints}, seen, spans), check_columns)
    wrong_root = {(m.checkpoint.seq, m.checkpoint.key_id): m.reason for m in spans.mismatches}
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
        elif (cp.seq, cp.key_id) in wrong_root:
            problem = Break(cp.seq, None, f"{_where(cp)}: {wrong_root[cp.seq, cp.key_id]}")
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
