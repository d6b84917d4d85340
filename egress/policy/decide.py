"""The decide stage: the policy input document, the engine seam, and decision validation.

Invariant: the gateway only ever acts on a validated decision. A decision that names an endpoint
which is not a candidate for this request, or an unknown action, is a deny (fail closed).
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from egress.core.credentials import CredentialClass
from egress.core.endpoint import Endpoint
from egress.core.errors import EgressError, ErrorCode
from egress.core.exchange import MASKABLE_KINDS, Action, Decision, Finding, Tier
from egress.core.key_scope import UNSCOPED, CallerKind, KeyScope
from egress.core.obligations import OBLIGATIONS

# Version 2 added findings.severities, classifications and the candidates' translated, open
# weights and government-access facts. `code` (indexed code the request carries) was added
# within version 2: a field more, which no policy written for version 2 reads. So were `caller`
# (person or service account, and the credential's scope), `credential` (the terms the client's
# own provider credential falls under) and the candidates' `passthrough`, `upstream_model` and
# `operator_jurisdiction`, and `usage` (the caller's rate limits and budgets, egress/limits).
# docs/policy.md documents every field.
INPUT_VERSION = 2


@dataclass(frozen=True, slots=True)
class RequestFacts:
    api: str
    model: str
    stream: bool
    user: str | None
    team: str | None
    client: str | None
    session_id: str | None
    classifications: tuple[str, ...] = ()
    # Part of the document, hence of the decision cache's key: a decision made for one
    # caller's scope or credential is never served to another's.
    caller_kind: CallerKind = CallerKind.PERSON
    auth_method: str | None = None
    scope: KeyScope = UNSCOPED
    credential: CredentialClass | None = None
    # The caller's rate limits and budgets and how much of each is used (egress/limits: per
    # scope key/user/team, each limit's value and whole percent used); empty without limits.
    usage: Mapping[str, Any] | None = None


def policy_input(
    facts: RequestFacts,
    findings: tuple[Finding, ...],
    candidates: tuple[Endpoint, ...],
    translated: frozenset[str] = frozenset(),
    upstream_models: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The versioned document a policy sees. Findings are summarised: never values.

    `translated` names the candidates that would answer through API translation;
    `upstream_models` the model id each candidate would be asked for (model mapping; the
    client's own name where absent)."""
    mapped = upstream_models or {}
    kinds = Counter(str(f.kind) for f in findings) if findings else {}  # str: JSON keys (orjson refuses enums)
    rules = Counter(f.rule_id for f in findings) if findings else {}
    severities = Counter(f.severity for f in findings) if findings else {}
    # Per confidence tier, the same counts: the bundled policy blocks, holds or reroutes on the
    # tiers its settings name (`decisive_tiers`, default certain) and masks every tier.
    by_tier = {
        tier.value: {
            "kinds": dict(Counter(str(f.kind) for f in findings if f.tier == tier)),
            "rules": dict(Counter(f.rule_id for f in findings if f.tier == tier)),
        }
        for tier in Tier
    }
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
        "caller": {"kind": facts.caller_kind.value, "method": facts.auth_method, "scope": facts.scope.as_json()},
        "credential": credential_summary(facts.credential),
        "findings": {
            "total": len(findings),
            "kinds": dict(kinds),
            "severities": dict(severities),
            "rules": dict(rules),
            "by_tier": by_tier,
        },
        "classifications": sorted(set(facts.classifications)),
        "code": code_summary(findings),
        "usage": dict(facts.usage) if facts.usage else {},
        "candidates": [
            {
                "name": e.name,
                "api": e.api.value,
                "operator": e.operator,
                "jurisdiction": e.jurisdiction,
                # Whose law the operator answers to, wherever the region (null: unknown).
                "operator_jurisdiction": e.operator_jurisdiction,
                "region": e.region,
                "retention_days": e.retention_days,
                "trains_on_api_data": e.trains_on_api_data,
                "dpa": e.dpa,
                "zero_data_retention": e.zero_data_retention,
                "certifications": list(e.certifications),
                "self_hosted": e.self_hosted,
                "translated": e.name in translated,
                # The client's own credential is forwarded: its terms (input.credential) apply.
                "passthrough": e.credentials.passthrough,
                # The model id this endpoint is asked for (model mapping); request.model is the client's.
                "upstream_model": mapped.get(e.name, facts.model),
            }
            for e in candidates
        ],
    }


def credential_summary(credential: CredentialClass | None) -> dict[str, Any]:
    """The client's own provider credential: its class and that plan's facts (null when the
    catalog has none). No credential sent: plan unknown, type none."""
    if credential is None:
        return {
            "plan": "unknown",
            "type": "none",
            "provider": None,
            "trains_on_data": None,
            "retention_days": None,
            "dpa": None,
        }
    facts = credential.facts
    return {
        "plan": credential.plan.value,
        "type": credential.type,
        "provider": credential.provider,
        "trains_on_data": None if facts is None else facts.trains_on_data,
        "retention_days": None if facts is None else facts.retention_days,
        "dpa": None if facts is None else facts.dpa,
    }


def code_summary(findings: tuple[Finding, ...]) -> dict[str, Any]:
    """Indexed code the request carries (findings of kind proprietary_code), per repository: the
    most lines matched in one segment, the largest share of one segment, how many segments."""
    repos: dict[str, dict[str, Any]] = {}
    for f in findings:
        if f.code is None:
            continue
        held = repos.setdefault(f.code.repo, {"lines": 0, "share": 0.0, "segments": 0})
        held["lines"] = max(held["lines"], f.code.lines)
        held["share"] = max(held["share"], f.code.share)
        held["segments"] += 1
    return {
        "repos": repos,
        "lines": max((r["lines"] for r in repos.values()), default=0),
        "share": max((r["share"] for r in repos.values()), default=0.0),
    }


class PolicyEngine(Protocol):
    """What the policy service asks. `evaluate` returns the engine's raw answer (validated by
    `validate`) or raises; it may be slow, so the service bounds it with a timeout."""

    revision: str

    async def evaluate(self, document: dict[str, Any]) -> Any: ...

    async def aclose(self) -> None:
        """Release what lives on the event loop (a remote engine's HTTP session)."""
        ...

    def close(self) -> None: ...


class AllowServingEndpoints:
    """The built-in policy (`policy.engine: builtin`) and the baseline that shadow mode enforces:
    allow every candidate, in order, masking the configured finding kinds (`masking.kinds`)."""

    def __init__(self, mask_kinds: tuple[str, ...] = ()) -> None:
        self.mask_kinds = mask_kinds
        self.revision = "builtin:allow-serving-endpoints@2" + (f"+mask:{','.join(mask_kinds)}" if mask_kinds else "")

    def decide_now(self, document: dict[str, Any]) -> dict[str, Any]:
        found = document["findings"]["kinds"]
        masked = [k for k in self.mask_kinds if found.get(k)]
        return {
            "action": (Action.MASK if masked else Action.ALLOW).value,
            "endpoints": [c["name"] for c in document["candidates"]],
            "mask": list(self.mask_kinds),
            "reasons": ["built-in policy: allow the endpoints that serve the model"]
            + ([f"mask {', '.join(masked)}"] if masked else []),
        }

    async def evaluate(self, document: dict[str, Any]) -> Any:
        return self.decide_now(document)

    async def aclose(self) -> None:
        """Nothing lives on the event loop."""

    def close(self) -> None:
        """Nothing to release."""


def _invalid(message: str) -> EgressError:
    return EgressError(ErrorCode.POLICY_INVALID, f"the policy's decision is malformed: {message}", stage="decide")



def _strings(output: dict[str, Any], key: str, required: bool = False) -> tuple[str, ...] | None:
    """The field as a tuple of strings; None when it is absent (and not required)."""
    if key not in output:
        if required:
            raise _invalid(f"`{key}` is missing")
        return None
    value = output[key]
    if not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
        raise _invalid(f"`{key}` must be a list of strings")
    return tuple(value)


def _show(value: Any) -> str:
    return repr(value)[:40]


def validate(
    output: Any,
    candidates: tuple[Endpoint, ...],
    revision: str,
    default_id: str = "",
    floor: tuple[str, ...] = (),
) -> Decision:
    """Turn an engine's raw output into a Decision, or refuse: anything malformed is a deny.

    A decision is complete or refused. `floor` (`masking.kinds`) is masked wherever a request
    goes: a decision may add kinds to it, never remove one, and one that says nothing about
    masking (no `mask`) masks exactly the floor, never nothing."""
    if not isinstance(output, dict):
        raise _invalid("it is not an object")
    if "action" not in output:
        raise _invalid("`action` is missing")
    raw_action = output["action"]
    if not isinstance(raw_action, str):
        raise _invalid(f"`action` must be a string, not {_show(raw_action)}")
    try:
        action = Action(raw_action)
    except ValueError:
        raise _invalid(f"unknown action {raw_action[:40]!r}") from None
    endpoints = _strings(output, "endpoints", required=action is not Action.BLOCK) or ()
    mask = _strings(output, "mask")
    reasons = _strings(output, "reasons") or ()
    obligations = _strings(output, "obligations") or ()
    if not isinstance(output.get("shadow", False), bool):
        raise _invalid("`shadow` must be true or false")
    if "decision_id" in output and not (isinstance(output["decision_id"], str) and output["decision_id"]):
        raise _invalid("`decision_id` must be a non-empty string")
    allowed = {c.name for c in candidates}
    stray = [e for e in endpoints if e not in allowed]
    if stray:
        raise _invalid(f"it allows endpoints that cannot serve this request: {', '.join(stray)}")
    twice = sorted({e for e in endpoints if endpoints.count(e) > 1})
    if twice:
        raise _invalid(f"it names an endpoint more than once: {', '.join(twice)}")
    unknown = [k for k in (mask or ()) if k not in MASKABLE_KINDS]
    if unknown:
        raise _invalid(f"`mask` names unknown kinds: {', '.join(u[:40] for u in unknown)}")
    strange = [o for o in obligations if o not in OBLIGATIONS]
    if strange:
        # An obligation egress does not know cannot be honoured: refusing is the only safe answer.
        raise _invalid(f"unknown obligations: {', '.join(o[:40] for o in strange)}")
    kinds = tuple(dict.fromkeys((*floor, *(mask or ()))))
    return Decision(
        action=action,
        endpoints=endpoints,
        mask_kinds=kinds,
        reasons=reasons,
        # egress's own id: unique per request, even for a cached decision (an engine's is not)
        decision_id=default_id or str(uuid.uuid4()),
        policy_revision=revision,
        obligations=obligations,
    )


def wants_shadow(output: Any) -> bool:
    """The policy asked (for this request's team, say) that its decision not be enforced."""
    return isinstance(output, dict) and output.get("shadow") is True
