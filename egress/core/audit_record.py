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
  written then still verify (tests/unit/audit/test_fixture.py, tests/unit/core/test_audit_record.py).
- Attribute names are the stored keys. `AuditRecord` has no slots: its `__dict__` holds exactly
  its fields, and `canonical()` copies it (one C call) and drops the keys its kind lacks. The
  sub-objects have slots (cheaper to build on the request path) and write their own JSON
  (`as_json`, a dict literal: orjson reads a slotted dataclass field by field, several times
  slower). Costs side by side with the old dicts: bench/audit_record_bench.py.
- Not frozen, for the request path's sake (a frozen dataclass's __init__ costs an
  object.__setattr__ per field): nothing changes a record or a sub-object once built, nor sets
  an attribute that is not a field (`NO_FINDINGS` and `NOT_MASKED` are shared). The writer
  thread's digests go into the canonical bytes, not the record.
- `parse_record` reads any stored record, older versions included: a key a version lacks reads
  as None (or an empty collection inside a sub-object). It never re-serialises: the hashed bytes
  are the stored ones, not a re-encoding of the parsed type.

Dataclasses, not msgspec or pydantic: orjson (already the canonical encoder) writes
the same bytes as before by construction, and the parser keeps every value as stored (no coercion),
so readers show old and new records exactly as they did. It runs on the console's scans (up to
tens of thousands of records a page), where a hand-written reader costs a few microseconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from egress.core.approvals import ApprovalNote
from egress.core.exchange import Decision as PolicyDecision
from egress.core.exchange import Finding, MaskedRequest
from egress.core.exchange import Usage as ExchangeUsage
from egress.core.obligations import RECORD_PAYLOAD

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


class AuditRecordError(ValueError):
    """A stored record that is not an audit record (the message names the key)."""


# --- sub-objects ----------------------------------------------------------------------------------


# Sub-objects: fields in sorted key order, keyword-only.


@dataclass(slots=True, kw_only=True)
class ShadowDecision:
    """Shadow mode: what the policy decided but was not enforced."""

    action: str | None
    endpoints: tuple[str, ...]
    mask: tuple[str, ...]
    policy_revision: str | None
    reasons: tuple[str, ...]

    def as_json(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "endpoints": self.endpoints,
            "mask": self.mask,
            "policy_revision": self.policy_revision,
            "reasons": self.reasons,
        }


@dataclass(slots=True, kw_only=True)
class Decision:
    """The policy decision as audited. An egress record holds its brief form (`brief_json`)."""

    action: str | None
    candidates: tuple[str, ...] = ()
    endpoints: tuple[str, ...] = ()
    id: str | None
    obligations: tuple[str, ...] = ()
    policy_revision: str | None = None
    reasons: tuple[str, ...] = ()
    shadow: ShadowDecision | None = None

    @classmethod
    def of(cls, decision: PolicyDecision, candidates: tuple[str, ...] = ()) -> Decision:
        shadow = decision.shadow_of
        return cls(
            id=decision.decision_id,
            action=decision.action,
            endpoints=tuple(decision.endpoints),
            reasons=tuple(decision.reasons),
            obligations=tuple(decision.obligations),
            policy_revision=decision.policy_revision,
            candidates=tuple(candidates),
            shadow=(
                ShadowDecision(
                    action=shadow.action,
                    endpoints=tuple(shadow.endpoints),
                    mask=tuple(shadow.mask_kinds),
                    reasons=tuple(shadow.reasons),
                    policy_revision=shadow.policy_revision,
                )
                if shadow
                else None
            ),
        )

    @classmethod
    def brief(cls, decision: PolicyDecision) -> Decision:
        """Only what an egress record keeps of the decision (`brief_json`): as it reads back."""
        return cls(
            action=decision.action,
            endpoints=tuple(decision.endpoints),
            id=decision.decision_id,
            policy_revision=decision.policy_revision,
        )

    def as_json(self) -> dict[str, Any]:
        shadow = self.shadow
        return {
            "action": self.action,
            "candidates": self.candidates,
            "endpoints": self.endpoints,
            "id": self.id,
            "obligations": self.obligations,
            "policy_revision": self.policy_revision,
            "reasons": self.reasons,
            "shadow": None if shadow is None else shadow.as_json(),
        }

    def brief_json(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "endpoints": self.endpoints,
            "id": self.id,
            "policy_revision": self.policy_revision,
        }


@dataclass(slots=True, kw_only=True)
class MaskedValue:
    """One masked value: its kind, rule, keyed hash and count; never the value or placeholder."""

    hash: str | None
    kind: str | None
    occurrences: int | None
    rule: str | None

    def as_json(self) -> dict[str, Any]:
        return {"hash": self.hash, "kind": self.kind, "occurrences": self.occurrences, "rule": self.rule}


@dataclass(slots=True, kw_only=True)
class Masked:
    count: int = 0
    rewritten: bool = False
    values: tuple[MaskedValue, ...] = ()

    @classmethod
    def of(cls, masked: MaskedRequest | None) -> Masked:
        if masked is None:
            return NOT_MASKED
        values = tuple(
            MaskedValue(hash=v.value_hash, kind=str(v.kind), occurrences=v.occurrences, rule=v.rule_id)
            for v in masked.values
        )
        return cls(count=masked.masked_count, rewritten=masked.rewritten, values=values)

    def as_json(self) -> dict[str, Any]:
        return {"count": self.count, "rewritten": self.rewritten, "values": [v.as_json() for v in self.values]}


@dataclass(slots=True, kw_only=True)
class Findings:
    """Counts of findings: in total, by kind and by rule id."""

    kinds: dict[str, int] = field(default_factory=dict)
    rules: dict[str, int] = field(default_factory=dict)
    total: int = 0

    @classmethod
    def of(cls, findings: tuple[Finding, ...]) -> Findings:
        if not findings:
            return NO_FINDINGS
        kinds: dict[str, int] = {}
        rules: dict[str, int] = {}
        for f in findings:  # a few findings at most, as a rule: a loop costs less than Counter
            kind = str(f.kind)
            kinds[kind] = kinds.get(kind, 0) + 1
            rules[f.rule_id] = rules.get(f.rule_id, 0) + 1
        return cls(kinds=kinds, rules=rules, total=len(findings))

    def as_json(self) -> dict[str, Any]:
        kinds, rules = self.kinds, self.rules
        return {
            "kinds": dict(sorted(kinds.items())) if len(kinds) > 1 else kinds,
            "rules": dict(sorted(rules.items())) if len(rules) > 1 else rules,
            "total": self.total,
        }


# Shared by every record without findings or masking (nothing changes a built record).
NO_FINDINGS = Findings()
NOT_MASKED = Masked()


@dataclass(slots=True, kw_only=True)
class Usage:
    cache_read_tokens: int | None = None
    cache_write_tokens: int | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None

    @classmethod
    def of(cls, usage: ExchangeUsage) -> Usage:
        return cls(
            cache_read_tokens=usage.cache_read_tokens,
            cache_write_tokens=usage.cache_write_tokens,
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "cache_read_tokens": self.cache_read_tokens,
            "cache_write_tokens": self.cache_write_tokens,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
        }


@dataclass(slots=True, kw_only=True)
class Latency:
    """Milliseconds, rounded to microseconds: the whole request, waiting on the upstream, the rest."""

    gateway: float | None
    total: float | None
    upstream: float | None

    @classmethod
    def of(cls, total_ns: int, upstream_ns: int) -> Latency:
        gateway = total_ns - upstream_ns if total_ns > upstream_ns else 0
        return cls(
            gateway=round(gateway / 1e6, 3), total=round(total_ns / 1e6, 3), upstream=round(upstream_ns / 1e6, 3)
        )

    def as_json(self) -> dict[str, Any]:
        return {"gateway": self.gateway, "total": self.total, "upstream": self.upstream}


@dataclass(slots=True, kw_only=True)
class ApprovalRef:
    """On a request's own record: the approval that held it, its final status and approver."""

    approver: str | None
    id: str | None
    status: str | None

    @classmethod
    def of(cls, note: ApprovalNote) -> ApprovalRef:
        return cls(approver=note.approver, id=note.approval_id, status=note.status)

    def as_json(self) -> dict[str, Any]:
        return {"approver": self.approver, "id": self.id, "status": self.status}


@dataclass(slots=True, kw_only=True)
class ApprovalStep:
    """On an approval step's record: which step, who took it, and the approval's facts (ids,
    kinds, counts, times: `Approval.facts()`, never prompt content). Written through `as_json`
    (the facts sit beside the step's own keys), not field by field."""

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


@dataclass(kw_only=True)
class AuditRecord:
    """One record of the chain. Attribute names are the stored keys; which keys a record holds
    depends on its kind (`type`: None for a request's own record). A key its version lacks reads
    as None. Fields in sorted key order: `canonical()` writes them in this order (a test holds it).
    A StrEnum member may stand for a string (orjson writes its value)."""

    api: str | None = None
    approval: ApprovalRef | ApprovalStep | None = None
    attempt: int | None = None  # egress records: which attempt of the request (1, 2, …)
    auth: str | None = None
    bytes_in: int | None = None
    bytes_out: int | None = None
    bytes_upstream: int | None = None  # egress records: the size of the body about to leave
    client: str | None = None
    # The terms the client's own provider credential falls under (api, consumer, enterprise,
    # unknown: egress.identity.plans); absent when it sent none, so older records keep their bytes.
    credential_plan: str | None = None
    decision: Decision | None = None
    endpoint: str | None = None
    error_code: str | None = None
    error_stage: str | None = None
    findings: Findings | None = None
    jurisdiction: str | None = None
    key_id: str | None = None
    latency_ms: Latency | None = None
    # Which rate limit or budget refused the request (`team qa requests_per_minute`,
    # egress/limits); absent otherwise, so records without it keep their bytes.
    limit: str | None = None
    masked: Masked | None = None
    method: str | None = None
    model: str | None = None
    # Every builder sets outcome, request_id, ts and v; a stored record written by hand (tests)
    # may lack them.
    outcome: str | None
    path: str | None = None
    recorded: bool | None = None  # the payloads were sealed and kept (`egress audit replay`)
    region: str | None = None
    request_id: str | None
    response_sha256: str | None = None
    session_id: str | None = None
    status: int | None = None
    stream: bool | None = None
    team: str | None = None
    translated_from: str | None = None
    ts: float | None
    type: str | None = None
    upstream_attempts: int | None = None
    upstream_body_sha256: str | None = None
    # The model id the endpoint was asked for, only when model mapping made it differ from
    # `model` (the client's): absent otherwise, so records without mapping keep their bytes.
    upstream_model: str | None = None
    upstream_status: int | None = None
    usage: Usage | None = None
    user: str | None = None
    user_agent: str | None = None
    v: int | None

    @property
    def kind(self) -> str:
        return self.type or "request"

    @property
    def records_payload(self) -> bool:
        """The decision obliged recording the payloads."""
        return self.decision is not None and RECORD_PAYLOAD in self.decision.obligations

    def as_json(self) -> dict[str, Any]:
        """The stored form as plain JSON values (for display)."""
        doc: dict[str, Any] = orjson.loads(self.canonical())
        return doc

    def canonical(self, upstream_body_sha256: str | None = None, response_sha256: str | None = None) -> bytes:
        """Canonical JSON (sorted keys): the bytes hashed into the chain. The digests, computed on
        the audit writer thread, are filled in when given (None: the record's own).

        The keys come out sorted by construction (fields, and every `as_json`, in sorted key
        order), so orjson need not sort them, which would cost as much again as writing them.
        An approval step's facts are not: its kind is sorted by orjson."""
        kind = self.type or "request"
        doc = self.__dict__.copy()
        for key in _ABSENT[kind]:
            del doc[key]
        if "credential_plan" in doc and doc["credential_plan"] is None:
            del doc["credential_plan"]
        if doc.get("upstream_model", _OMITTED) is None:
            del doc["upstream_model"]
        if doc.get("limit", _OMITTED) is None:
            del doc["limit"]
        for key in _OBJECTS[kind]:
            value = doc[key]
            if value is not None:
                doc[key] = value.as_json()
        if kind == EGRESS_TYPE and self.decision is not None:
            doc["decision"] = self.decision.brief_json()
        if upstream_body_sha256 is not None:
            doc["upstream_body_sha256"] = upstream_body_sha256
        if response_sha256 is not None:
            doc["response_sha256"] = response_sha256
        return orjson.dumps(doc, option=_OPTION[kind])


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
        "credential_plan",
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
        "limit",
        "approval",
        "bytes_in",
        "bytes_out",
        "upstream_body_sha256",
        "upstream_model",
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
        "upstream_model",
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
_OMITTED = object()  # `upstream_model` is not a key of the record's kind
# Each kind's values in the order of its keys, read in one call.
_OPTION = {"request": 0, EGRESS_TYPE: 0, APPROVAL_TYPE: orjson.OPT_SORT_KEYS}
_ABSENT = {kind: tuple(k for k in AuditRecord.__dataclass_fields__ if k not in keys) for kind, keys in _KEYS.items()}
# Each kind's keys whose values are sub-objects written through `as_json` (the rest are strings,
# numbers, booleans or null; an egress record's decision is written in brief).
_OBJECTS = {
    kind: tuple(k for k in ("approval", "usage", "latency_ms", "findings", "masked", "decision") if k in keys)
    for kind, keys in _KEYS.items()
}
_OBJECTS[EGRESS_TYPE] = tuple(k for k in _OBJECTS[EGRESS_TYPE] if k != "decision")


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
        credential_plan=get("credential_plan"),
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
        limit=get("limit"),
        approval=(
            None if approval is None else _approval_step(approval) if kind == APPROVAL_TYPE else _approval(approval)
        ),
        bytes_in=get("bytes_in"),
        bytes_out=get("bytes_out"),
        bytes_upstream=get("bytes_upstream"),
        upstream_body_sha256=get("upstream_body_sha256"),
        upstream_model=get("upstream_model"),
        recorded=get("recorded"),
        response_sha256=get("response_sha256"),
        usage=None if usage is None else _usage(usage),
        latency_ms=None
        if latency is None
        else Latency(gateway=latency.get("gateway"), total=latency.get("total"), upstream=latency.get("upstream")),
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
        MaskedValue(hash=v.get("hash"), kind=v.get("kind"), occurrences=v.get("occurrences"), rule=v.get("rule"))
        for v in doc.get("values") or ()
        if isinstance(v, dict)
    )
    return Masked(count=doc.get("count") or 0, rewritten=bool(doc.get("rewritten")), values=values)


def _findings(doc: dict[str, Any]) -> Findings:
    return Findings(kinds=dict(doc.get("kinds") or {}), rules=dict(doc.get("rules") or {}), total=doc.get("total") or 0)


def _usage(doc: dict[str, Any]) -> Usage:
    get = doc.get
    return Usage(
        cache_read_tokens=get("cache_read_tokens"),
        cache_write_tokens=get("cache_write_tokens"),
        input_tokens=get("input_tokens"),
        output_tokens=get("output_tokens"),
    )


def _approval(doc: dict[str, Any]) -> ApprovalRef:
    return ApprovalRef(approver=doc.get("approver"), id=doc.get("id"), status=doc.get("status"))


_STEP_KEYS = frozenset(("id", "step", "status", "actor", "approver", "note", "digest"))


def _approval_step(doc: dict[str, Any]) -> ApprovalStep:
    get = doc.get
    facts = {k: v for k, v in doc.items() if k not in _STEP_KEYS}
    return ApprovalStep(
        id=get("id"),
        step=get("step"),
        status=get("status"),
        actor=get("actor"),
        approver=get("approver"),
        note=get("note"),
        digest=get("digest"),
        facts=facts,
    )
