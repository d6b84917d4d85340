"""Checkpoint spans: the Merkle root a v2 checkpoint signs, recomputed from records, and the
inclusion proofs that tie one record to it.

A v2 checkpoint at `seq` with span start `first` signs the root over the leaves of records
first..seq (`egress.audit.merkle.leaf_hash(seq, hash)`), in order, with no gap. Spans of
checkpoints signed concurrently by two gateway processes may overlap; each is checked on its own.

Everything here streams: records arrive in sequence order once, and memory holds only the spans
still open (a root needs O(log n) hashes; proofs need the span's leaves, 32 bytes each).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from egress.audit.merkle import HASH_SIZE, RootBuilder, Tree, leaf_hash, verify_inclusion
from egress.core.records import Checkpoint


class SpanError(ValueError):
    """The records of a span are not the dense run first..seq ending at the head's hash."""


def span_root(pairs: Iterable[tuple[int, str]], first: int, head: tuple[int, str]) -> bytes:
    """The root over the records first..head (their (seq, hash) in order), checking that they
    are exactly those records and that the last one is the head the checkpoint signs."""
    builder = RootBuilder()
    expected, last_hash = first, ""
    for seq, digest in pairs:
        if seq != expected:
            raise SpanError(f"record {expected} is missing from the span {first}..{head[0]} (read {seq})")
        builder.add(leaf_hash(seq, digest))
        expected, last_hash = seq + 1, digest
    if expected != head[0] + 1 or last_hash != head[1]:
        raise SpanError(f"the span {first}..{head[0]} does not end at the head record")
    return builder.root()


def is_v2(cp: Checkpoint) -> bool:
    return cp.first is not None and cp.root is not None


@dataclass(frozen=True, slots=True)
class SpanMismatch:
    checkpoint: Checkpoint
    reason: str


class SpanRootCheck:
    """Recomputes every v2 checkpoint's root from the records fed to it in sequence order.

    `feed` each record's (seq, hash) in order. A span is checked when its last record is fed:
    a wrong root (or a span with records missing) lands in `mismatches`, a right one counts in
    `checked`; a span the records never reach the end of is left to the chain and truncation
    checks, which report the missing records as such."""

    def __init__(self, checkpoints: Sequence[Checkpoint]) -> None:
        spans = sorted((cp for cp in checkpoints if is_v2(cp)), key=lambda c: (c.first or 0, c.seq, c.key_id))
        self._pending = spans  # not yet started, by first
        self._next = 0
        self._open: list[tuple[Checkpoint, RootBuilder]] = []
        self.mismatches: list[SpanMismatch] = []
        self.checked = 0

    def feed(self, seq: int, digest: str) -> None:
        pending = self._pending
        while self._next < len(pending) and (pending[self._next].first or 0) <= seq:
            self._open.append((pending[self._next], RootBuilder()))
            self._next += 1
        if not self._open:
            return
        leaf = leaf_hash(seq, digest)
        still = []
        for cp, builder in self._open:
            builder.add(leaf)
            if seq < cp.seq:
                still.append((cp, builder))
            elif builder.root().hex() == cp.root and builder.size == cp.seq - (cp.first or 0) + 1:
                self.checked += 1
            else:
                self.mismatches.append(
                    SpanMismatch(cp, f"its signed Merkle root over records {cp.first}..{cp.seq} does not match them")
                )
        self._open = still


# --- inclusion proofs ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class InclusionProof:
    """Record `seq` is leaf `index` of the `size` leaves under the root of the checkpoint at
    `checkpoint_seq`; `path` holds the sibling hashes (hex) from the leaf up."""

    seq: int
    checkpoint_seq: int
    size: int
    index: int
    path: tuple[str, ...]

    def as_json(self) -> dict[str, object]:
        return {
            "seq": self.seq,
            "checkpoint_seq": self.checkpoint_seq,
            "size": self.size,
            "index": self.index,
            "path": list(self.path),
        }


def proof_problem(proof: InclusionProof, record_hash: str, cp: Checkpoint) -> str | None:
    """Why `proof` does not show that the record with `record_hash` is in `cp`'s signed span, or
    None when it does. The span's size and the record's index are taken from the signed
    checkpoint, never from the proof alone."""
    if not is_v2(cp):
        return f"the checkpoint at record {cp.seq} is version 1 and signs no Merkle root"
    first = cp.first or 0
    if not first <= proof.seq <= cp.seq:
        return f"the checkpoint at record {cp.seq} spans records {first}..{cp.seq}, not record {proof.seq}"
    if proof.size != cp.seq - first + 1 or proof.index != proof.seq - first:
        return (
            f"the proof places it at leaf {proof.index} of {proof.size}, but in the signed span "
            f"{first}..{cp.seq} it is leaf {proof.seq - first} of {cp.seq - first + 1}"
        )
    try:
        path = [bytes.fromhex(p) for p in proof.path]
        leaf = leaf_hash(proof.seq, record_hash)
    except (ValueError, TypeError):
        return "the proof or the record hash is not hex"
    if any(len(p) != HASH_SIZE for p in path) or not verify_inclusion(
        leaf, proof.index, proof.size, path, bytes.fromhex(cp.root or "")
    ):
        return f"its inclusion path does not lead to the signed root of the checkpoint at record {cp.seq}"
    return None


class Prover:
    """Makes the inclusion proofs of chosen records while all records stream past in order.

    Each chosen record is proven against the first v2 checkpoint (lowest seq) whose span holds
    it; a record no v2 span holds gets no proof. Every span collects its leaves from its first
    record on (a proof needs all of them); `feed` returns the proofs of the spans it closes, and
    a span closed with no chosen record is dropped unhashed."""

    def __init__(self, checkpoints: Sequence[Checkpoint]) -> None:
        self._by_end = sorted((cp for cp in checkpoints if is_v2(cp)), key=lambda c: (c.seq, c.key_id))
        self._ends = [cp.seq for cp in self._by_end]
        self._by_first = sorted(self._by_end, key=lambda c: (c.first or 0, c.seq, c.key_id))
        self._next = 0
        # Open spans: (checkpoint, leaves so far, chosen (seq, index) pairs), by checkpoint.
        self._open: list[tuple[Checkpoint, list[bytes], list[tuple[int, int]]]] = []

    def covering(self, seq: int) -> Checkpoint | None:
        """The first v2 checkpoint whose span holds `seq`."""
        at = bisect.bisect_left(self._ends, seq)
        for cp in self._by_end[at:]:
            if (cp.first or 0) <= seq:
                return cp
        return None

    def feed(self, seq: int, digest: str, chosen: bool) -> list[InclusionProof]:
        starting = self._by_first
        while self._next < len(starting) and (starting[self._next].first or 0) <= seq:
            cp = starting[self._next]
            if cp.seq >= seq:  # else its span ended before the first record read (a gap)
                self._open.append((cp, [], []))
            self._next += 1
        if not self._open:
            return []
        owner = self.covering(seq) if chosen else None
        leaf = leaf_hash(seq, digest)
        proofs: list[InclusionProof] = []
        still = []
        for span in self._open:
            cp, leaves, wanted = span
            leaves.append(leaf)
            if owner is cp:
                wanted.append((seq, len(leaves) - 1))
            if seq < cp.seq:
                still.append(span)
            elif wanted:
                proofs.extend(_proofs(cp, leaves, wanted))
        self._open = still
        return proofs


def _proofs(cp: Checkpoint, leaves: list[bytes], wanted: list[tuple[int, int]]) -> Iterator[InclusionProof]:
    tree = Tree(leaves)
    for seq, index in wanted:
        path = tuple(p.hex() for p in tree.path(index))
        yield InclusionProof(seq=seq, checkpoint_seq=cp.seq, size=tree.size, index=index, path=path)
