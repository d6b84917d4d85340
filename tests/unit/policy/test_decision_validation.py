"""A decision is complete or refused: every field of a malformed decision is refused with
`policy_invalid`, and `masking.kinds` is a floor that a decision can add to, never lower.

Each decision comes from the real in-process engine (a Rego module answering it) through the
policy service, as a gateway asks it."""

from __future__ import annotations

import json
from typing import Any

import pytest

from egress.core.errors import EgressError, ErrorCode
from egress.core.exchange import Action
from egress.policy.decide import AllowServingEndpoints, validate
from egress.policy.rego import RegoPolicy, RegoSource
from egress.policy.service import PolicyService
from egress.policy.settings import PolicySettings
from tests.unit.policy.test_service import CANDIDATES, document

FLOOR = ("secret", "pii")  # masking.kinds


def engine_answering(decision: dict[str, Any]) -> RegoPolicy:
    module = f"package egress\nimport rego.v1\ndecision := {json.dumps(decision)}\n"
    return RegoPolicy(RegoSource((("decision.rego", module),)), {})


async def decide(decision: dict[str, Any]):
    engine = engine_answering(decision)
    try:
        service = PolicyService(engine, PolicySettings(timeout_ms=5000), AllowServingEndpoints(FLOOR))
        return await service.decide(document({"secret": 1}), CANDIDATES, "dec_1")
    finally:
        engine.close()


ALLOW = {"action": "allow", "endpoints": ["us"]}


@pytest.mark.parametrize(
    ("decision", "says"),
    [
        pytest.param({"endpoints": ["us"]}, "`action` is missing", id="action-missing"),
        pytest.param({"action": "permit", "endpoints": ["us"]}, "unknown action 'permit'", id="action-unknown"),
        pytest.param({"action": ["allow"], "endpoints": ["us"]}, "`action` must be a string", id="action-type"),
        pytest.param({"action": 1, "endpoints": ["us"]}, "`action` must be a string", id="action-number"),
        pytest.param({"action": "allow"}, "`endpoints` is missing", id="endpoints-missing-allow"),
        pytest.param({"action": "mask", "mask": ["secret"]}, "`endpoints` is missing", id="endpoints-missing-mask"),
        pytest.param({"action": "allow", "endpoints": "us"}, "`endpoints` must be a list", id="endpoints-not-list"),
        pytest.param({"action": "allow", "endpoints": [1]}, "`endpoints` must be a list", id="endpoints-not-strings"),
        pytest.param(
            {"action": "allow", "endpoints": ["nowhere"]}, "cannot serve this request: nowhere", id="endpoints-unknown"
        ),
        pytest.param(
            # a name the request cannot go to: not among the candidates the engine was shown
            {"action": "reroute", "endpoints": ["eu", "own"]},
            "cannot serve this request: own",
            id="endpoints-not-candidate",
        ),
        pytest.param(
            {"action": "allow", "endpoints": ["us", "eu", "us"]}, "more than once: us", id="endpoints-duplicate"
        ),
        pytest.param({**ALLOW, "mask": "secret"}, "`mask` must be a list", id="mask-type"),
        pytest.param({**ALLOW, "mask": None}, "`mask` must be a list", id="mask-null"),
        pytest.param({**ALLOW, "mask": ["secret", "passwords"]}, "unknown kinds: passwords", id="mask-unknown-kind"),
        pytest.param({**ALLOW, "reasons": "because"}, "`reasons` must be a list", id="reasons-type"),
        pytest.param({**ALLOW, "reasons": ["ok", 3]}, "`reasons` must be a list", id="reasons-not-strings"),
        pytest.param({**ALLOW, "obligations": ["notify_ciso"]}, "unknown obligations: notify_ciso", id="obligation-unknown"),
        pytest.param({**ALLOW, "obligations": "record_payload"}, "`obligations` must be a list", id="obligations-type"),
        pytest.param({**ALLOW, "decision_id": 7}, "`decision_id` must be a non-empty string", id="decision-id-type"),
        pytest.param({**ALLOW, "decision_id": ""}, "`decision_id` must be a non-empty string", id="decision-id-empty"),
        pytest.param({**ALLOW, "shadow": "yes"}, "`shadow` must be true or false", id="shadow-type"),
    ],
)
async def test_a_malformed_field_is_refused(decision, says):
    with pytest.raises(EgressError) as caught:
        await decide(decision)
    assert caught.value.code is ErrorCode.POLICY_INVALID and caught.value.status == 500
    assert caught.value.stage == "decide"
    assert says in caught.value.message


async def test_a_missing_mask_masks_the_configured_kinds_never_nothing():
    decision = await decide(ALLOW)
    assert decision.mask_kinds == FLOOR
    assert decision.action is Action.ALLOW and decision.endpoints == ("us",)


async def test_a_decision_can_add_kinds_but_never_remove_configured_ones():
    assert (await decide({**ALLOW, "mask": []})).mask_kinds == FLOOR
    assert (await decide({**ALLOW, "mask": ["pii"]})).mask_kinds == FLOOR
    assert (await decide({**ALLOW, "mask": ["internal", "secret"]})).mask_kinds == ("secret", "pii", "internal")


async def test_complete_decisions_pass_whole():
    decision = await decide(
        {
            "action": "reroute",
            "endpoints": ["eu", "us"],
            "mask": ["sensitive_file"],
            "reasons": ["us: personal data"],
            "obligations": ["record_payload"],
            "decision_id": "opa-42",
        }
    )
    assert decision.endpoints == ("eu", "us") and decision.reasons == ("us: personal data",)
    assert decision.obligations == ("record_payload",)
    assert decision.decision_id == "dec_1"  # egress's own id, unique per request
    assert decision.mask_kinds == ("secret", "pii", "sensitive_file")


async def test_block_needs_no_endpoints():
    decision = await decide({"action": "block", "reasons": ["no"]})
    assert decision.action is Action.BLOCK and decision.endpoints == ()


def test_the_builtin_baseline_and_validate_agree_on_the_floor():
    baseline = AllowServingEndpoints(FLOOR)
    raw = baseline.decide_now(document({"pii": 1}))
    assert validate(raw, CANDIDATES, baseline.revision, "d", FLOOR).mask_kinds == FLOOR
    assert validate({"action": "allow", "endpoints": ["us"]}, CANDIDATES, "r", "d").mask_kinds == ()
