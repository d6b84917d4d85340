"""The decide stage: the policy input document, the engine seam, and decision validation.

Invariant: the gateway only ever acts on a validated decision. A decision that names an endpoint
which is not a candidate for this request, or an unknown action, is a deny (fail closed).
"""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass
from typing import Any, Protocol

from egress.core.endpoint import Endpoint
from egress.core.errors import EgressError, ErrorCode
from egress.core.exchange import Action, Decision, Finding

INPUT_VERSION = 1


@dataclass(frozen=True, slots=True)
class RequestFacts:
    api: str
    model: str
    stream: bool
    user: str | None
    team: str | None
    client: str | None
    session_id: str | None


def policy_input(
    facts: RequestFacts, findings: tuple[Finding, ...], candidates: tuple[Endpoint, ...]
) -> dict[str, Any]:
    """The versioned document a policy sees. Findings are summarised: never values."""
    kinds = Counter(f.kind for f in findings) if findings else {}
    rules = Counter(f.rule_id for f in findings) if findings else {}
    return {
        "version": INPUT_VERSION,
        "request": {
            "api": facts.api,
            "model": facts.model,
            "stream": facts.stream,
            "client": facts.client,
            "session_id": facts.session_id,
        },
        "subject": {"user": facts.user, "team": facts.team},
        "findings": {"total": len(findings), "kinds": dict(kinds), "rules": dict(rules)},
        "candidates": [
            {
                "name": e.name,
                "api": e.api.value,
                "operator": e.operator,
                "jurisdiction": e.jurisdiction,
                "region": e.region,
                "retention_days": e.retention_days,
                "trains_on_api_data": e.trains_on_api_data,
                "dpa": e.dpa,
                "zero_data_retention": e.zero_data_retention,
                "certifications": list(e.certifications),
                "self_hosted": e.self_hosted,
            }
            for e in candidates
        ],
    }


class PolicyEngine(Protocol):
    revision: str

    def evaluate(self, document: dict[str, Any]) -> dict[str, Any]: ...


class AllowServingEndpoints:
    """The built-in default until a Rego policy is configured: allow every candidate, in order,
    masking the configured finding kinds (`masking.kinds`)."""

    def __init__(self, mask_kinds: tuple[str, ...] = ()) -> None:
        self.mask_kinds = mask_kinds
        self.revision = "builtin:allow-serving-endpoints@2" + (f"+mask:{','.join(mask_kinds)}" if mask_kinds else "")

    def evaluate(self, document: dict[str, Any]) -> dict[str, Any]:
        found = document["findings"]["kinds"]
        masked = [k for k in self.mask_kinds if found.get(k)]
        return {
            "action": (Action.MASK if masked else Action.ALLOW).value,
            "endpoints": [c["name"] for c in document["candidates"]],
            "mask": list(self.mask_kinds),
            "reasons": ["default policy: allow the endpoints that serve the model"]
            + ([f"mask {', '.join(masked)}"] if masked else []),
        }


def validate(output: Any, candidates: tuple[Endpoint, ...], revision: str, default_id: str = "") -> Decision:
    """Turn an engine's raw output into a Decision, or refuse: anything malformed is a deny."""
    if not isinstance(output, dict):
        raise EgressError(ErrorCode.STAGE_FAILED, "policy returned no decision", stage="decide")
    try:
        action = Action(output.get("action"))
    except ValueError:
        raise EgressError(ErrorCode.STAGE_FAILED, "policy returned an unknown action", stage="decide") from None
    endpoints = output.get("endpoints", [])
    mask = output.get("mask", [])
    reasons = output.get("reasons", [])
    if not (isinstance(endpoints, list) and all(isinstance(e, str) for e in endpoints)):
        raise EgressError(ErrorCode.STAGE_FAILED, "policy decision has malformed endpoints", stage="decide")
    if not (isinstance(mask, list) and all(isinstance(k, str) for k in mask)):
        raise EgressError(ErrorCode.STAGE_FAILED, "policy decision has malformed mask kinds", stage="decide")
    if not (isinstance(reasons, list) and all(isinstance(r, str) for r in reasons)):
        raise EgressError(ErrorCode.STAGE_FAILED, "policy decision has malformed reasons", stage="decide")
    allowed = {c.name for c in candidates}
    stray = [e for e in endpoints if e not in allowed]
    if stray:
        raise EgressError(
            ErrorCode.STAGE_FAILED,
            f"policy allowed endpoints that cannot serve this request: {', '.join(stray)}",
            stage="decide",
        )
    return Decision(
        action=action,
        endpoints=tuple(endpoints),
        mask_kinds=tuple(mask),
        reasons=tuple(reasons),
        decision_id=str(output.get("decision_id") or default_id or uuid.uuid4()),
        policy_revision=revision,
    )
