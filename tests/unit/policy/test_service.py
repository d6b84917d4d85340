"""The policy service: fail closed, cache only identical inputs, shadow mode, reload."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from egress.core.endpoint import Credentials, Endpoint
from egress.core.errors import EgressError, ErrorCode
from egress.core.exchange import Action, Finding, Kind, Tier
from egress.policy.decide import AllowServingEndpoints, RequestFacts, policy_input, validate
from egress.policy.rego import PolicyEvaluationError, PolicyLoadError, RegoPolicy, RegoSource
from egress.policy.remote import RemoteOpaError
from egress.policy.service import DecisionCache, PolicyService
from egress.policy.settings import PolicySettings


def endpoint(name: str, jurisdiction: str, **facts: Any) -> Endpoint:
    return Endpoint(
        name=name,
        api=facts.pop("api", "anthropic"),
        base_url="http://127.0.0.1:9",
        models=("claude-*",),
        credentials=Credentials(passthrough=True),
        operator="op",
        jurisdiction=jurisdiction,
        region="r",
        retention_days=0,
        trains_on_api_data=facts.pop("trains", False),
        dpa=facts.pop("dpa", True),
    )


US, EU = endpoint("us", "US"), endpoint("eu", "DE")
CANDIDATES = (US, EU)


def document(kinds: dict[str, int] | None = None, team: str | None = "eng") -> dict[str, Any]:
    facts = RequestFacts("anthropic.messages", "claude-x", True, "dev", team, "claude-code", "s1")
    doc = policy_input(facts, (), CANDIDATES)
    doc["findings"]["kinds"] = kinds or {}
    return doc


class Engine:
    """A scripted engine that counts its evaluations."""

    def __init__(self, answer: Any = None, error: Exception | None = None, delay_s: float = 0.0) -> None:
        self.answer = answer if answer is not None else {"action": "allow", "endpoints": ["us", "eu"]}
        self.error = error
        self.delay_s = delay_s
        self.calls = 0
        self.revision = "test:1"
        self.closed = False

    async def evaluate(self, document: dict[str, Any]) -> Any:
        self.calls += 1
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        if self.error is not None:
            raise self.error
        return self.answer

    def close(self) -> None:
        self.closed = True


def service(engine: Engine, **settings: Any) -> PolicyService:
    return PolicyService(engine, PolicySettings(**settings), AllowServingEndpoints(("secret",)))


async def test_identical_inputs_are_cached_and_ids_stay_unique():
    engine = Engine()
    svc = service(engine)
    first = await svc.decide(document(), CANDIDATES, "dec_1")
    second = await svc.decide(document(), CANDIDATES, "dec_2")
    assert engine.calls == 1 and svc.cache.hits == 1
    assert (first.decision_id, second.decision_id) == ("dec_1", "dec_2")
    assert first.endpoints == second.endpoints == ("us", "eu")


async def test_any_difference_in_the_input_is_a_miss():
    engine = Engine()
    svc = service(engine)
    await svc.decide(document(), CANDIDATES, "a")
    await svc.decide(document({"pii": 1}), CANDIDATES, "b")
    await svc.decide(document(team="other"), CANDIDATES, "c")
    assert engine.calls == 3


async def test_cache_is_bounded_and_ttl_expires():
    cache = DecisionCache(entries=2, ttl_s=None)
    decision = validate({"action": "allow", "endpoints": []}, (), "r")
    for key in (b"a", b"b", b"c"):
        cache.put(key, decision)
    assert cache.get(b"a") is None and cache.get(b"c") is not None
    expiring = DecisionCache(entries=2, ttl_s=0.01)
    expiring.put(b"a", decision)
    await asyncio.sleep(0.02)
    assert expiring.get(b"a") is None


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (PolicyEvaluationError("undefined"), ErrorCode.POLICY_UNAVAILABLE),
        (RemoteOpaError("down"), ErrorCode.POLICY_UNAVAILABLE),
    ],
)
async def test_engine_failures_deny(error, code):
    svc = service(Engine(error=error))
    with pytest.raises(EgressError) as caught:
        await svc.decide(document(), CANDIDATES, "x")
    assert caught.value.code is code and caught.value.stage == "decide"
    assert svc.cache.misses == 1 and not svc.cache._items  # failures are never cached


async def test_timeout_denies():
    svc = service(Engine(delay_s=1.0), timeout_ms=50)
    with pytest.raises(EgressError) as caught:
        await svc.decide(document(), CANDIDATES, "x")
    assert caught.value.code is ErrorCode.POLICY_UNAVAILABLE and "50 ms" in caught.value.message


@pytest.mark.parametrize(
    "answer",
    [
        [],
        {"action": "allow"} | {"endpoints": ["elsewhere"]},
        {"action": "maybe", "endpoints": []},
        {"action": "allow", "endpoints": [], "obligations": "record"},
        {"action": "allow", "endpoints": [], "shadow": "yes"},
    ],
)
async def test_malformed_answers_deny(answer):
    with pytest.raises(EgressError) as caught:
        await service(Engine(answer=answer)).decide(document(), CANDIDATES, "x")
    assert caught.value.code is ErrorCode.POLICY_INVALID


async def test_global_shadow_enforces_the_baseline_and_records_the_policy():
    engine = Engine(answer={"action": "block", "endpoints": [], "reasons": ["no"]})
    decision = await service(engine, shadow=True).decide(document({"secret": 1}), CANDIDATES, "x")
    assert decision.action is Action.MASK and decision.endpoints == ("us", "eu")
    assert decision.shadow_of is not None and decision.shadow_of.action is Action.BLOCK
    assert decision.policy_revision.startswith("builtin:")


async def test_global_shadow_survives_a_failing_policy():
    decision = await service(Engine(error=PolicyEvaluationError("boom")), shadow=True).decide(
        document(), CANDIDATES, "x"
    )
    assert decision.action is Action.ALLOW and decision.shadow_of is None
    assert any("policy failed" in r for r in decision.reasons)


async def test_policy_can_ask_for_shadow_itself():
    engine = Engine(answer={"action": "block", "endpoints": [], "shadow": True})
    decision = await service(engine).decide(document(), CANDIDATES, "x")
    assert decision.action is Action.ALLOW and decision.shadow_of.action is Action.BLOCK


async def test_reload_swaps_and_clears_and_a_failed_reload_keeps_the_old():
    first, second = Engine(), Engine(answer={"action": "allow", "endpoints": ["eu"]})
    second.revision = "test:2"
    loads: list[Any] = [second, PolicyLoadError("broken.rego:1:1: nope")]

    def loader():
        item = loads.pop(0)
        if isinstance(item, Exception):
            raise item
        return item

    svc = PolicyService(first, PolicySettings(), AllowServingEndpoints(), loader)
    await svc.decide(document(), CANDIDATES, "a")
    assert svc.reload() == "test:2" and first.closed and not svc.cache._items
    assert (await svc.decide(document(), CANDIDATES, "b")).endpoints == ("eu",)
    with pytest.raises(PolicyLoadError):
        svc.reload()
    assert svc.revision == "test:2"


# --- contract: the real engine on the bundled policy, with documents built by policy_input ---


@pytest.fixture(scope="module")
def bundled() -> RegoPolicy:
    return RegoPolicy(RegoSource.bundled(), {"mask_kinds": ["secret"]})


def decide_now(policy: RegoPolicy, kinds: dict[str, int], candidates, classifications=()) -> Any:
    facts = RequestFacts("anthropic.messages", "claude-x", True, "dev", "eng", "claude-code", None, classifications)
    findings = tuple(Finding(Kind(k), f"{k}-rule", 0, 0, 1, 1.0) for k, n in kinds.items() for _ in range(n))
    doc = policy_input(facts, findings, candidates)
    return validate(policy.evaluate_now(doc), candidates, policy.revision, "x")


def test_contract_clean_request(bundled):
    d = decide_now(bundled, {}, CANDIDATES)
    assert d.action is Action.ALLOW and d.endpoints == ("us", "eu") and d.mask_kinds == ("secret",)


def test_contract_pii_reroutes(bundled):
    d = decide_now(bundled, {"pii": 2}, CANDIDATES)
    assert d.action is Action.REROUTE and d.endpoints == ("eu",)


def test_contract_trainer_and_unknown_refused(bundled):
    trainer = endpoint("trainer", "US", trains=True)
    d = decide_now(bundled, {}, (trainer, EU))
    assert d.endpoints == ("eu",)


def test_contract_self_hosted_for_proprietary(bundled):
    own = endpoint("own", "self", api="openai-chat", dpa=False)
    d = decide_now(bundled, {}, (US, EU, own), ("proprietary",))
    assert d.endpoints == ("own",) and d.action is Action.REROUTE


def test_contract_block(bundled):
    d = decide_now(bundled, {"pii": 1}, (US,))
    assert d.action is Action.BLOCK and d.endpoints == ()


def test_a_policy_that_cannot_decide_does_not_load():
    with pytest.raises(PolicyLoadError, match="must be an object"):
        RegoPolicy(RegoSource((("p.rego", "package egress\nimport rego.v1\ndecision := 3\n"),)), {})
    with pytest.raises(PolicyLoadError, match="undefined"):
        RegoPolicy(RegoSource((("p.rego", "package egress\nimport rego.v1\ndecision := 1 if input.nope\n"),)), {})
    with pytest.raises(PolicyLoadError, match=r"p\.rego:2:\d+"):
        RegoPolicy(RegoSource((("p.rego", "package egress\ndecision := {\n"),)), {})


def test_contract_likely_findings_are_masked_and_decide_only_where_the_settings_say():
    """A generic credential (tier likely) is masked, but holds the request only when the
    organisation names `likely` among the decisive tiers; a certain one always does."""
    facts = RequestFacts("anthropic.messages", "claude-x", True, "dev", "eng", "claude-code", None, ())
    likely = (Finding(Kind.SECRET, "generic-secret-quoted", 0, 0, 8, 0.75, tier=Tier.LIKELY),)
    certain = (Finding(Kind.SECRET, "github-pat-classic", 0, 0, 40, 0.99),)
    hold = {"mask_kinds": ["secret"], "approval": {"kinds": ["secret"], "rules": []}}
    only_certain = RegoPolicy(RegoSource.bundled(), hold)
    both = RegoPolicy(RegoSource.bundled(), {**hold, "decisive_tiers": ["certain", "likely"]})

    def action(policy: RegoPolicy, findings: tuple[Finding, ...]) -> Action:
        doc = policy_input(facts, findings, CANDIDATES)
        return validate(policy.evaluate_now(doc), CANDIDATES, policy.revision, "x").action

    assert action(only_certain, likely) is Action.MASK
    assert action(only_certain, certain) is Action.REQUIRE_APPROVAL
    assert action(both, likely) is Action.REQUIRE_APPROVAL
    doc = policy_input(facts, likely + certain, CANDIDATES)
    assert doc["findings"]["by_tier"] == {
        "certain": {"kinds": {"secret": 1}, "rules": {"github-pat-classic": 1}},
        "likely": {"kinds": {"secret": 1}, "rules": {"generic-secret-quoted": 1}},
    }
