"""Evidence anchors: the signed checkpoints that cover a period's records. A checkpoint at
record `seq` signs the chain head there, so it vouches for every record up to it; the anchors of
a period are the checkpoints from its first record up to the first one at or after its last."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from egress.core.records import Checkpoint


@dataclass(frozen=True, slots=True)
class Anchor:
    seq: int
    hash: str
    signature: str
    key_id: str
    ts: float
    first: int | None
    root: str | None

    @classmethod
    def of(cls, cp: Checkpoint) -> Anchor:
        return cls(cp.seq, cp.hash, cp.signature, cp.key_id, cp.ts, cp.first, cp.root)


def anchors(checkpoints: Sequence[Checkpoint], first_seq: int, last_seq: int) -> tuple[Anchor, ...]:
    if not first_seq:
        return ()
    out = []
    for cp in sorted(checkpoints, key=lambda c: (c.seq, c.key_id)):
        if cp.seq < first_seq:
            continue
        out.append(Anchor.of(cp))
        if cp.seq >= last_seq:
            break
    return tuple(out)


def covered(found: Sequence[Anchor], last_seq: int) -> bool:
    """A signed checkpoint vouches for the period's last record."""
    return any(a.seq >= last_seq for a in found)
