"""Audit exports an auditor can check without the gateway (JSONL), and their offline verifier.

An export (format `egress.audit.export.v2`) is JSON lines:
- one header `{"export": {"format", "complete", "filters", "created"}}`;
- one line per record `{"hash", "prev_hash", "record", "seq"}`, in sequence order, with the
  record's canonical bytes written verbatim;
- in a filtered export, one line per exported record that a v2 checkpoint covers,
  `{"proof": {"seq", "checkpoint_seq", "size", "index", "path"}}`: record `seq` is leaf `index`
  of the `size` records of the span of the checkpoint at `checkpoint_seq`, and `path` lists the
  sibling hashes (hex) from its leaf up to the span's Merkle root (`egress.audit.merkle`). A
  proof line follows the record line, once the record that ends its span has streamed past;
- then one line per checkpoint `{"checkpoint": {...}}`, with `first` and `root` for v2 (null
  for v1): every checkpoint in a complete export; in a filtered one, those the proofs name and the
  v1 checkpoints from the first exported record to the first one covering the last.
Format v1 (no proof lines, checkpoints without `first`/`root`) is still read and verified as before.

What an export proves, checked with the gateway's public key only:
- complete (no filter): everything `egress audit verify` proves: the chain from the first record,
  each record's content, each v2 checkpoint's span root recomputed from the records, and, from the
  signed checkpoints, that no record up to the last checkpoint was edited, removed, inserted,
  reordered or cut off;
- filtered (`egress.audit.membership`): each record's hash matches its content and its stated
  predecessor hash, adjacent exported records link up, every checkpoint is signed by the key, and
  each record with a proof is a member of the signed log (its proof leads to the signed root of a
  checkpoint whose span holds it). Records exported after the last checkpoint have no proof yet:
  they are reported as not yet covered by a signed checkpoint (a warning; the gateway signs one at
  most `audit.checkpoint_interval_s` after a record, so export again later to prove them); records
  covered only by v1 checkpoints (signed before span roots existed) cannot be proven either. No
  filtered export proves that the filter selected every matching record: for that, verify a
  complete export or the database.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from egress.audit.membership import verify_filtered
from egress.audit.spans import InclusionProof, Prover, is_v2
from egress.audit.verify import AuditReport, verify_audit
from egress.core.audit_record import parse_record
from egress.core.records import AuditEntry, Checkpoint, StoredAudit

EXPORT_FORMAT = "egress.audit.export.v2"
EXPORT_FORMAT_V1 = "egress.audit.export.v1"  # no inclusion proofs; still read


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
        record = parse_record(e.canonical)
        if self.approval is not None and (record.approval is None or record.approval.id != self.approval):
            return False
        if self.kind is not None and (record.findings is None or self.kind not in record.findings.kinds):
            return False
        return self.decision is None or (record.decision is not None and record.decision.action == self.decision)


def export_jsonl(
    records: Iterable[StoredAudit], checkpoints: Sequence[Checkpoint], selector: ExportFilter, created: float
) -> Iterator[bytes]:
    """The export's lines (each ending in a newline), records streamed in sequence order. Every
    record of the chain is read (a proof needs the leaves of its whole span); a filtered export
    holds the matching ones and their proofs."""
    filters = {k: v for k, v in asdict(selector).items() if v is not None}
    complete = selector.empty
    header = {"format": EXPORT_FORMAT, "complete": complete, "filters": filters, "created": created}
    yield orjson.dumps({"export": header}, option=orjson.OPT_SORT_KEYS) + b"\n"
    prover = None if complete else Prover(checkpoints)
    named: set[int] = set()
    first = last = 0
    for stored in records:
        chosen = selector.matches(stored)
        if chosen:
            first = first or stored.seq
            last = stored.seq
            yield (
                b'{"hash":"%s","prev_hash":"%s","record":%s,"seq":%d}\n'
                % (stored.hash.encode(), stored.prev_hash.encode(), stored.entry.canonical, stored.seq)
            )
        if prover is not None:
            for proof in prover.feed(stored.seq, stored.hash, chosen):
                named.add(proof.checkpoint_seq)
                yield orjson.dumps({"proof": proof.as_json()}) + b"\n"
    for cp in _needed(checkpoints, first, last, complete, named):
        yield orjson.dumps({"checkpoint": asdict(cp)}, option=orjson.OPT_SORT_KEYS) + b"\n"


def _needed(
    checkpoints: Sequence[Checkpoint], first: int, last: int, complete: bool, named: set[int]
) -> list[Checkpoint]:
    """All checkpoints for a complete export. Else the v2 checkpoints a proof names, and the v1
    ones from the first exported record up to the first one that covers the last exported record."""
    ordered = sorted(checkpoints, key=lambda c: (c.seq, c.key_id))
    if complete:
        return ordered
    if not first:
        return []
    covering = next((c.seq for c in ordered if c.seq >= last and not is_v2(c)), None)
    return [
        c
        for c in ordered
        if (c.seq in named and is_v2(c))
        or (not is_v2(c) and c.seq >= first and (covering is None or c.seq <= covering))
    ]


# --- reading and verifying an export ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Export:
    complete: bool
    filters: dict[str, Any]
    records: list[StoredAudit]
    checkpoints: list[Checkpoint]
    proofs: list[InclusionProof] = field(default_factory=list)
    format: str = EXPORT_FORMAT


def read_export(lines: Iterable[bytes]) -> Export:
    header: dict[str, Any] | None = None
    records: list[StoredAudit] = []
    checkpoints: list[Checkpoint] = []
    proofs: list[InclusionProof] = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            doc = orjson.loads(line)
            if header is None:
                header = doc["export"]
                if header["format"] not in (EXPORT_FORMAT, EXPORT_FORMAT_V1):
                    raise ExportError(f"line {number}: unknown export format {header['format']!r}")
            elif "checkpoint" in doc:
                checkpoints.append(Checkpoint(**doc["checkpoint"]))
            elif "proof" in doc and header["format"] != EXPORT_FORMAT_V1:
                proofs.append(_proof(doc["proof"]))
            else:
                records.append(_stored(doc))
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, ExportError):
                raise
            raise ExportError(f"line {number}: not an egress audit export line ({type(exc).__name__}: {exc})") from None
    if header is None:
        raise ExportError("the file is empty")
    complete, filters = bool(header["complete"]), dict(header.get("filters") or {})
    return Export(complete, filters, records, checkpoints, proofs, str(header["format"]))


def _proof(doc: dict[str, Any]) -> InclusionProof:
    numbers = [doc[k] for k in ("seq", "checkpoint_seq", "size", "index")]
    path = doc["path"]
    if any(type(n) is not int for n in numbers):
        raise TypeError("a proof's seq, checkpoint_seq, size and index are integers")
    if not isinstance(path, list) or any(not isinstance(p, str) for p in path):
        raise TypeError("a proof's path is a list of hex strings")
    seq, checkpoint_seq, size, index = numbers
    return InclusionProof(seq=seq, checkpoint_seq=checkpoint_seq, size=size, index=index, path=tuple(path))


def _stored(doc: dict[str, Any]) -> StoredAudit:
    """A record line as the store would return it; its canonical bytes re-made from the JSON
    (canonical JSON is its own normal form, so any edit changes them)."""
    # The record as found, not a parsed view of it: verification checks these very bytes, and a
    # tampered record must reach the verifier (which names it) rather than fail to parse here.
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
    """A complete export: as the database. A filtered one: what it can prove (module docstring);
    a v1 filtered export carries no proofs, so its membership is not reported."""
    if export.complete:
        return verify_audit(export.records, export.checkpoints, public, check_columns=False)
    proofs = None if export.format == EXPORT_FORMAT_V1 else export.proofs
    return verify_filtered(export.records, export.checkpoints, proofs, public)
