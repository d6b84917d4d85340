"""Jurisdiction-aware routing with the bundled Rego policy, end to end.

Three upstream simulators on loopback stand for three endpoints with different catalog facts:
a US cloud and an EU cloud speaking Anthropic Messages, and a self-hosted server speaking only
Chat Completions (answered through translation). The official anthropic SDK is the client.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import pytest
import yaml

from egress.app import open_configured_store
from egress.config import load_config
from egress.gateway.auth import new_key
from tests.conftest import Running
from tests.support.gateway import SIM_ENV, ThreadedGateway, free_port, write_config
from tests.support.simulator import Reply, UpstreamSimulator

AWS_KEY = "AKIAQYLPMN5HHHFPZAM2"  # shaped like a real key; not the documented example
EMAIL = "jane.doe@customer-corp.example"


@pytest.fixture
def clouds(sims: dict[str, UpstreamSimulator]) -> dict[str, UpstreamSimulator]:
    for sim in sims.values():
        sim.reset()
    return sims


def _endpoint(name: str, api: str, url: str, jurisdiction: str, **facts: Any) -> dict[str, Any]:
    return {
        "name": name,
        "api": api,
        "base_url": url,
        "models": facts.pop("models", ["claude-*"]),
        "credentials": {"env": "SIM_ANTHROPIC_KEY" if api == "anthropic" else "SIM_OPENAI_KEY"},
        "operator": f"Simulated {name}",
        "jurisdiction": jurisdiction,
        "region": jurisdiction.lower(),
        "retention_days": 30,
        "trains_on_api_data": False,
        "dpa": True,
        **facts,
    }


def providers(urls: dict[str, str]) -> list[dict[str, Any]]:
    """US first (the preferred endpoint), then EU, then our own Chat-only server."""
    return [
        _endpoint("us-cloud", "anthropic", urls["us"], "US"),
        _endpoint("eu-cloud", "anthropic", urls["eu"], "FR"),
        _endpoint(
            "own",
            "openai-chat",
            urls["own"] + "/v1",
            "self",
            models=["*"],
            dpa=False,
            upstream_model="local-model",
            max_output_tokens=16,
        ),
    ]


def start(tmp_path: Path, urls: dict[str, str], **extra: Any) -> Running:
    """A gateway on these endpoints (default: `providers(urls)`), with a key for dana (payments)."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    if "providers" not in extra:
        extra["providers"] = providers(urls)
    # Personal data in clear, so that the policy's jurisdiction rules decide (the embedded
    # defaults mask it, which lets it go anywhere).
    extra.setdefault("masking", {"kinds": ["secret"]})
    path = write_config(tmp_path, urls["us"], **extra)
    gw = ThreadedGateway.from_file(path)
    store = open_configured_store(load_config(path, env=SIM_ENV))
    secret, key = new_key("dana", "payments")
    store.create_key(key)
    gw.start()
    return Running(gw, secret, store)


@pytest.fixture
def routed(clouds: dict[str, UpstreamSimulator], tmp_path: Path) -> Iterator[Running]:
    running = start(tmp_path, {name: sim.url for name, sim in clouds.items()})
    yield running
    running.gateway.stop()
    running.store.close()


def client(gw: Running) -> anthropic.Anthropic:
    return anthropic.Anthropic(
        base_url=gw.url, api_key="sk-ant-client", default_headers={"x-egress-key": gw.key}, max_retries=0
    )


def ask(gw: Running, text: str, stream: bool = True, **headers: str) -> str:
    sdk = client(gw)
    messages = [{"role": "user", "content": text}]
    if stream:
        with sdk.messages.stream(
            model="claude-sonnet-4-5", max_tokens=64, messages=messages, extra_headers=headers
        ) as s:
            return s.get_final_text()
    reply = sdk.messages.create(model="claude-sonnet-4-5", max_tokens=64, messages=messages, extra_headers=headers)
    return "".join(b.text for b in reply.content if b.type == "text")


def sent(sim: UpstreamSimulator) -> bytes:
    return b"".join(r.body for r in sim.received)


def test_clean_code_goes_to_the_preferred_endpoint(routed, clouds):
    ask(routed, "refactor this function: def f(x): return x + 1")
    assert len(clouds["us"].received) == 1 and not clouds["eu"].received and not clouds["own"].received
    (record,) = routed.audit(1)
    assert record["endpoint"] == "us-cloud" and record["jurisdiction"] == "US"
    assert record["decision"]["action"] == "allow"
    assert record["decision"]["policy_revision"].startswith("rego:")
    assert record["decision"]["candidates"] == ["us-cloud", "eu-cloud", "own"]


def test_personal_data_goes_to_the_eu_never_the_us(routed, clouds):
    ask(routed, f"write to {EMAIL} about the invoice")
    assert clouds["us"].received == []
    assert len(clouds["eu"].received) == 1
    (record,) = routed.audit(1)
    assert record["endpoint"] == "eu-cloud" and record["jurisdiction"] == "FR"
    assert record["decision"]["action"] == "reroute"
    assert record["decision"]["endpoints"] == ["eu-cloud", "own"]
    assert "us-cloud: personal data may not go to US" in record["decision"]["reasons"]
    assert EMAIL not in str(record)


def test_secrets_are_masked_on_every_route(clouds, tmp_path):
    urls = {name: sim.url for name, sim in clouds.items()}
    text = f"deploy with {AWS_KEY} and tell {EMAIL}"
    # EU route (PII reroutes away from the US).
    gw = start(tmp_path / "a", urls)
    try:
        ask(gw, text)
    finally:
        gw.gateway.stop()
        gw.store.close()
    # Self-hosted route through translation (the EU endpoint is down).
    urls_down = {**urls, "eu": f"http://127.0.0.1:{free_port()}"}
    gw = start(tmp_path / "b", urls_down)
    try:
        ask(gw, text)
        (record,) = gw.audit(1)
        assert record["endpoint"] == "own" and record["translated_from"] == "anthropic.messages"
    finally:
        gw.gateway.stop()
        gw.store.close()
    assert clouds["us"].received == []
    assert len(clouds["eu"].received) == 1 and len(clouds["own"].received) == 1
    for sim in (clouds["eu"], clouds["own"]):
        body = sent(sim)
        assert AWS_KEY.encode() not in body and b"EGX_" in body
    # The self-hosted server got Chat Completions for its own model name.
    chat = clouds["own"].received[0].json()
    assert chat["model"] == "local-model" and chat["messages"][-1]["role"] == "user"
    assert chat["max_tokens"] == 16  # the endpoint's cap, below the 64 the client asked for
    assert clouds["own"].received[0].path == "/v1/chat/completions"


def test_compliant_endpoints_down_refuses_and_sends_nothing_to_the_us(clouds, tmp_path):
    urls = {"us": clouds["us"].url, "eu": f"http://127.0.0.1:{free_port()}", "own": f"http://127.0.0.1:{free_port()}"}
    gw = start(tmp_path, urls)
    try:
        with pytest.raises(anthropic.APIStatusError) as caught:
            ask(gw, f"email {EMAIL} the report")
        assert caught.value.status_code == 503
        assert caught.value.body["error"]["details"]["error_code"] == "no_compliant_endpoint"
        assert clouds["us"].received == []
        (record,) = gw.audit(1)
        assert record["error_code"] == "no_compliant_endpoint" and record["outcome"] == "failed"
        assert record["upstream_attempts"] == 2
        # A clean request still goes to the US endpoint: the refusal was about the data.
        ask(gw, "hello")
        assert len(clouds["us"].received) == 1
    finally:
        gw.gateway.stop()
        gw.store.close()


def test_fail_over_on_overload_stays_among_allowed(routed, clouds):
    clouds["eu"].enqueue(Reply(status=529, chunks=[b'{"type":"error","error":{"type":"overloaded_error","message":"busy"}}']))
    answer = ask(routed, f"mail {EMAIL}")
    assert answer  # answered by the self-hosted endpoint, through translation
    assert clouds["us"].received == [] and len(clouds["eu"].received) == 1 and len(clouds["own"].received) == 1
    (record,) = routed.audit(1)
    assert record["endpoint"] == "own" and record["upstream_attempts"] == 2


def test_circuit_opens_after_repeated_failures(clouds, tmp_path):
    dead = f"http://127.0.0.1:{free_port()}"
    urls = {"us": dead, "eu": clouds["eu"].url, "own": clouds["own"].url}
    gw = start(tmp_path, urls)
    try:
        for _ in range(5):
            ask(gw, "hello")  # us-cloud is preferred but dead: fail over to eu-cloud
        records = gw.audit(5)
        attempts = [r["upstream_attempts"] for r in records]
        # Three failures open the circuit; after that the dead endpoint is skipped at once.
        assert attempts == [2, 2, 2, 1, 1]
        assert all(r["endpoint"] == "eu-cloud" for r in records)
        assert gw.gateway.app.pipeline.router.health.snapshot()["us-cloud"] == "open"
    finally:
        gw.gateway.stop()
        gw.store.close()


def test_proprietary_classification_routes_to_self_only(routed, clouds):
    answer = ask(routed, "here is our matching engine source", **{"x-egress-classification": "proprietary, public"})
    assert answer
    assert clouds["us"].received == [] and clouds["eu"].received == [] and len(clouds["own"].received) == 1
    (record,) = routed.audit(1)
    assert record["endpoint"] == "own" and record["decision"]["endpoints"] == ["own"]


def test_translated_answer_non_streaming(routed, clouds):
    text = ask(routed, "summarise", stream=False, **{"x-egress-classification": "proprietary"})
    assert text and len(clouds["own"].received) == 1


def test_shadow_mode_records_but_does_not_enforce(clouds, tmp_path):
    urls = {name: sim.url for name, sim in clouds.items()}
    gw = start(tmp_path, urls, policy={"shadow": True})
    try:
        ask(gw, f"write to {EMAIL}")
        assert len(clouds["us"].received) == 1 and clouds["eu"].received == []
        (record,) = gw.audit(1)
        decision = record["decision"]
        assert record["endpoint"] == "us-cloud"
        assert decision["shadow"]["action"] == "reroute"
        assert decision["shadow"]["endpoints"] == ["eu-cloud", "own"]
        assert decision["shadow"]["policy_revision"].startswith("rego:")
        assert any("shadow mode" in r for r in decision["reasons"])
    finally:
        gw.gateway.stop()
        gw.store.close()


def test_team_settings_without_editing_rego(clouds, tmp_path):
    urls = {name: sim.url for name, sim in clouds.items()}
    data = {"teams": {"payments": {"pii_jurisdictions": ["US", "FR"]}}}
    gw = start(tmp_path, urls, policy={"data": data})
    try:
        ask(gw, f"write to {EMAIL}")
        assert len(clouds["us"].received) == 1  # dana is in payments, which allows the US
    finally:
        gw.gateway.stop()
        gw.store.close()


def test_policy_file_reload_and_failed_reload_keeps_the_old(clouds, tmp_path):
    policy_dir = tmp_path / "policy"
    policy_dir.mkdir()
    rego = policy_dir / "mine.rego"
    rego.write_text(_ONLY("us-cloud"))
    urls = {name: sim.url for name, sim in clouds.items()}
    gw = start(tmp_path, urls, policy={"files": [str(policy_dir)]})
    try:
        ask(gw, "hello")
        first = gw.gateway.app.pipeline.decider.policy.revision
        rego.write_text(_ONLY("eu-cloud"))
        second = gw.gateway.app.pipeline.decider.policy.reload()
        assert second != first
        ask(gw, "hello")
        rego.write_text("package egress\ndecision := {")  # broken: the reload must fail
        with pytest.raises(Exception, match=r"mine\.rego:2"):
            gw.gateway.app.pipeline.decider.policy.reload()
        assert gw.gateway.app.pipeline.decider.policy.revision == second
        ask(gw, "hello")
        records = gw.audit(3)
        assert [r["endpoint"] for r in records] == ["us-cloud", "eu-cloud", "eu-cloud"]
        assert [r["decision"]["policy_revision"] for r in records] == [first, second, second]
    finally:
        gw.gateway.stop()
        gw.store.close()


def _ONLY(name: str) -> str:  # noqa: N802 - reads as a constant in the tests above
    return (
        "package egress\nimport rego.v1\n"
        f'decision := {{"action": "allow", "endpoints": [c.name | some c in input.candidates; c.name == "{name}"]}}\n'
    )


def test_bad_policy_at_start_is_a_config_failure(clouds, tmp_path):
    rego = tmp_path / "broken.rego"
    rego.write_text("package egress\nimport rego.v1\ndecision := {\n")
    urls = {name: sim.url for name, sim in clouds.items()}
    path = write_config(tmp_path, urls["us"], providers=providers(urls), policy={"files": [str(rego)]})
    with pytest.raises(Exception, match=r"broken\.rego:3"):
        ThreadedGateway.from_file(path)


def test_the_raw_document_never_holds_values(routed, clouds):
    """The policy input summarises findings: kinds, counts, rules, never the values."""
    seen: list[dict[str, Any]] = []
    service = routed.gateway.app.pipeline.decider.policy
    engine = service.engine

    class Spy:
        revision = engine.revision

        async def evaluate(self, document):
            seen.append(document)
            return await engine.evaluate(document)

        def close(self):
            pass


        async def aclose(self):

            pass

    service.engine = Spy()
    ask(routed, f"{AWS_KEY} {EMAIL}")
    (document,) = seen
    assert document["version"] == 2
    assert document["findings"]["kinds"] == {"secret": 1, "pii": 1}
    assert AWS_KEY not in yaml.safe_dump(document) and EMAIL not in yaml.safe_dump(document)
    assert [c["name"] for c in document["candidates"]] == ["us-cloud", "eu-cloud", "own"]
    assert [c["translated"] for c in document["candidates"]] == [False, False, True]
    assert document["subject"] == {"user": "dana", "team": "payments"}


def test_count_tokens_is_not_sent_to_a_chat_only_server(routed, clouds):
    r = httpx.post(
        routed.url + "/v1/messages/count_tokens",
        json={"model": "claude-sonnet-4-5", "messages": [{"role": "user", "content": f"hi {EMAIL}"}]},
        headers={"x-egress-key": routed.key, "anthropic-version": "2023-06-01"},
    )
    assert r.status_code == 200
    assert clouds["us"].received == [] and len(clouds["eu"].received) == 1 and clouds["own"].received == []


def test_a_slow_endpoint_times_out_on_its_own_deadline_and_fails_over(clouds, tmp_path):
    urls = {name: sim.url for name, sim in clouds.items()}
    endpoints = providers(urls)
    endpoints[1]["read_timeout_s"] = 0.5  # eu-cloud answers within half a second or not at all
    gw = start(tmp_path, urls, providers=endpoints)
    try:
        clouds["eu"].enqueue(Reply(hang_s=3.0))
        ask(gw, f"mail {EMAIL}")  # personal data: eu-cloud, else own
        assert clouds["us"].received == [] and len(clouds["own"].received) == 1
        (record,) = gw.audit(1)
        assert record["endpoint"] == "own" and record["upstream_attempts"] == 2
        assert record["latency_ms"]["total"] < 2500  # the endpoint's 0.5 s, not the global 30 s
    finally:
        gw.gateway.stop()
        gw.store.close()
