"""The audit hash chain: each record's hash covers its own canonical bytes and the previous hash,
so any edit, deletion, insertion or reordering of stored records breaks verification at the
first record affected."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

import orjson

from egress.core.records import GENESIS_HASH, AuditEntry, StoredAudit


def link(prev_hash: str, canonical: bytes) -> str:
    # One hashlib call over prev_hash ‖ "\n" ‖ canonical (the copy costs less than two updates).
    return hashlib.sha256(b"%s\n%s" % (prev_hash.encode("ascii"), canonical)).hexdigest()


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
    # One tuple comparison per record (the common case); name the column only on a mismatch.
    if _column_values(record) == _entry_values(entry):
        return None
    for column in (*_COLUMNS, "ts"):
        if record.get(column) != getattr(entry, column):
            return f"column {column!r} disagrees with the hashed record"
    return None


def _column_values(record: dict[str, object]) -> tuple[object, ...]:
    get = record.get
    return (
        get("request_id"),
        get("user"),
        get("team"),
        get("api"),
        get("endpoint"),
        get("jurisdiction"),
        get("outcome"),
        get("status"),
        get("ts"),
    )


def _entry_values(e: AuditEntry) -> tuple[object, ...]:
    return (e.request_id, e.user, e.team, e.api, e.endpoint, e.jurisdiction, e.outcome, e.status, e.ts)


def verify(records: Iterable[StoredAudit], check_columns: bool = True) -> VerifyReport:
    """Recompute the chain from the genesis and report the first record that does not fit.

    `check_columns` False skips the column copies (records read from an export have none)."""
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
        mismatch = _column_mismatch(stored) if check_columns else None
        if mismatch:
            return VerifyReport(checked, stored.seq, prev, Break(stored.seq, rid, mismatch))
        prev = stored.hash
        expected_seq += 1
        checked += 1
    return VerifyReport(checked, expected_seq - 1, prev, None)
