"""Build the audit record of one exchange (egress.core.audit_record: the type, its keys and its
canonical bytes).

Invariant: the record holds kinds, rule ids, counts, hashes and sizes, never a value from the
request body, a header value, or a credential. It is canonical JSON (sorted keys) so its hash is
reproducible by anyone holding the record.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import orjson

from egress.core.audit_record import (
    EGRESS_OUTCOME,
    EGRESS_RECORD_VERSION,
    EGRESS_TYPE,
    RECORD_VERSION,
    ApprovalRef,
    AuditRecord,
    Decision,
    Findings,
    Latency,
    Masked,
    Usage,
)
from egress.core.errors import ErrorCode
from egress.core.exchange import Exchange, Outcome
from egress.core.records import AuditEntry

__all__ = ["EGRESS_OUTCOME", "EGRESS_RECORD_VERSION", "RECORD_VERSION", "AuditDraft", "build_egress", "build_entry"]


@dataclass(slots=True)
class AuditDraft:
    """A record built on the request path, finished on the audit writer thread: the digest of
    the body sent upstream is computed there (hashlib releases the GIL), then the canonical JSON.
    Not frozen (its __init__ is on the request path); nothing changes it once built.

    A plain dict record is accepted as is (tests and benchmarks write partial records)."""

    record: AuditRecord | dict[str, Any]
    upstream_body: bytes | None
    # The upstream's answer as recorded (record_payload obligation): its digest is computed there too.
    received: list[bytes] | None = None


def finalize(item: AuditEntry | AuditDraft) -> AuditEntry:
    if isinstance(item, AuditEntry):
        return item
    body_sha256 = hashlib.sha256(item.upstream_body).hexdigest() if item.upstream_body is not None else None
    response_sha256 = None
    if item.received is not None:
        digest = hashlib.sha256()
        for chunk in item.received:
            digest.update(chunk)
        response_sha256 = digest.hexdigest()
    if isinstance(item.record, AuditRecord):
        r = item.record
        if r.request_id is None or r.ts is None or r.outcome is None:
            raise ValueError("an audit record is built with its request_id, ts and outcome")
        return AuditEntry(
            request_id=r.request_id,
            ts=r.ts,
            user=r.user,
            team=r.team,
            api=r.api,
            endpoint=r.endpoint,
            jurisdiction=r.jurisdiction,
            outcome=r.outcome,
            status=r.status,
            canonical=r.canonical(body_sha256, response_sha256),
        )
    record = item.record
    if body_sha256 is not None:
        record["upstream_body_sha256"] = body_sha256
    if response_sha256 is not None:
        record["response_sha256"] = response_sha256
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
    """A request's own record: who, what, where it went, the decision, the findings and what was
    masked (kinds, rule ids, counts and keyed hashes, never a value or a placeholder). StrEnum
    members stand for their values (orjson writes the value; `.value` costs a descriptor call)."""
    principal = x.principal
    client = x.client
    total_ns = (x.finished_ns or x.started_ns) - x.started_ns
    record = AuditRecord(
        v=RECORD_VERSION,
        request_id=x.request_id,
        ts=x.started_at,
        user=principal.user if principal else None,
        team=principal.team if principal else None,
        key_id=principal.key_id if principal else None,
        auth=principal.method if principal else None,
        client=client.name if client else None,
        credential_plan=x.credential.plan if x.credential is not None else None,
        user_agent=client.user_agent if client else None,
        session_id=client.session_id if client else None,
        api=x.api,
        method=x.method,
        path=x.path,
        model=x.parsed.model if x.parsed else None,
        stream=x.parsed.stream if x.parsed else None,
        endpoint=x.endpoint_name,
        translated_from=x.translated_from,
        upstream_model=x.upstream_model,
        jurisdiction=x.endpoint_jurisdiction,
        region=x.endpoint_region,
        upstream_attempts=x.upstream_attempts,
        upstream_status=x.upstream_status,
        status=x.status,
        outcome=x.outcome or Outcome.FAILED,
        error_code=x.error.code if x.error else None,
        error_stage=x.error.stage if x.error else None,
        # Which rate limit or budget refused it (egress/limits): absent otherwise.
        limit=x.error.details.get("limit") if x.error is not None and x.error.code is ErrorCode.RATE_LIMITED else None,
        # Only for requests the policy held for an approver.
        approval=ApprovalRef.of(x.approval) if x.approval is not None else None,
        bytes_in=len(x.body),
        bytes_out=x.bytes_out,
        # The payloads were recorded (sealed, kept for the retention period): `egress audit replay`.
        recorded=x.capture is not None,
        usage=Usage.of(x.usage),
        latency_ms=Latency.of(total_ns, x.upstream_ns),
        findings=Findings.of(x.findings),
        decision=Decision.of(x.decision, x.candidates) if x.decision else None,
        masked=Masked.of(x.masked),
    )
    # The digests are filled in on the writer thread (finalize), off the request path.
    return AuditDraft(
        record, x.upstream_body if x.upstream_attempts else None, x.capture.chunks if x.capture is not None else None
    )


def build_egress(x: Exchange, body: bytes) -> AuditDraft:
    """The write-ahead record of one attempt: who, the decision, the endpoint and jurisdiction it
    is about to go to, the digest of exactly `body` (filled in on the writer thread). Committed
    before the attempt sends its first byte; the outcome record follows (same request_id)."""
    principal = x.principal
    record = AuditRecord(
        v=EGRESS_RECORD_VERSION,
        type=EGRESS_TYPE,
        request_id=x.request_id,
        ts=x.started_at,
        user=principal.user if principal else None,
        team=principal.team if principal else None,
        key_id=principal.key_id if principal else None,
        auth=principal.method if principal else None,
        client=x.client.name if x.client else None,
        api=x.api,
        path=x.path,
        model=x.parsed.model if x.parsed else None,
        endpoint=x.endpoint_name,
        translated_from=x.translated_from,
        upstream_model=x.upstream_model,
        jurisdiction=x.endpoint_jurisdiction,
        region=x.endpoint_region,
        attempt=x.upstream_attempts + 1,
        status=None,
        outcome=EGRESS_OUTCOME,
        bytes_upstream=len(body),
        decision=Decision.brief(x.decision) if x.decision else None,
    )
    return AuditDraft(record, body)
