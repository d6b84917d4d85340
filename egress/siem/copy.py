"""Check a SIEM's copy of the audit against the gateway's signed checkpoints, without trusting
the gateway or the SIEM.

Each sink carries, per record, its sequence number, hash, previous hash and the canonical record
verbatim (egress/siem/document.py and the sink modules). Collected from the SIEM, these are what
an audit export holds, so the copy is verified by the audit's own verifier
(egress.audit.verify.verify_audit): the chain from the first record, each record's content, and
every signed checkpoint (signature with the public key, the hash at its sequence number, its
span root, no truncation). Duplicates are expected (delivery is at least once): identical ones
are dropped; two different records at one sequence number are a break."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from egress.audit.chain import Break, VerifyReport
from egress.audit.verify import AuditReport, verify_audit
from egress.core.records import GENESIS_HASH, AuditEntry, Checkpoint, StoredAudit
from egress.siem.otlp import ATTR_HASH, ATTR_PREV, ATTR_SEQ


@dataclass(frozen=True, slots=True)
class DeliveredRecord:
    seq: int
    hash: str
    prev_hash: str
    canonical: bytes  # the record as the chain holds it


def from_document(doc: dict[str, object]) -> DeliveredRecord:
    """From the HTTP sinks' document (an HEC event's `event`, an Elastic document): the record
    object is re-serialised canonically (sorted keys, orjson), as an audit export is read."""
    record = doc["record"]
    seq = doc["seq"]
    if not isinstance(seq, int):
        raise ValueError("seq is not an integer")
    return DeliveredRecord(
        seq, str(doc["hash"]), str(doc["prev_hash"]), orjson.dumps(record, option=orjson.OPT_SORT_KEYS)
    )


def read_copy(lines: Iterable[bytes]) -> list[DeliveredRecord]:
    """A SIEM copy as JSON lines: each line a chain document (an Elastic document: its
    `@timestamp` is ignored) or a whole HEC event (its `event` is the document)."""
    out = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            doc = orjson.loads(line)
            if isinstance(doc, dict) and isinstance(doc.get("event"), dict):
                doc = doc["event"]
            out.append(from_document(doc))
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"line {number}: not a delivered audit record ({type(exc).__name__}: {exc})") from None
    return out


def from_syslog(message: bytes) -> DeliveredRecord:
    """From one RFC 5424 message as the syslog sink writes it (without its octet-count frame)."""
    marker = message.index(b"[egress@32473 ")
    end = message.index(b"]", marker)
    params = dict(part.split(b"=", 1) for part in message[marker + len(b"[egress@32473 ") : end].split(b" ") if part)
    body = message[end + 1 :].lstrip(b" ")
    body = body.removeprefix(b"\xef\xbb\xbf")
    return DeliveredRecord(
        int(params[b"seq"].strip(b'"')),
        params[b"hash"].strip(b'"').decode("ascii"),
        params[b"prev"].strip(b'"').decode("ascii"),
        body,
    )


def from_otlp(body: str, attributes: dict[str, object]) -> DeliveredRecord:
    """From one OTLP LogRecord's string body and its attributes."""
    seq = attributes[ATTR_SEQ]
    if not isinstance(seq, int):
        raise ValueError("egress.audit.seq is not an integer")
    return DeliveredRecord(seq, str(attributes[ATTR_HASH]), str(attributes[ATTR_PREV]), body.encode("utf-8"))


def _stored(d: DeliveredRecord) -> StoredAudit:
    # Only the canonical bytes are checked (check_columns=False): the entry's columns are unused.
    entry = AuditEntry("", 0.0, None, None, None, None, None, "", None, d.canonical)
    return StoredAudit(seq=d.seq, entry=entry, prev_hash=d.prev_hash, hash=d.hash)


def verify_copy(
    delivered: Iterable[DeliveredRecord],
    checkpoints: Sequence[Checkpoint],
    public: Ed25519PublicKey,
    through: int | None = None,
) -> AuditReport:
    """The copy, duplicates removed and in sequence order, verified as a complete export.

    `through`: only the checkpoints at or before this record count (a copy still being delivered
    ends before the newest checkpoint; checked against all of them it is reported truncated)."""
    if through is not None:
        checkpoints = [cp for cp in checkpoints if cp.seq <= through]
    by_seq: dict[int, DeliveredRecord] = {}
    for d in delivered:
        seen = by_seq.setdefault(d.seq, d)
        if seen != d:
            reason = f"the copy holds two different records at sequence number {d.seq}"
            chain = VerifyReport(0, d.seq, GENESIS_HASH, Break(d.seq, None, reason))
            return AuditReport(chain, 0, None, 0)
    ordered = [_stored(by_seq[s]) for s in sorted(by_seq)]
    return verify_audit(ordered, checkpoints, public, check_columns=False)
