"""The decide stage's own rules: which declared labels count, and what a decision lets through."""

from __future__ import annotations

import pytest

from egress.core.errors import EgressError, ErrorCode
from egress.core.exchange import Action, Api, Decision, Exchange
from egress.gateway.decide import Decider, refuse_unless_allowed


def exchange(*headers: tuple[bytes, bytes]) -> Exchange:
    return Exchange("egr_1", "POST", "/v1/messages", "", list(headers), Api.ANTHROPIC_MESSAGES)


def decision(action: Action, endpoints: tuple[str, ...] = ("eu",), reasons: tuple[str, ...] = ()) -> Decision:
    return Decision(action, endpoints, (), reasons, "dec_1", "rev")


def test_a_client_declares_only_the_labels_it_may():
    decider = Decider(policy=None, client_classifications=frozenset({"proprietary", "export_controlled"}))  # type: ignore[arg-type]
    declared = exchange((b"x-egress-classification", b" Export_Controlled, public ,proprietary"))
    assert decider.classifications(declared) == ("export_controlled", "proprietary")
    assert decider.classifications(exchange()) == ()


@pytest.mark.parametrize(
    ("decided", "approvers", "message"),
    [
        (decision(Action.BLOCK, reasons=("a secret", "a key")), True, "blocked by policy: a secret; a key"),
        (decision(Action.ALLOW, endpoints=()), True, "blocked by policy: no endpoint is allowed for this request"),
        (decision(Action.REQUIRE_APPROVAL, reasons=("pii",)), False, "this request needs an approver's approval: pii"),
    ],
)
def test_what_the_decision_does_not_let_through_is_refused(decided, approvers, message):
    with pytest.raises(EgressError) as caught:
        refuse_unless_allowed(decided, approvers)
    assert (caught.value.code, caught.value.stage, caught.value.message) == (ErrorCode.POLICY_DENIED, "decide", message)


@pytest.mark.parametrize(("action", "approvers"), [(Action.ALLOW, False), (Action.REQUIRE_APPROVAL, True)])
def test_what_it_allows_goes_on(action, approvers):
    refuse_unless_allowed(decision(action), approvers)
