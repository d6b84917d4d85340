"""The decide stage: what the policy is asked about a request, and what its answer allows.

Invariants: the policy sees the request's facts and a summary of its findings (never values);
a client may declare only the labels the configuration lets it declare (ones that tighten the
policy; others are ignored); a failing policy refuses the request (fail closed), and so does a
decision that blocks it, allows no endpoint, or wants an approver where none is configured.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from egress.core.endpoint import Endpoint
from egress.core.errors import EgressError, ErrorCode
from egress.core.exchange import Action, Decision, Exchange
from egress.gateway.stage import StageBoundary
from egress.policy.decide import RequestFacts, policy_input
from egress.policy.service import PolicyService
from egress.route.model_map import upstream_model
from egress.wire.apis import speaks

CLASSIFICATION_HEADER = b"x-egress-classification"
_DECIDE = StageBoundary("decide")


class Decider:
    def __init__(self, policy: PolicyService, client_classifications: frozenset[str]) -> None:
        self.policy = policy
        # Labels a client may declare in x-egress-classification.
        self.client_classifications = client_classifications

    async def decide(
        self, x: Exchange, candidates: tuple[Endpoint, ...], usage: Mapping[str, Any] | None = None
    ) -> Decision:
        """The policy's decision over the candidate endpoints (noted on the exchange); `usage`:
        the caller's limits and how much of each is used (input.usage, egress/limits)."""
        assert x.parsed is not None and x.principal is not None and x.client is not None
        facts = RequestFacts(
            api=x.api.value,
            model=x.parsed.model,
            stream=x.parsed.stream,
            user=x.principal.user,
            team=x.principal.team,
            client=x.client.name,
            session_id=x.client.session_id,
            classifications=self.classifications(x),
            caller_kind=x.principal.kind,
            auth_method=x.principal.method,
            scope=x.principal.scope,
            credential=x.credential,
            usage=usage,
        )
        x.candidates = tuple(e.name for e in candidates)
        translated = frozenset(e.name for e in candidates if not speaks(e.api, x.api))
        with _DECIDE:  # the document's summary too: a failure there is this stage's
            # Model mapping: the id each candidate would be asked for (egress.route.model_map).
            models = {e.name: upstream_model(e, x.parsed.model) for e in candidates} if x.parsed else None
            document = policy_input(facts, x.findings, candidates, translated, models)
            return await self.policy.decide(document, candidates, "dec_" + x.request_id[4:])

    def classifications(self, x: Exchange) -> tuple[str, ...]:
        """Labels the client declared that the configuration lets it declare (others ignored)."""
        raw = x.header(CLASSIFICATION_HEADER)
        if raw is None:
            return ()
        labels = {label.strip().lower() for label in raw.decode("latin-1").split(",")}
        return tuple(sorted(labels & self.client_classifications))


def refuse_unless_allowed(decision: Decision, approvers: bool) -> None:
    """Refuse what the decision does not let through: a block, no endpoint, or an approval
    required where no approver is configured (`approvers` false)."""
    if decision.action is Action.BLOCK or not decision.endpoints:
        reason = "; ".join(decision.reasons) or "no endpoint is allowed for this request"
        raise EgressError(ErrorCode.POLICY_DENIED, f"blocked by policy: {reason}", stage="decide")
    if decision.action is Action.REQUIRE_APPROVAL and not approvers:
        reason = "; ".join(decision.reasons)
        raise EgressError(
            ErrorCode.POLICY_DENIED, f"this request needs an approver's approval: {reason}", stage="decide"
        )
