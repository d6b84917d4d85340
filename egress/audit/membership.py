"""Verify a filtered audit export: each record's content, and its membership in the signed log.

A filtered export holds some records of the chain, not their neighbours. What it proves, with
the gateway's public key alone:
- each record's hash is SHA-256 over its stated predecessor hash and its content, exported
  records that are neighbours in the chain link up, and sequence numbers only increase;
- every checkpoint in it is signed by the key (and its span well formed);
- (format v2) each record with an inclusion proof is a member of the signed log: the leaf of its
  sequence number and hash, hashed up its path, gives the Merkle root signed by a checkpoint whose
  span holds it, at the place the signed span gives it (`egress.audit.spans.proof_problem`).

Records without a proof are counted, not failed, when honest reasons explain it: after the
export's last checkpoint (not yet covered by a signed checkpoint), or covered only by version 1
checkpoints, which sign no Merkle root. A record without a proof inside the export's signed spans
fails. What no filtered export can prove is that the filter selected every matching record.
"""

from __future__ import annotations

from collections.abc import Sequence

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from egress.audit.chain import Break, VerifyReport, link
from egress.audit.spans import InclusionProof, is_v2, proof_problem
from egress.audit.verify import AuditReport, Membership, signature_break
from egress.core.records import GENESIS_HASH, Checkpoint, StoredAudit


def verify_filtered(
    records: Sequence[StoredAudit],
    checkpoints: Sequence[Checkpoint],
    proofs: Sequence[InclusionProof] | None,
    public: Ed25519PublicKey,
) -> AuditReport:
    """Records, then checkpoints, then (when `proofs` is not None: format v2) membership."""
    hashes: dict[int, str] = {}
    previous: StoredAudit | None = None
    for stored in records:
        brk = _record_break(stored, previous)
        if brk is not None:
            return AuditReport(VerifyReport(len(hashes), stored.seq, stored.prev_hash, brk), 0, None, 0)
        hashes[stored.seq] = stored.hash
        previous = stored
    last = records[-1] if records else None
    chain = VerifyReport(len(hashes), last.seq if last else 0, last.hash if last else GENESIS_HASH, None)
    verified = covered = 0
    first_bad: Break | None = None
    valid: list[Checkpoint] = []
    rejected: dict[int, str] = {}  # checkpoint seq -> why it is not a signed statement by the key
    for cp in sorted(checkpoints, key=lambda c: (c.seq, c.key_id)):
        brk = signature_break(cp, public)
        if brk is None and cp.seq in hashes and hashes[cp.seq] != cp.hash:
            brk = Break(
                cp.seq, None, f"checkpoint at record {cp.seq}: the exported record does not have the signed hash"
            )
        if brk is not None:
            first_bad = first_bad or brk
            rejected.setdefault(cp.seq, brk.reason)
            continue
        valid.append(cp)
        verified += 1
        covered = max(covered, cp.seq)
    if proofs is None:
        return AuditReport(chain, verified, first_bad, covered)
    # Checked even when a checkpoint failed, so the records that relied on it are named too.
    member = membership(records, valid, checkpoints, proofs, rejected)
    return AuditReport(chain, verified, first_bad, covered, member)


def membership(
    records: Sequence[StoredAudit],
    valid: Sequence[Checkpoint],
    present: Sequence[Checkpoint],
    proofs: Sequence[InclusionProof],
    rejected: dict[int, str],
) -> Membership:
    """Each record against its proof: `valid` are the checkpoints whose signature verified (one
    key, so one per sequence number), `present` all the export holds, `rejected` why the others
    failed."""
    by_seq = {cp.seq: cp for cp in valid}
    rid = {r.seq: r.entry.request_id for r in records}
    spans = [cp for cp in present if is_v2(cp)]
    lowest = min((cp.first or 0 for cp in spans), default=0)
    highest_span = max((cp.seq for cp in spans), default=0)
    highest = max((cp.seq for cp in present), default=0)
    proven = not_yet = v1_only = 0

    def failed(seq: int, reason: str) -> Membership:
        return Membership(proven, not_yet, v1_only, Break(seq, rid.get(seq), reason))

    by_record: dict[int, InclusionProof] = {}
    for given in proofs:
        if given.seq not in rid:
            return failed(given.seq, f"an inclusion proof for record {given.seq}, which is not in the export")
        if given.seq in by_record:
            return failed(given.seq, "two inclusion proofs for one record")
        by_record[given.seq] = given
    for stored in records:
        proof = by_record.get(stored.seq)
        if proof is None:
            if spans and lowest <= stored.seq <= highest_span:
                return failed(
                    stored.seq,
                    f"no inclusion proof, although the export's signed spans cover records {lowest}..{highest_span}",
                )
            if stored.seq > highest:
                not_yet += 1
            else:
                v1_only += 1
            continue
        cp = by_seq.get(proof.checkpoint_seq)
        if cp is None:
            bad = rejected.get(proof.checkpoint_seq)
            why = f"which does not verify ({bad})" if bad else "which is not in the export"
            return failed(
                stored.seq,
                f"not proven a member of the signed log: its inclusion proof leads to the checkpoint at "
                f"record {proof.checkpoint_seq}, {why}",
            )
        problem = proof_problem(proof, stored.hash, cp)
        if problem is not None:
            return failed(stored.seq, f"not proven a member of the signed log: {problem}")
        proven += 1
    return Membership(proven, not_yet, v1_only, None)


def _record_break(stored: StoredAudit, previous: StoredAudit | None) -> Break | None:
    rid = stored.entry.request_id
    if link(stored.prev_hash, stored.entry.canonical) != stored.hash:
        return Break(stored.seq, rid, "record content was altered (its hash does not match)")
    if previous is None:
        return None
    if stored.seq <= previous.seq:
        return Break(stored.seq, rid, f"sequence number {stored.seq} is out of order (after {previous.seq})")
    if stored.seq == previous.seq + 1 and stored.prev_hash != previous.hash:
        return Break(stored.seq, rid, "previous-hash link does not match the preceding record")
    return None
