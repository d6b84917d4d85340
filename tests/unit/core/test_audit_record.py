"""The typed audit record writes exactly the bytes the dict builders wrote before it existed
(a frozen copy of them is kept below, for this comparison only), and reads stored records back."""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import fields
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from egress.audit.approval_steps import approval_step_entry
from egress.audit.export import read_export
from egress.audit.record import build_egress, build_entry, finalize
from egress.core import audit_record
from egress.core.approvals import Approval, ApprovalNote
from egress.core.audit_record import AuditRecordError, findings_of, parse_record
from egress.core.capture import Capture
from egress.core.errors import EgressError, ErrorCode
from egress.core.exchange import (
    Action,
    Api,
    ClientInfo,
    Decision,
    Exchange,
    Finding,
    MaskedRequest,
    MaskedValue,
    Outcome,
    ParsedRequest,
    Principal,
    Prompt,
    Usage,
)

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "audit_chain"


# --- the dict builders as they were (frozen copy; do not change) -----------------------------------


def _ms(ns: int) -> float:
    return round(ns / 1e6, 3)


def old_entry(x: Exchange) -> dict[str, Any]:
    principal = x.principal
    client = x.client
    decision = x.decision
    total_ns = (x.finished_ns or x.started_ns) - x.started_ns
    outcome = (x.outcome or Outcome.FAILED).value
    kinds = Counter(f.kind for f in x.findings) if x.findings else {}
    rules = Counter(f.rule_id for f in x.findings) if x.findings else {}
    return {
        "v": 3,
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
        "approval": (
            {"id": x.approval.approval_id, "status": x.approval.status, "approver": x.approval.approver}
            if x.approval is not None
            else None
        ),
        "bytes_in": len(x.body),
        "bytes_out": x.bytes_out,
        "upstream_body_sha256": (
            hashlib.sha256(x.upstream_body).hexdigest() if x.upstream_attempts and x.upstream_body is not None else None
        ),
        "recorded": x.capture is not None,
        "response_sha256": hashlib.sha256(b"".join(x.capture.chunks)).hexdigest() if x.capture is not None else None,
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


def old_egress(x: Exchange, body: bytes) -> dict[str, Any]:
    principal = x.principal
    decision = x.decision
    return {
        "v": 4,
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
        "outcome": "egress",
        "upstream_body_sha256": hashlib.sha256(body).hexdigest(),
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


def old_step(approval: Approval, step: str, actor: str | None, ts: float) -> dict[str, Any]:
    return {
        "v": 3,
        "type": "approval",
        "request_id": approval.request_id,
        "ts": ts,
        "user": approval.user,
        "team": approval.team,
        "api": approval.api,
        "model": approval.model,
        "endpoint": None,
        "jurisdiction": None,
        "outcome": f"approval_{step}",
        "status": None,
        "approval": {
            **approval.facts(),
            "id": approval.approval_id,
            "step": step,
            "status": approval.status,
            "actor": actor or "egress",
            "approver": approval.decided_by,
            "note": approval.note,
            "digest": approval.digest,
        },
    }


def canonical(record: dict[str, Any]) -> bytes:
    return orjson.dumps(record, option=orjson.OPT_SORT_KEYS)


# --- exchanges of every shape ------------------------------------------------------------------------

text = st.text(max_size=12)
maybe_text = st.none() | text
names = st.lists(text, max_size=3).map(tuple)
counts = st.integers(min_value=0, max_value=10**9)
maybe_count = st.none() | counts
times = st.floats(min_value=0, max_value=4e9, allow_nan=False)

principals = st.none() | st.builds(
    Principal,
    user=text,
    team=maybe_text,
    key_id=maybe_text,
    method=st.sampled_from(["gateway_key", "oidc", "anonymous"]),
)
clients = st.none() | st.builds(ClientInfo, name=text, user_agent=maybe_text, session_id=maybe_text)
parsed = st.none() | st.builds(
    ParsedRequest,
    api=st.sampled_from(Api),
    model=text,
    stream=st.booleans(),
    document=st.just({}),
    prompt=st.just(Prompt(())),
)
findings = st.lists(
    st.builds(
        Finding,
        kind=st.sampled_from(["secret", "pii", "sensitive_file", "internal"]),
        rule_id=st.sampled_from(["aws-access-key-id", "email", "private-key-pem", "x"]),
        segment=st.just(0),
        start=st.just(0),
        end=st.just(1),
        confidence=st.just(1.0),
    ),
    max_size=6,
).map(tuple)


def decisions(depth: int = 0) -> st.SearchStrategy[Decision | None]:
    shadow = st.none() if depth else decisions(1)
    return st.none() | st.builds(
        Decision,
        action=st.sampled_from(Action),
        endpoints=names,
        mask_kinds=names,
        reasons=names,
        decision_id=text,
        policy_revision=text,
        obligations=names,
        shadow_of=shadow,
    )


masked = st.none() | st.builds(
    MaskedRequest,
    body=st.just(b"{}"),
    placeholders=st.just({}),
    masked_count=counts,
    values=st.lists(
        st.builds(MaskedValue, kind=text, rule_id=text, value_hash=text, occurrences=counts), max_size=3
    ).map(tuple),
    rewritten=st.booleans(),
)


def capture_of(chunks: list[bytes] | None) -> Capture | None:
    if chunks is None:
        return None
    capture = Capture(1 << 20)
    for chunk in chunks:
        capture.add(chunk)
    return capture


@st.composite
def exchanges(draw: st.DrawFn) -> Exchange:
    started = draw(st.integers(min_value=0, max_value=10**15))
    x = Exchange(
        request_id=draw(text),
        method=draw(st.sampled_from(["POST", "GET"])),
        path=draw(text),
        query="",
        headers=[],
        api=draw(st.sampled_from(Api)),
        started_ns=started,
        started_at=draw(times),
    )
    x.body = draw(st.binary(max_size=20))
    x.principal = draw(principals)
    x.client = draw(clients)
    x.parsed = draw(parsed)
    x.findings = draw(findings)
    x.candidates = draw(names)
    x.decision = draw(decisions())
    x.masked = draw(masked)
    x.upstream_body = draw(st.none() | st.binary(max_size=20))
    x.capture = capture_of(draw(st.none() | st.lists(st.binary(max_size=8), max_size=3)))
    x.endpoint_name = draw(maybe_text)
    x.endpoint_jurisdiction = draw(maybe_text)
    x.endpoint_region = draw(maybe_text)
    x.translated_from = draw(st.none() | st.sampled_from(Api))
    x.upstream_attempts = draw(st.integers(min_value=0, max_value=3))
    x.upstream_status = draw(st.none() | st.integers(min_value=100, max_value=599))
    x.upstream_ns = draw(st.integers(min_value=0, max_value=10**12))
    x.status = draw(st.none() | st.integers(min_value=100, max_value=599))
    x.bytes_out = draw(counts)
    x.usage = Usage(draw(maybe_count), draw(maybe_count), draw(maybe_count), draw(maybe_count))
    x.outcome = draw(st.none() | st.sampled_from(Outcome))
    if draw(st.booleans()):
        x.error = EgressError(draw(st.sampled_from(ErrorCode)), "m", stage=draw(maybe_text))
    x.approval = draw(st.none() | st.builds(ApprovalNote, approval_id=text, status=text, approver=maybe_text))
    x.finished_ns = draw(st.none() | st.integers(min_value=started, max_value=started + 10**12))
    return x


@settings(max_examples=300, deadline=None)
@given(exchanges())
def test_a_request_record_is_byte_for_byte_the_old_dict(x):
    entry = finalize(build_entry(x))
    assert entry.canonical == canonical(old_entry(x))
    assert parse_record(entry.canonical).canonical() == entry.canonical


@settings(max_examples=200, deadline=None)
@given(exchanges(), st.binary(max_size=30))
def test_an_egress_record_is_byte_for_byte_the_old_dict(x, body):
    entry = finalize(build_egress(x, body))
    assert entry.canonical == canonical(old_egress(x, body))
    assert parse_record(entry.canonical).canonical() == entry.canonical


approvals = st.builds(
    Approval,
    approval_id=text,
    status=st.sampled_from(["pending", "approved", "denied", "expired", "used", "cancelled"]),
    user=text,
    team=maybe_text,
    request_id=text,
    api=text,
    model=maybe_text,
    endpoints=names,
    reasons=names,
    kinds=st.dictionaries(text, counts, max_size=3),
    rules=st.dictionaries(text, counts, max_size=3),
    digest=text,
    created_at=times,
    expires_at=times,
    decided_by=maybe_text,
)


@settings(max_examples=200, deadline=None)
@given(approvals, st.sampled_from(["requested", "approved", "denied", "used"]), maybe_text, times)
def test_an_approval_step_record_is_byte_for_byte_the_old_dict(approval, step, actor, ts):
    entry = approval_step_entry(approval, step, actor, ts)
    assert entry.canonical == canonical(old_step(approval, step, actor, ts))
    assert parse_record(entry.canonical).canonical() == entry.canonical


def test_every_record_of_the_recorded_chain_reads_back_to_its_bytes():
    export = read_export((FIXTURE / "export-complete.jsonl").read_bytes().splitlines())
    kinds = Counter(parse_record(s.entry.canonical).kind for s in export.records)
    assert kinds == {"request": 6, "egress": 4, "approval": 2}
    for stored in export.records:
        record = parse_record(stored.entry.canonical)
        assert record.canonical() == stored.entry.canonical
        assert findings_of(stored.entry.canonical) == record.findings


def test_an_older_record_reads_with_its_missing_keys_as_none():
    # Version 1: no translated_from, obligations, candidates, shadow, recorded, response_sha256, approval.
    v1 = {
        "v": 1,
        "request_id": "r1",
        "ts": 1.5,
        "user": "alice",
        "outcome": "forwarded",
        "status": 200,
        "findings": {"total": 1, "kinds": {"secret": 1}},
        "decision": {"id": "d", "action": "mask", "endpoints": ["a"]},
    }
    record = parse_record(canonical(v1))
    assert (record.recorded, record.translated_from, record.approval, record.masked) == (None, None, None, None)
    assert record.decision is not None and record.decision.obligations == () and record.decision.shadow is None
    assert record.findings is not None and record.findings.kinds == {"secret": 1} and record.findings.rules == {}
    assert not record.records_payload


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"[1]", "not a JSON object"),
        (b"{", "not JSON"),
        (b'{"request_id": "r", "ts": 1, "outcome": "refused", "decision": 5}', "decision: not a JSON object"),
    ],
)
def test_bytes_that_are_not_a_record_are_refused_by_name(data, message):
    with pytest.raises(AuditRecordError, match=message):
        parse_record(data)


def test_fields_are_declared_in_sorted_key_order():
    # canonical() writes the record's fields and each sub-object's as_json in declaration order
    # without asking orjson to sort (the byte-for-byte tests above hold the result).
    r = audit_record
    for cls in (r.AuditRecord, r.Decision, r.ShadowDecision, r.Masked, r.MaskedValue, r.Findings, r.Usage, r.Latency,
                r.ApprovalRef):  # fmt: skip
        names = [f.name for f in fields(cls)]
        assert names == sorted(names), cls.__name__
