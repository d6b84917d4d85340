"""What every sink carries per record: the chain's own fields, as the store holds them.

A delivered record is `{"hash", "prev_hash", "record", "seq"}` with `record` the canonical bytes
written verbatim (the line format of an audit export, egress/audit/export.py), so the SIEM copy
can be checked against signed checkpoints with the audit's own verifier (egress/siem/copy.py).

Invariant: nothing is added to or taken from the record: the audit record already holds no
protected value, and a record changed on the way would no longer verify."""

from __future__ import annotations

import datetime

from egress.core.records import StoredAudit


def chain_document(stored: StoredAudit) -> bytes:
    """The record with its place in the chain, as one JSON object (sorted keys)."""
    return b'{"hash":"%s","prev_hash":"%s","record":%s,"seq":%d}' % (
        stored.hash.encode("ascii"),
        stored.prev_hash.encode("ascii"),
        stored.entry.canonical,
        stored.seq,
    )


def rfc3339(ts: float) -> str:
    """UTC with microseconds, e.g. 2026-12-07T11:12:13.123456Z."""
    return datetime.datetime.fromtimestamp(ts, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
