"""input.caller and input.credential: in the document, hence in the decision cache's key (a decision
made for one caller's scope, kind or credential is never served to another), and decided on by
the bundled policy; the out-of-scope refusal in each API's native error shape."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from egress.core.credentials import CredentialClass, Plan, PlanFacts
from egress.core.endpoint import Credentials, Endpoint
from egress.core.errors import EgressError, ErrorCode
from egress.core.exchange import Action, Family
from egress.core.key_scope import CallerKind, KeyScope
from egress.policy.decide import AllowServingEndpoints, RequestFacts, policy_input
from egress.policy.rego import RegoPolicy, RegoSource
from egress.policy.service import PolicyService
from egress.policy.settings import PolicySettings
from egress.wire.apis import APIS


def endpoint(name: str, *, passthrough: bool, self_hosted: bool = False) -> Endpoint:
    return Endpoint(
        name=name,
        api="anthropic",
        base_url="http://127.0.0.1:9",
        models=("claude-*",),
        credentials=Credentials(passthrough=True) if passthrough else Credentials(env="X_KEY", api_key="k"),
        operator="op",
        jurisdiction="self" if self_hosted else "US",
        region="r",
        retention_days=0,
        trains_on_api_data=False,
        dpa=True,
    )


CLOUD, ORG, OWN = endpoint("cloud", passthrough=True), endpoint("org", passthrough=False), endpoint("own", passthrough=False, self_hosted=True)  # fmt: skip
CONSUMER = CredentialClass(Plan.CONSUMER, "anthropic_oauth", "anthropic", PlanFacts(True, 1825, False, "https://x"))
API = CredentialClass(Plan.API, "anthropic_api_key", "anthropic", PlanFacts(False, 30, True, "https://y"))


def facts(**changes: Any) -> RequestFacts:
    base: dict[str, Any] = {"api": "anthropic.messages", "model": "claude-x", "stream": True, "user": "dev", "team": "eng",
                            "client": "claude-code", "session_id": "s1"}  # fmt: skip
    return RequestFacts(**{**base, **changes})


def with_code(doc: dict[str, Any], lines: int) -> dict[str, Any]:
    doc["code"] = {"repos": {"core": {"lines": lines, "share": 0.01, "segments": 1}}, "lines": lines, "share": 0.01}
    return doc


class Counting:
    """The bundled policy, counting its evaluations."""

    def __init__(self) -> None:
        self.inner = RegoPolicy(RegoSource.bundled(), {"mask_kinds": ["secret"]})
        self.revision = self.inner.revision
        self.calls = 0

    async def evaluate(self, document: dict[str, Any]) -> Any:
        self.calls += 1
        return await self.inner.evaluate(document)

    async def aclose(self) -> None:
        await self.inner.aclose()

    def close(self) -> None:
        self.inner.close()


@pytest.fixture(scope="module")
def engine() -> Counting:
    return Counting()


def service(engine: Counting) -> PolicyService:
    return PolicyService(engine, PolicySettings(), baseline=AllowServingEndpoints(("secret",)))  # type: ignore[arg-type]


def test_the_document_carries_caller_credential_and_passthrough() -> None:
    scope = KeyScope(apis=("messages",), models=("claude-*",))
    doc = policy_input(
        facts(caller_kind=CallerKind.SERVICE_ACCOUNT, auth_method="gateway_key", scope=scope, credential=CONSUMER),
        (),
        (CLOUD, ORG),
    )
    assert doc["caller"] == {"kind": "service_account", "method": "gateway_key",
                             "scope": {"apis": ["messages"], "models": ["claude-*"], "endpoints": []}}  # fmt: skip
    assert doc["credential"] == {"plan": "consumer", "type": "anthropic_oauth", "provider": "anthropic",
                                 "trains_on_data": True, "retention_days": 1825, "dpa": False}  # fmt: skip
    assert [c["passthrough"] for c in doc["candidates"]] == [True, False]
    none = policy_input(facts(), (), (CLOUD,))
    assert none["caller"]["kind"] == "person" and none["credential"]["plan"] == "unknown"
    assert none["credential"]["type"] == "none"


async def test_the_cache_never_serves_a_persons_decision_to_a_pipeline(engine: Counting) -> None:
    svc = service(engine)
    person = with_code(policy_input(facts(), (), (CLOUD, OWN)), lines=2)
    first = await svc.decide(person, (CLOUD, OWN), "dec_1")
    assert first.endpoints == ("cloud", "own")
    again = await svc.decide(with_code(policy_input(facts(), (), (CLOUD, OWN)), lines=2), (CLOUD, OWN), "dec_2")
    assert again.endpoints == ("cloud", "own") and svc.cache.hits == 1  # the identical input is cached
    pipeline = with_code(policy_input(facts(caller_kind=CallerKind.SERVICE_ACCOUNT), (), (CLOUD, OWN)), lines=2)
    decided = await svc.decide(pipeline, (CLOUD, OWN), "dec_3")
    assert decided.endpoints == ("own",) and decided.action is Action.REROUTE
    assert svc.cache.hits == 1


async def test_the_cache_never_serves_one_scope_or_credential_for_another(engine: Counting) -> None:
    svc = service(engine)
    calls = engine.calls
    api = policy_input(facts(credential=API), (), (CLOUD, ORG))
    assert (await svc.decide(api, (CLOUD, ORG), "dec_1")).endpoints == ("cloud", "org")
    consumer = policy_input(facts(credential=CONSUMER), (), (CLOUD, ORG))
    refused = await svc.decide(consumer, (CLOUD, ORG), "dec_2")
    assert refused.endpoints == ("org",)
    assert any("consumer-plan credential" in r and "use an API key" in r for r in refused.reasons)
    narrow = policy_input(facts(credential=API, scope=KeyScope(models=("claude-x",))), (), (CLOUD, ORG))
    await svc.decide(narrow, (CLOUD, ORG), "dec_3")
    assert engine.calls - calls == 3 and svc.cache.hits == 0


async def test_a_consumer_credential_with_a_public_request_leaves(engine: Counting) -> None:
    doc = policy_input(facts(credential=CONSUMER, classifications=("public",)), (), (CLOUD,))
    assert (await service(engine).decide(doc, (CLOUD,), "dec_1")).endpoints == ("cloud",)


def test_out_of_scope_in_each_apis_native_shape() -> None:
    err = EgressError(ErrorCode.OUT_OF_SCOPE, "the model 'gpt-5' is outside this credential's scope (models: claude-*)")
    for api, spec in APIS.items():
        status, headers, body = spec.render_error(err, "req_1")
        doc = orjson.loads(body)
        assert status == 403, api
        assert "outside this credential's scope (models: claude-*)" in body.decode(), api
        if api.family is Family.ANTHROPIC:
            assert doc["type"] == "error" and doc["error"]["type"] == "permission_error"
        elif api.family is Family.OPENAI:
            assert doc["error"]["type"] == "permission_error" and doc["error"]["code"] == "out_of_scope"
        else:
            assert doc["error"]["status"] == "PERMISSION_DENIED" and doc["error"]["code"] == 403
