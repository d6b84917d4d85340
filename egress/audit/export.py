"""Audit exports an auditor can check without the gateway (JSONL), and their offline verifier.

An export is JSON lines: one header `{"export": {...}}` (format, whether it is complete, the
filters), then one line per record `{"hash", "prev_hash", "record", "seq"}` with the record's
canonical bytes written verbatim, then one line per checkpoint `{"checkpoint": {...}}`.

What an export proves, checked with the gateway's public key only:
- complete (no filter): everything `egress audit verify` proves: the chain from the first record,
  each record's content, and, from the signed checkpoints, that no record up to the last
  checkpoint was edited, removed, inserted, reordered or cut off;
- filtered: each record's hash matches its content and its stated predecessor hash, adjacent
  exported records link up, every checkpoint is signed by the key, and a record whose sequence
  number a checkpoint names has the signed hash. It does not prove that the other records belong
  to the signed chain (their predecessors are not in the export), nor that the filter selected
  every matching record: for that, verify a complete export or the database.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from egress.audit.chain import GENESIS_HASH, Break, VerifyReport, link
from egress.audit.verify import AuditReport, signature_break, verify_audit
from egress.core.records import AuditEntry, Checkpoint, StoredAudit

EXPORT_FORMAT = "egress.audit.export.v1"


class ExportError(ValueError):
    """The file is not an egress audit export (a line number and what is wrong)."""


@dataclass(frozen=True, slots=True)
class ExportFilter:
    """Which records to export; None matches anything. Times are Unix seconds, `until` exclusive."""

    since: float | None = None
    until: float | None = None
    user: str | None = None
    team: str | None = None
    endpoint: str | None = None
    jurisdiction: str | None = None
    kind: str | None = None  # a finding kind present in the request
    decision: str | None = None  # the policy decision's action
    approval: str | None = None  # an approval id: the held request's record and every step of it

    @property
    def empty(self) -> bool:
        return all(v is None for v in asdict(self).values())

    def matches(self, stored: StoredAudit) -> bool:
        e = stored.entry
        # Columns first (verification checks they agree with the hashed record); parse only if needed.
        if (self.since is not None and e.ts < self.since) or (self.until is not None and e.ts >= self.until):
            return False
        for want, have in (
            (self.user, e.user),
            (self.team, e.team),
            (self.endpoint, e.endpoint),
            (self.jurisdiction, e.jurisdiction),
        ):
            if want is not None and want != have:
                return False
        if self.kind is None and self.decision is None and self.approval is None:
            return True
        record = orjson.loads(e.canonical)
        if self.approval is not None and (record.get("approval") or {}).get("id") != self.approval:
            return False
        if self.kind is not None and self.kind not in ((record.get("findings") or {}).get("kinds") or {}):
            return False
        return self.decision is None or (record.get("decision") or {}).get("action") == self.decision


def export_jsonl(
    records: Iterable[StoredAudit], checkpoints: Sequence[Checkpoint], selector: ExportFilter, created: float
) -> Iterator[bytes]:
    """The export's lines (each ending in a newline), records streamed in sequence order."""
    filters = {k: v for k, v in asdict(selector).items() if v is not None}
    header = {"format": EXPORT_FORMAT, "complete": selector.empty, "filters": filters, "created": created}
    yield orjson.dumps({"export": header}, option=orjson.OPT_SORT_KEYS) + b"\n"
    first = last = 0
    for stored in records:
        if not selector.matches(stored):
            continue
        first = first or stored.seq
        last = stored.seq
        yield (
            b'{"hash":"%s","prev_hash":"%s","record":%s,"seq":%d}\n'
            % (stored.hash.encode(), stored.prev_hash.encode(), stored.entry.canonical, stored.seq)
        )
    for cp in _needed(checkpoints, first, last, selector.empty):
        yield orjson.dumps({"checkpoint": asdict(cp)}, option=orjson.OPT_SORT_KEYS) + b"\n"


def _needed(checkpoints: Sequence[Checkpoint], first: int, last: int, complete: bool) -> list[Checkpoint]:
    """All checkpoints for a complete export; else those from the first exported record up to
    the first one that covers the last exported record."""
    ordered = sorted(checkpoints, key=lambda c: (c.seq, c.key_id))
    if complete:
        return ordered
    if not first:
        return []
    covering = next((c.seq for c in ordered if c.seq >= last), None)
    return [c for c in ordered if c.seq >= first and (covering is None or c.seq <= covering)]


# --- reading and verifying an export ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Export:
    complete: bool
    filters: dict[str, Any]
    records: list[StoredAudit]
    checkpoints: list[Checkpoint]


def read_export(lines: Iterable[bytes]) -> Export:
    header: dict[str, Any] | None = None
    records: list[StoredAudit] = []
    checkpoints: list[Checkpoint] = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            doc = orjson.loads(line)
            if header is None:
                header = doc["export"]
                if header["format"] != EXPORT_FORMAT:
                    raise ExportError(f"line {number}: unknown export format {header['format']!r}")
            elif "checkpoint" in doc:
                checkpoints.append(Checkpoint(**doc["checkpoint"]))
            else:
                records.append(_stored(doc))
        except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
            raise ExportError(f"line {number}: not an egress audit export line ({type(exc).__name__}: {exc})") from None
    if header is None:
        raise ExportError("the file is empty")
    return Export(bool(header["complete"]), dict(header.get("filters") or {}), records, checkpoints)


def _stored(doc: dict[str, Any]) -> StoredAudit:
    """A record line as the store would return it; its canonical bytes re-made from the JSON
    (canonical JSON is its own normal form, so any edit changes them)."""
    record = doc["record"]
    canonical = orjson.dumps(record, option=orjson.OPT_SORT_KEYS)
    entry = AuditEntry(
        request_id=record.get("request_id"),
        ts=record.get("ts"),
        user=record.get("user"),
        team=record.get("team"),
        api=record.get("api"),
        endpoint=record.get("endpoint"),
        jurisdiction=record.get("jurisdiction"),
        outcome=record.get("outcome"),
        status=record.get("status"),
        canonical=canonical,
    )
    return StoredAudit(seq=int(doc["seq"]), entry=entry, prev_hash=str(doc["prev_hash"]), hash=str(doc["hash"]))


def verify_export(export: Export, public: Ed25519PublicKey) -> AuditReport:
    """A complete export: as the database. A filtered one: what it can prove (module docstring)."""
    if export.complete:
        return verify_audit(export.records, export.checkpoints, public, check_columns=False)
    return _verify_filtered(export, public)


def _verify_filtered(export: Export, public: Ed25519PublicKey) -> AuditReport:
    hashes: dict[int, str] = {}
    previous: StoredAudit | None = None
    for stored in export.records:
        brk = _record_break(stored, previous)
        if brk is not None:
            return AuditReport(VerifyReport(len(hashes), stored.seq, stored.prev_hash, brk), 0, None, 0)
        hashes[stored.seq] = stored.hash
        previous = stored
    last = export.records[-1] if export.records else None
    chain = VerifyReport(len(hashes), last.seq if last else 0, last.hash if last else GENESIS_HASH, None)
    verified = covered = 0
    for cp in sorted(export.checkpoints, key=lambda c: (c.seq, c.key_id)):
        brk = signature_break(cp, public)
        if brk is None and cp.seq in hashes and hashes[cp.seq] != cp.hash:
            brk = Break(
                cp.seq, None, f"checkpoint at record {cp.seq}: the exported record does not have the signed hash"
            )
        if brk is not None:
            return AuditReport(chain, verified, brk, covered)
        verified += 1
        covered = max(covered, cp.seq)
    return AuditReport(chain, verified, None, covered)


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
