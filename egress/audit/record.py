"""Build the audit record of one exchange.

Invariant: the record holds kinds, rule ids, counts, hashes and sizes, never a value from the
request body, a header value, or a credential. It is canonical JSON (sorted keys) so its hash is
reproducible by anyone holding the record.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass
from typing import Any

import orjson

from egress.core.exchange import Exchange, Outcome
from egress.core.records import AuditEntry

# 2: decision obligations, candidates, shadow; translated_from.
# 3: recorded, response_sha256 (session recording: the chain holds the recorded payloads' digests).
#    approval (just-in-time approvals; approval steps are records of type "approval").
# Older records keep their version and still verify: the chain hashes each record's stored bytes.
RECORD_VERSION = 3
# Write-ahead egress records ("type": "egress", outcome column "egress"): written and committed
# before the first byte of an attempt goes upstream; the request's own record (its outcome)
# follows with the same request_id.
EGRESS_RECORD_VERSION = 4
# The outcome column of a write-ahead egress record (approval steps use "approval_…").
EGRESS_OUTCOME = "egress"


def _ms(ns: int) -> float:
    return round(ns / 1e6, 3)


@dataclass(frozen=True, slots=True)
class AuditDraft:
    """A record built on the request path, finished on the audit writer thread: the digest of
    the body sent upstream is computed there (hashlib releases the GIL), then the canonical JSON."""

    record: dict[str, Any]
    upstream_body: bytes | None
    # The upstream's answer as recorded (record_payload obligation): its digest is computed there too.
    received: list[bytes] | None = None


def finalize(item: AuditEntry | AuditDraft) -> AuditEntry:
    if isinstance(item, AuditEntry):
        return item
    record = item.record
    if item.upstream_body is not None:
        record["upstream_body_sha256"] = hashlib.sha256(item.upstream_body).hexdigest()
    if item.received is not None:
        digest = hashlib.sha256()
        for chunk in item.received:
            digest.update(chunk)
        record["response_sha256"] = digest.hexdigest()
    return AuditEntry(
        request_id=record["request_id"],
        ts=record["ts"],
        user=record["user"],
        team=record["team"],
        api=record["api"],
        endpoint=record["endpoint"],
        jurisdiction=record["jurisdiction"],
        outcome=record["outcome"],
        status=record["status"],
        canonical=orjson.dumps(record, option=orjson.OPT_SORT_KEYS),
    )


def build_entry(x: Exchange) -> AuditDraft:
    principal = x.principal
    client = x.client
    decision = x.decision
    total_ns = (x.finished_ns or x.started_ns) - x.started_ns
    outcome = (x.outcome or Outcome.FAILED).value
    kinds = Counter(f.kind for f in x.findings) if x.findings else {}
    rules = Counter(f.rule_id for f in x.findings) if x.findings else {}
    record = {
        "v": RECORD_VERSION,
        "request_id": x.request_id,
        "ts": x.started_at,
        "user": principal.user if principal else None,
        "team": principal.team if principal else None,
        "key_id": principal.key_id if principal else None,
        "auth": principal.method if principal else None,
        "client": client.name if client else None,
        "user_agent": client.user_agent if client else None,
        "session_id": client.session_id if client else None,
        "api": x.api.value if x.api else None,
        "method": x.method,
        "path": x.path,
        "model": x.parsed.model if x.parsed else None,
        "stream": x.parsed.stream if x.parsed else None,
        "endpoint": x.endpoint_name,
        "translated_from": x.translated_from.value if x.translated_from else None,
        "jurisdiction": x.endpoint_jurisdiction,
        "region": x.endpoint_region,
        "upstream_attempts": x.upstream_attempts,
        "upstream_status": x.upstream_status,
        "status": x.status,
        "outcome": outcome,
        "error_code": x.error.code.value if x.error else None,
        "error_stage": x.error.stage if x.error else None,
        # Only for requests the policy held for an approver: the approval's id, final status, approver.
        "approval": (
            {"id": x.approval.approval_id, "status": x.approval.status, "approver": x.approval.approver}
            if x.approval is not None
            else None
        ),
        "bytes_in": len(x.body),
        "bytes_out": x.bytes_out,
        "upstream_body_sha256": None,
        # The payloads were recorded (sealed, kept for the retention period): `egress audit replay`.
        "recorded": x.capture is not None,
        "response_sha256": None,
        "usage": {
            "input_tokens": x.usage.input_tokens,
            "output_tokens": x.usage.output_tokens,
            "cache_read_tokens": x.usage.cache_read_tokens,
            "cache_write_tokens": x.usage.cache_write_tokens,
        },
        "latency_ms": {
            "total": _ms(total_ns),
            "upstream": _ms(x.upstream_ns),
            "gateway": _ms(max(total_ns - x.upstream_ns, 0)),
        },
        "findings": {"total": len(x.findings), "kinds": dict(kinds), "rules": dict(rules)},
        "decision": (
            {
                "id": decision.decision_id,
                "action": decision.action.value,
                "endpoints": list(decision.endpoints),
                "reasons": list(decision.reasons),
                "obligations": list(decision.obligations),
                "policy_revision": decision.policy_revision,
                "candidates": list(x.candidates),
                # Shadow mode: what the policy decided but was not enforced.
                "shadow": (
                    {
                        "action": decision.shadow_of.action.value,
                        "endpoints": list(decision.shadow_of.endpoints),
                        "mask": list(decision.shadow_of.mask_kinds),
                        "reasons": list(decision.shadow_of.reasons),
                        "policy_revision": decision.shadow_of.policy_revision,
                    }
                    if decision.shadow_of
                    else None
                ),
            }
            if decision
            else None
        ),
        # What was masked: kinds, rule ids, occurrence counts and keyed hashes of the values,
        # never a value or a placeholder.
        "masked": {
            "count": x.masked.masked_count if x.masked else 0,
            "values": [
                {"kind": v.kind, "rule": v.rule_id, "hash": v.value_hash, "occurrences": v.occurrences}
                for v in x.masked.values
            ]
            if x.masked
            else [],
            "rewritten": x.masked.rewritten if x.masked else False,
        },
    }
    # The body's digest is filled in on the writer thread (finalize), off the request path.
    return AuditDraft(
        record, x.upstream_body if x.upstream_attempts else None, x.capture.chunks if x.capture is not None else None
    )


def build_egress(x: Exchange, body: bytes) -> AuditDraft:
    """The write-ahead record of one attempt: who, the decision, the endpoint and jurisdiction it
    is about to go to, the digest of exactly `body` (filled in on the writer thread). Committed
    before the attempt sends its first byte; the outcome record follows (same request_id)."""
    principal = x.principal
    decision = x.decision
    record = {
        "v": EGRESS_RECORD_VERSION,
        "type": "egress",
        "request_id": x.request_id,
        "ts": x.started_at,
        "user": principal.user if principal else None,
        "team": principal.team if principal else None,
        "key_id": principal.key_id if principal else None,
        "auth": principal.method if principal else None,
        "client": x.client.name if x.client else None,
        "api": x.api.value if x.api else None,
        "path": x.path,
        "model": x.parsed.model if x.parsed else None,
        "endpoint": x.endpoint_name,
        "translated_from": x.translated_from.value if x.translated_from else None,
        "jurisdiction": x.endpoint_jurisdiction,
        "region": x.endpoint_region,
        "attempt": x.upstream_attempts + 1,
        "status": None,
        "outcome": EGRESS_OUTCOME,
        "upstream_body_sha256": None,
        "bytes_upstream": len(body),
        "decision": (
            {
                "id": decision.decision_id,
                "action": decision.action.value,
                "endpoints": list(decision.endpoints),
                "policy_revision": decision.policy_revision,
            }
            if decision
            else None
        ),
    }
    return AuditDraft(record, body)
