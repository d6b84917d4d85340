"""The audit hash chain: each record's hash covers its own canonical bytes and the previous hash,
so any edit, deletion, insertion or reordering of stored records breaks verification at the
first record affected."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

import orjson

from egress.core.records import StoredAudit

GENESIS_HASH = "0" * 64


def link(prev_hash: str, canonical: bytes) -> str:
    h = hashlib.sha256(prev_hash.encode("ascii"))
    h.update(b"\n")
    h.update(canonical)
    return h.hexdigest()


@dataclass(frozen=True, slots=True)
class Break:
    seq: int
    request_id: str | None
    reason: str


@dataclass(frozen=True, slots=True)
class VerifyReport:
    checked: int
    last_seq: int
    last_hash: str
    first_break: Break | None

    @property
    def ok(self) -> bool:
        return self.first_break is None


# Column copies that must agree with the hashed record (so a search cannot be misled).
_COLUMNS = ("request_id", "user", "team", "api", "endpoint", "jurisdiction", "outcome", "status")


def _column_mismatch(stored: StoredAudit) -> str | None:
    try:
        record = orjson.loads(stored.entry.canonical)
    except orjson.JSONDecodeError:
        return "record is not valid JSON"
    entry = stored.entry
    for column in _COLUMNS:
        if record.get(column) != getattr(entry, column):
            return f"column {column!r} disagrees with the hashed record"
    if record.get("ts") != entry.ts:
        return "column 'ts' disagrees with the hashed record"
    return None


def verify(records: Iterable[StoredAudit]) -> VerifyReport:
    """Recompute the chain from the genesis and report the first record that does not fit."""
    expected_seq = 1
    prev = GENESIS_HASH
    checked = 0
    for stored in records:
        rid = stored.entry.request_id
        if stored.seq != expected_seq:
            reason = (
                f"records {expected_seq}..{stored.seq - 1} are missing (deleted)"
                if stored.seq > expected_seq
                else f"sequence number {stored.seq} is out of order (expected {expected_seq})"
            )
            return VerifyReport(checked, stored.seq, prev, Break(stored.seq, rid, reason))
        if stored.prev_hash != prev:
            return VerifyReport(
                checked,
                stored.seq,
                prev,
                Break(
                    stored.seq,
                    rid,
                    "previous-hash link does not match the preceding record "
                    "(a record was inserted, removed or reordered)",
                ),
            )
        if link(prev, stored.entry.canonical) != stored.hash:
            return VerifyReport(checked, stored.seq, prev, Break(stored.seq, rid, "record content was altered"))
        mismatch = _column_mismatch(stored)
        if mismatch:
            return VerifyReport(checked, stored.seq, prev, Break(stored.seq, rid, mismatch))
        prev = stored.hash
        expected_seq += 1
        checked += 1
    return VerifyReport(checked, expected_seq - 1, prev, None)
