"""Verify the audit: the hash chain, then every signed checkpoint against it.

The chain names the first record that was edited, deleted, inserted or reordered. The
checkpoints add what a chain alone cannot show: a chain rewritten from some record on (every
later hash recomputed) no longer ends at a signed hash, and a chain cut short no longer reaches
a signed sequence number (truncation). For each v2 checkpoint the Merkle root over its span is
recomputed from the records (`egress.audit.spans`): a root that does not match is a break, since
inclusion proofs handed to auditors are checked against it.

Against an anchor (`egress.audit.anchor`, the checkpoints kept outside the database), what the
database alone cannot show either: its newest checkpoints deleted together with the records
after an older one. Every line of the anchor must be a checkpoint signed by the key; every
anchored checkpoint must be in the database with the same head (same record and hash, by the
same key), and it joins the database's checkpoints in the checks above, so the chain must reach
the newest anchored head and have the signed hash there. Checkpoints in the database that the
anchor lacks are reported but are no failure: a gateway with another anchor (another host on the
same PostgreSQL), one from before anchors existed, or one whose anchor append failed signed them;
they are checked against the chain and the key like any other.

Alongside, as information and not a break: orphan egress records (`egress.audit.orphans`),
write-ahead records whose request has no own record after them (the gateway stopped in between,
or the request is still in flight).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Protocol

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from egress.audit.anchor import AnchorLog
from egress.audit.chain import Break, VerifyReport, verify
from egress.audit.checkpoint import signature_problem
from egress.audit.orphans import OrphanEgress, OrphanTracker
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
class AnchorCheck:
    """The database against an anchor: `problems` are failures (each names the anchor line or the
    checkpoint's record and head); `not_anchored` are the database's checkpoints the anchor lacks
    (reported, no failure); `newest` is the newest anchored checkpoint that verifies."""

    path: str
    exists: bool
    anchored: int
    newest: Checkpoint | None
    problems: tuple[str, ...]
    not_anchored: tuple[Checkpoint, ...]


@dataclass(frozen=True, slots=True)
class AuditReport:
    chain: VerifyReport
    checkpoints_verified: int
    checkpoint_break: Break | None
    covered_seq: int  # the highest sequence number a valid checkpoint vouches for
    membership: Membership | None = None  # filtered exports only
    anchor: AnchorCheck | None = None  # live stores verified against an anchor
    # Egress records whose request has no own record after them: information, never a break.
    orphans: tuple[OrphanEgress, ...] = ()

    @property
    def ok(self) -> bool:
        anchored = self.anchor is None or not self.anchor.problems
        return self.chain.ok and self.checkpoint_break is None and self.membership_break is None and anchored

    @property
    def uncovered(self) -> int:
        """Records after the last one a valid checkpoint vouches for: only the chain protects them
        (0 when the chain is broken, since its end is then unknown)."""
        return max(self.chain.last_seq - self.covered_seq, 0) if self.chain.ok else 0

    @property
    def membership_break(self) -> Break | None:
        return self.membership.first_break if self.membership is not None else None

    @property
    def breaks(self) -> list[Break]:
        found = (self.chain.first_break, self.checkpoint_break, self.membership_break)
        return [b for b in found if b is not None]


def _tap(
    records: Iterable[StoredAudit],
    watch: set[int],
    seen: dict[int, str],
    spans: SpanRootCheck,
    orphans: OrphanTracker,
) -> Iterator[StoredAudit]:
    """The records, unchanged, noting the hash of each one a checkpoint names and feeding the
    span roots and the orphan tracker."""
    for stored in records:
        if stored.seq in watch:
            seen[stored.seq] = stored.hash
        spans.feed(stored.seq, stored.hash)
        orphans.feed(stored)
        yield stored


def verify_store(source: AuditSource, public: Ed25519PublicKey | None, anchor: AnchorLog | None = None) -> AuditReport:
    """Verify a live store, against `anchor` when given. The checkpoints are read before the
    records: a checkpoint is stored only after the records it covers are committed, so a gateway
    writing meanwhile cannot make the chain look truncated. For the same reason the anchor must be
    read before this call: a gateway appends a checkpoint to its anchor only once it is stored."""
    checkpoints = source.list_checkpoints()
    if anchor is None:
        return verify_audit(source.iter_audit(), checkpoints, public)
    return verify_anchored(source.iter_audit(), checkpoints, anchor, public)


def verify_anchored(
    records: Iterable[StoredAudit],
    checkpoints: Sequence[Checkpoint],
    anchor: AnchorLog,
    public: Ed25519PublicKey | None,
) -> AuditReport:
    """`verify_audit` over the database's checkpoints and the anchored ones it lacks, and the
    anchor's own checks: every line a checkpoint signed by the key, every anchored checkpoint in
    the database with the same head, the chain reaching the newest anchored head."""
    stored = {(cp.seq, cp.key_id): cp for cp in checkpoints}
    problems: list[str] = []
    if not anchor.exists:
        problems.append(f"the checkpoint anchor {anchor.path} is missing (deleted, or never written here)")
    valid: dict[tuple[int, str], Checkpoint] = {}
    for line in anchor.lines:
        where = f"anchor {anchor.path} line {line.number}"
        cp = line.checkpoint
        if cp is None:
            problems.append(f"{where} is {line.problem}")
            continue
        bad = signature_break(cp, public)
        if bad is not None:
            problems.append(f"{where}: {bad.reason}")
            continue
        valid.setdefault((cp.seq, cp.key_id), cp)
        mine = stored.get((cp.seq, cp.key_id))
        if mine is None:
            problems.append(f"{where}: the {_where(cp)} with head {cp.hash} is missing from the database")
        elif mine.hash != cp.hash:
            problems.append(f"{where}: the database's {_where(cp)} has head {mine.hash}, the anchored one {cp.hash}")
    extra = [cp for key, cp in valid.items() if key not in stored]
    report = verify_audit(records, [*checkpoints, *extra], public)
    newest = max(valid.values(), key=lambda c: c.seq, default=None)
    end = report.chain.last_seq
    if newest is not None and report.chain.ok and newest.seq > end:
        problems.append(
            f"the chain ends at record {end}, before the newest anchored {_where(newest)} with head "
            f"{newest.hash}: records {end + 1}..{newest.seq} were cut off"
        )
    check = AnchorCheck(
        path=str(anchor.path),
        exists=anchor.exists,
        anchored=len(valid),
        newest=newest,
        problems=tuple(problems),
        not_anchored=tuple(cp for key, cp in sorted(stored.items()) if key not in valid),
    )
    return replace(report, anchor=check)


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
    orphans = OrphanTracker()
    chain = verify(_tap(records, {cp.seq for cp in checkpoints}, seen, spans, orphans), check_columns)
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
            # The checkpoints before this one still match: the rewrite lies after the last of them.
            problem = Break(
                cp.seq,
                None,
                f"{_where(cp)}: record {cp.seq} no longer has the signed hash {cp.hash} (a record in "
                f"{covered + 1}..{cp.seq} was rewritten and every later hash recomputed)",
            )
        elif (cp.seq, cp.key_id) in wrong_root:
            problem = Break(cp.seq, None, f"{_where(cp)}: {wrong_root[cp.seq, cp.key_id]}")
        elif cp.seq in seen:
            verified += 1
            covered = cp.seq
    return AuditReport(chain, verified, problem, covered, orphans=orphans.orphans())


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
