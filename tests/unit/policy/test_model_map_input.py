"""The policy input names, per candidate, the model id that endpoint would be asked for."""

from __future__ import annotations

from egress.core.endpoint import Endpoint
from egress.policy.decide import RequestFacts, policy_input


def endpoint(name: str, **extra: object) -> Endpoint:
    return Endpoint.model_validate(
        {
            "name": name,
            "api": "anthropic",
            "base_url": "https://example.test",
            "models": ["claude-*"],
            "credentials": {"env": "K"},
            "operator": "O",
            "jurisdiction": "EU",
            "region": "r",
            "retention_days": 0,
            "trains_on_api_data": False,
            "dpa": True,
            **extra,
        }
    )


def test_each_candidate_carries_its_upstream_model() -> None:
    facts = RequestFacts("anthropic.messages", "claude-sonnet-4-5", False, "u", None, None, None)
    mapped, plain = endpoint("bedrock-eu"), endpoint("anthropic")
    doc = policy_input(facts, (), (mapped, plain), upstream_models={"bedrock-eu": "eu.anthropic.claude-x"})
    assert doc["request"]["model"] == "claude-sonnet-4-5"
    assert [c["upstream_model"] for c in doc["candidates"]] == ["eu.anthropic.claude-x", "claude-sonnet-4-5"]
    # Without mapping every candidate is asked for the client's own name.
    doc = policy_input(facts, (), (mapped, plain))
    assert {c["upstream_model"] for c in doc["candidates"]} == {"claude-sonnet-4-5"}
