"""The audit record: one typed structure for the three kinds of record in the chain, its
canonical bytes, and the parser every reader uses.

Kinds (the stored key `type`): a request's own record (no `type`; version 3: its outcome,
decision, findings, masked values, usage, latency), a write-ahead egress record (`"egress"`,
version 4: one per attempt, committed before the attempt's first byte leaves), and an approval
step (`"approval"`, version 3: requested, approved, … with the approval's facts).

Invariants:
- A record holds kinds, rule ids, counts, hashes, sizes and ids, never a value from the request
  body, a header value or a credential.
- `canonical()` is orjson with sorted keys over exactly the keys of the record's kind
  (`_KEYS`), so the bytes are those the dict builders wrote before this type existed: chains
  written then still verify (tests/unit/test_audit_fixture.py, test_audit_record.py).
- `parse_record` reads any stored record, older versions included: a key a version lacks reads
  as None (or an empty collection inside a sub-object). It never re-serialises: the hashed bytes
  are the stored ones, not a re-encoding of the parsed type.

Frozen dataclasses, not msgspec or pydantic: orjson (already the canonical encoder) writes the
same bytes as before by construction, and the parser keeps every value as stored (no coercion),
so readers show old and new records exactly as they did. It runs on the console's scans (up to
tens of thousands of records a page), where a hand-written reader costs a few microseconds.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import orjson

from egress.core.approvals import ApprovalNote
from egress.core.exchange import Decision as PolicyDecision
from egress.core.exchange import Finding, MaskedRequest
from egress.core.exchange import Usage as ExchangeUsage

# 2: decision obligations, candidates, shadow; translated_from.
# 3: recorded, response_sha256 (session recording), approval (just-in-time approvals; approval
#    steps are records of type "approval").
# Older records keep their version and still verify: the chain hashes each record's stored bytes.
RECORD_VERSION = 3
# Write-ahead egress records (type "egress", outcome "egress").
EGRESS_RECORD_VERSION = 4
EGRESS_TYPE = "egress"
APPROVAL_TYPE = "approval"
# The outcome of a write-ahead egress record (approval steps use "approval_<step>").
EGRESS_OUTCOME = "egress"
RECORD_PAYLOAD = "record_payload"  # the obligation that records a request's payloads


class AuditRecordError(ValueError):
    """A stored record that is not an audit record (the message names the key)."""


# --- sub-objects ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ShadowDecision:
    """Shadow mode: what the policy decided but was not enforced."""

    action: str | None
    endpoints: tuple[str, ...]
    mask: tuple[str, ...]
    reasons: tuple[str, ...]
    policy_revision: str | None

    def as_json(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "endpoints": list(self.endpoints),
            "mask": list(self.mask),
            "reasons": list(self.reasons),
            "policy_revision": self.policy_revision,
        }


@dataclass(frozen=True, slots=True)
class Decision:
    """The policy decision as audited. An egress record holds its brief form (`brief_json`)."""

    id: str | None
    action: str | None
    endpoints: tuple[str, ...] = ()
    reasons: tuple[str, ...] = ()
    obligations: tuple[str, ...] = ()
    policy_revision: str | None = None
    candidates: tuple[str, ...] = ()
    shadow: ShadowDecision | None = None

    @classmethod
    def of(cls, decision: PolicyDecision, candidates: tuple[str, ...] = ()) -> Decision:
        shadow = decision.shadow_of
        return cls(
            id=decision.decision_id,
            action=decision.action.value,
            endpoints=tuple(decision.endpoints),
            reasons=tuple(decision.reasons),
            obligations=tuple(decision.obligations),
            policy_revision=decision.policy_revision,
            candidates=tuple(candidates),
            shadow=(
                ShadowDecision(
                    action=shadow.action.value,
                    endpoints=tuple(shadow.endpoints),
                    mask=tuple(shadow.mask_kinds),
                    reasons=tuple(shadow.reasons),
                    policy_revision=shadow.policy_revision,
                )
                if shadow
                else None
            ),
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "action": self.action,
            "endpoints": list(self.endpoints),
            "reasons": list(self.reasons),
            "obligations": list(self.obligations),
            "policy_revision": self.policy_revision,
            "candidates": list(self.candidates),
            "shadow": self.shadow.as_json() if self.shadow else None,
        }

    def brief_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "action": self.action,
            "endpoints": list(self.endpoints),
            "policy_revision": self.policy_revision,
        }


@dataclass(frozen=True, slots=True)
class MaskedValue:
    """One masked value: its kind, rule, keyed hash and count; never the value or placeholder."""

    kind: str | None
    rule: str | None
    hash: str | None
    occurrences: int | None

    def as_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "rule": self.rule, "hash": self.hash, "occurrences": self.occurrences}


@dataclass(frozen=True, slots=True)
class Masked:
    count: int = 0
    values: tuple[MaskedValue, ...] = ()
    rewritten: bool = False

    @classmethod
    def of(cls, masked: MaskedRequest | None) -> Masked:
        if masked is None:
            return cls()
        values = tuple(MaskedValue(str(v.kind), v.rule_id, v.value_hash, v.occurrences) for v in masked.values)
        return cls(masked.masked_count, values, masked.rewritten)

    def as_json(self) -> dict[str, Any]:
        return {"count": self.count, "values": [v.as_json() for v in self.values], "rewritten": self.rewritten}


@dataclass(frozen=True, slots=True)
class Findings:
    """Counts of findings: in total, by kind and by rule id."""

    total: int = 0
    kinds: dict[str, int] = field(default_factory=dict)
    rules: dict[str, int] = field(default_factory=dict)

    @classmethod
    def of(cls, findings: tuple[Finding, ...]) -> Findings:
        if not findings:
            return cls()
        kinds = Counter(str(f.kind) for f in findings)
        rules = Counter(f.rule_id for f in findings)
        return cls(len(findings), dict(kinds), dict(rules))

    def as_json(self) -> dict[str, Any]:
        return {"total": self.total, "kinds": dict(self.kinds), "rules": dict(self.rules)}


@dataclass(frozen=True, slots=True)
class Usage:
    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_read_tokens: int | None = None
    cache_write_tokens: int | None = None

    @classmethod
    def of(cls, usage: ExchangeUsage) -> Usage:
        return cls(usage.input_tokens, usage.output_tokens, usage.cache_read_tokens, usage.cache_write_tokens)

    def as_json(self) -> dict[str, Any]:
        return {
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cache_read_tokens": self.cache_read_tokens,
            "cache_write_tokens": self.cache_write_tokens,
        }


@dataclass(frozen=True, slots=True)
class Latency:
    """Milliseconds, rounded to microseconds: the whole request, waiting on the upstream, the rest."""

    total: float | None
    upstream: float | None
    gateway: float | None

    @classmethod
    def of(cls, total_ns: int, upstream_ns: int) -> Latency:
        return cls(_ms(total_ns), _ms(upstream_ns), _ms(max(total_ns - upstream_ns, 0)))

    def as_json(self) -> dict[str, Any]:
        return {"total": self.total, "upstream": self.upstream, "gateway": self.gateway}


def _ms(ns: int) -> float:
    return round(ns / 1e6, 3)


@dataclass(frozen=True, slots=True)
class ApprovalRef:
    """On a request's own record: the approval that held it, its final status and approver."""

    id: str | None
    status: str | None
    approver: str | None

    @classmethod
    def of(cls, note: ApprovalNote) -> ApprovalRef:
        return cls(note.approval_id, note.status, note.approver)

    def as_json(self) -> dict[str, Any]:
        return {"id": self.id, "status": self.status, "approver": self.approver}


@dataclass(frozen=True, slots=True)
class ApprovalStep:
    """On an approval step's record: which step, who took it, and the approval's facts (ids,
    kinds, counts, times: `Approval.facts()`, never prompt content)."""

    id: str | None
    step: str | None
    status: str | None
    actor: str | None
    approver: str | None
    note: str | None
    digest: str | None
    facts: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            **self.facts,
            "id": self.id,
            "step": self.step,
            "status": self.status,
            "actor": self.actor,
            "approver": self.approver,
            "note": self.note,
            "digest": self.digest,
        }


# --- the record -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One record of the chain. Attribute names are the stored keys; which keys a record holds
    depends on its kind (`type`: None for a request's own record). A key its version lacks reads
    as None."""

    v: int | None
    # Every builder sets these three; a stored record written by hand (tests) may lack them.
    request_id: str | None
    ts: float | None
    outcome: str | None
    type: str | None = None
    user: str | None = None
    team: str | None = None
    key_id: str | None = None
    auth: str | None = None
    client: str | None = None
    user_agent: str | None = None
    session_id: str | None = None
    api: str | None = None
    method: str | None = None
    path: str | None = None
    model: str | None = None
    stream: bool | None = None
    endpoint: str | None = None
    translated_from: str | None = None
    jurisdiction: str | None = None
    region: str | None = None
    upstream_attempts: int | None = None
    upstream_status: int | None = None
    attempt: int | None = None  # egress records: which attempt of the request (1, 2, …)
    status: int | None = None
    error_code: str | None = None
    error_stage: str | None = None
    approval: ApprovalRef | ApprovalStep | None = None
    bytes_in: int | None = None
    bytes_out: int | None = None
    bytes_upstream: int | None = None  # egress records: the size of the body about to leave
    upstream_body_sha256: str | None = None
    recorded: bool | None = None  # the payloads were sealed and kept (`egress audit replay`)
    response_sha256: str | None = None
    usage: Usage | None = None
    latency_ms: Latency | None = None
    findings: Findings | None = None
    decision: Decision | None = None
    masked: Masked | None = None

    @property
    def kind(self) -> str:
        return self.type or "request"

    @property
    def records_payload(self) -> bool:
        """The decision obliged recording the payloads."""
        return self.decision is not None and RECORD_PAYLOAD in self.decision.obligations

    def as_json(self) -> dict[str, Any]:
        """The stored form: exactly the keys of this record's kind."""
        doc = {key: getattr(self, key) for key in _KEYS[self.kind]}
        for key in _OBJECTS:
            value = doc.get(key)
            if value is not None:
                doc[key] = value.brief_json() if key == "decision" and self.type == EGRESS_TYPE else value.as_json()
        return doc

    def canonical(self, upstream_body_sha256: str | None = None, response_sha256: str | None = None) -> bytes:
        """Canonical JSON (sorted keys): the bytes hashed into the chain. The digests, computed on
        the audit writer thread, are filled in when given (None: the record's own)."""
        doc = self.as_json()
        if upstream_body_sha256 is not None:
            doc["upstream_body_sha256"] = upstream_body_sha256
        if response_sha256 is not None:
            doc["response_sha256"] = response_sha256
        return orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)


# The keys whose values are sub-objects (the rest are strings, numbers, booleans or null).
_OBJECTS = ("approval", "usage", "latency_ms", "findings", "decision", "masked")
_KEYS: dict[str, tuple[str, ...]] = {
    "request": (
        "v",
        "request_id",
        "ts",
        "user",
        "team",
        "key_id",
        "auth",
        "client",
        "user_agent",
        "session_id",
        "api",
        "method",
        "path",
        "model",
        "stream",
        "endpoint",
        "translated_from",
        "jurisdiction",
        "region",
        "upstream_attempts",
        "upstream_status",
        "status",
        "outcome",
        "error_code",
        "error_stage",
        "approval",
        "bytes_in",
        "bytes_out",
        "upstream_body_sha256",
        "recorded",
        "response_sha256",
        "usage",
        "latency_ms",
        "findings",
        "decision",
        "masked",
    ),  # fmt: skip
    EGRESS_TYPE: (
        "v",
        "type",
        "request_id",
        "ts",
        "user",
        "team",
        "key_id",
        "auth",
        "client",
        "api",
        "path",
        "model",
        "endpoint",
        "translated_from",
        "jurisdiction",
        "region",
        "attempt",
        "status",
        "outcome",
        "upstream_body_sha256",
        "bytes_upstream",
        "decision",
    ),  # fmt: skip
    APPROVAL_TYPE: (
        "v",
        "type",
        "request_id",
        "ts",
        "user",
        "team",
        "api",
        "model",
        "endpoint",
        "jurisdiction",
        "outcome",
        "status",
        "approval",
    ),  # fmt: skip
}


# --- reading a stored record ----------------------------------------------------------------------


def parse_record(canonical: bytes) -> AuditRecord:
    """A stored record read back into the type. Raises AuditRecordError for bytes that are not
    a JSON object, or a sub-object that is not one."""
    try:
        doc = orjson.loads(canonical)
    except orjson.JSONDecodeError as exc:
        raise AuditRecordError(f"not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise AuditRecordError("not a JSON object")
    return record_of(doc)


def findings_of(canonical: bytes) -> Findings | None:
    """Only a stored record's finding counts, as `parse_record` reads them: for scans over many
    records (the console's data flow) that need nothing else."""
    try:
        doc = orjson.loads(canonical)
    except orjson.JSONDecodeError as exc:
        raise AuditRecordError(f"not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise AuditRecordError("not a JSON object")
    findings = _obj(doc, "findings")
    return None if findings is None else _findings(findings)


def record_of(doc: dict[str, Any]) -> AuditRecord:
    get = doc.get
    kind = get("type")
    approval = _obj(doc, "approval")
    usage = _obj(doc, "usage")
    latency = _obj(doc, "latency_ms")
    findings = _obj(doc, "findings")
    decision = _obj(doc, "decision")
    masked = _obj(doc, "masked")
    return AuditRecord(
        v=get("v"),
        request_id=get("request_id"),
        ts=get("ts"),
        outcome=get("outcome"),
        type=kind,
        user=get("user"),
        team=get("team"),
        key_id=get("key_id"),
        auth=get("auth"),
        client=get("client"),
        user_agent=get("user_agent"),
        session_id=get("session_id"),
        api=get("api"),
        method=get("method"),
        path=get("path"),
        model=get("model"),
        stream=get("stream"),
        endpoint=get("endpoint"),
        translated_from=get("translated_from"),
        jurisdiction=get("jurisdiction"),
        region=get("region"),
        upstream_attempts=get("upstream_attempts"),
        upstream_status=get("upstream_status"),
        attempt=get("attempt"),
        status=get("status"),
        error_code=get("error_code"),
        error_stage=get("error_stage"),
        approval=(
            None if approval is None else _approval_step(approval) if kind == APPROVAL_TYPE else _approval(approval)
        ),
        bytes_in=get("bytes_in"),
        bytes_out=get("bytes_out"),
        bytes_upstream=get("bytes_upstream"),
        upstream_body_sha256=get("upstream_body_sha256"),
        recorded=get("recorded"),
        response_sha256=get("response_sha256"),
        usage=None if usage is None else _usage(usage),
        latency_ms=None
        if latency is None
        else Latency(latency.get("total"), latency.get("upstream"), latency.get("gateway")),
        findings=None if findings is None else _findings(findings),
        decision=None if decision is None else _decision(decision),
        masked=None if masked is None else _masked(masked),
    )


def _obj(doc: dict[str, Any], key: str) -> dict[str, Any] | None:
    value = doc.get(key)
    if value is None or isinstance(value, dict):
        return value
    raise AuditRecordError(f"{key}: not a JSON object")


def _strings(doc: dict[str, Any], key: str) -> tuple[str, ...]:
    return tuple(doc.get(key) or ())


def _decision(doc: dict[str, Any]) -> Decision:
    shadow = _obj(doc, "shadow")
    return Decision(
        id=doc.get("id"),
        action=doc.get("action"),
        endpoints=_strings(doc, "endpoints"),
        reasons=_strings(doc, "reasons"),
        obligations=_strings(doc, "obligations"),
        policy_revision=doc.get("policy_revision"),
        candidates=_strings(doc, "candidates"),
        shadow=(
            None
            if shadow is None
            else ShadowDecision(
                action=shadow.get("action"),
                endpoints=_strings(shadow, "endpoints"),
                mask=_strings(shadow, "mask"),
                reasons=_strings(shadow, "reasons"),
                policy_revision=shadow.get("policy_revision"),
            )
        ),
    )


def _masked(doc: dict[str, Any]) -> Masked:
    values = tuple(
        MaskedValue(v.get("kind"), v.get("rule"), v.get("hash"), v.get("occurrences"))
        for v in doc.get("values") or ()
        if isinstance(v, dict)
    )
    return Masked(doc.get("count") or 0, values, bool(doc.get("rewritten")))


def _findings(doc: dict[str, Any]) -> Findings:
    return Findings(doc.get("total") or 0, dict(doc.get("kinds") or {}), dict(doc.get("rules") or {}))


def _usage(doc: dict[str, Any]) -> Usage:
    get = doc.get
    return Usage(get("input_tokens"), get("output_tokens"), get("cache_read_tokens"), get("cache_write_tokens"))


def _approval(doc: dict[str, Any]) -> ApprovalRef:
    return ApprovalRef(doc.get("id"), doc.get("status"), doc.get("approver"))


_STEP_KEYS = frozenset(("id", "step", "status", "actor", "approver", "note", "digest"))


def _approval_step(doc: dict[str, Any]) -> ApprovalStep:
    get = doc.get
    facts = {k: v for k, v in doc.items() if k not in _STEP_KEYS}
    return ApprovalStep(
        get("id"), get("step"), get("status"), get("actor"), get("approver"), get("note"), get("digest"), facts
    )
