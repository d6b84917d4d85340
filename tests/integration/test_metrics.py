"""GET /metrics after real SDK traffic: the counts equal the audit's, to the record.

An EU endpoint (Anthropic Messages) and a US endpoint (OpenAI Responses), both on the upstream
simulator, with `organisation.home_jurisdictions: [EU]`: every call to the US endpoint is a
cross-border call, none to the EU one is. The official anthropic and openai SDKs send the
traffic (clean prompts, prompts with a credential that is masked, a model no endpoint serves, a
wrong gateway key); the scrape is parsed with prometheus_client's own parser and compared, family
by family, with what the audit holds.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from egress.cli.serve import _metrics_listener
from egress.telemetry.settings import MetricsSettings
from tests.conftest import Running, start_gateway
from tests.support.gateway import free_port, write_config
from tests.support.simulator import UpstreamSimulator

TOKEN = "metrics-scrape-token-7f3a"  # the scrape token, in the variable metrics.token_env names
AWS_KEY = "AKIAQYLPMN5HHHFPZAM2"  # shaped like a real key (masked before it leaves)


def endpoints(url: str) -> list[dict[str, Any]]:
    def endpoint(name: str, api: str, base: str, jurisdiction: str, models: list[str], env: str) -> dict[str, Any]:
        return {
            "name": name,
            "api": api,
            "base_url": base,
            "models": models,
            "credentials": {"env": env},
            "operator": f"Simulated {name}",
            "jurisdiction": jurisdiction,
            "region": jurisdiction.lower(),
            "retention_days": 30,
            "trains_on_api_data": False,
            "dpa": True,
        }

    return [
        endpoint("eu-cloud", "anthropic", url, "EU", ["claude-*"], "SIM_ANTHROPIC_KEY"),
        endpoint("us-cloud", "openai", url + "/v1", "US", ["gpt-*"], "SIM_OPENAI_KEY"),
    ]


def metrics_config(tmp: Path, url: str, **metrics: Any) -> Path:
    return write_config(
        tmp,
        url,
        providers=endpoints(url),
        organisation={"home_jurisdictions": ["EU"]},
        metrics={"enabled": True, "token_env": "EGRESS_TEST_METRICS_TOKEN", **metrics},
    )


@pytest.fixture(scope="module")
def gateway(sim: UpstreamSimulator, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("EGRESS_TEST_METRICS_TOKEN", TOKEN)
        running = start_gateway(metrics_config(tmp_path_factory.mktemp("metrics"), sim.url))
    yield running
    running.stop()


def send_traffic(url: str, key: str) -> int:
    """SDK traffic to both endpoints; returns how many requests were sent."""
    claude = anthropic.Anthropic(
        base_url=url, api_key="sk-ant-client", default_headers={"x-egress-key": key}, max_retries=0
    )
    gpt = openai.OpenAI(base_url=url + "/v1", api_key="sk-client", default_headers={"x-egress-key": key}, max_retries=0)
    sent = 0
    for text in ("hello", f"deploy with {AWS_KEY} please", "and again"):
        claude.messages.create(model="claude-sonnet-4-5", max_tokens=16, messages=[{"role": "user", "content": text}])
        sent += 1
    with claude.messages.stream(
        model="claude-sonnet-4-5", max_tokens=16, messages=[{"role": "user", "content": "stream it"}]
    ) as stream:
        stream.get_final_text()
    sent += 1
    for text in ("hi", f"the key is {AWS_KEY}"):
        gpt.responses.create(model="gpt-5", input=text)
        sent += 1
    with pytest.raises(anthropic.APIStatusError):  # no endpoint serves it: refused, nothing left
        claude.messages.create(model="mistral-large", max_tokens=16, messages=[{"role": "user", "content": "x"}])
    sent += 1
    wrong = anthropic.Anthropic(
        base_url=url, api_key="sk", default_headers={"x-egress-key": "egk_wrong"}, max_retries=0
    )
    with pytest.raises(anthropic.AuthenticationError):
        wrong.messages.create(model="claude-sonnet-4-5", max_tokens=16, messages=[{"role": "user", "content": "x"}])
    sent += 1
    return sent


def scrape(url: str, token: str | None = TOKEN) -> dict[str, Counter[tuple[tuple[str, str], ...]]]:
    """Each sample of the scrape, by sample name, keyed by its sorted labels."""
    headers = {"authorization": f"Bearer {token}"} if token else {}
    r = httpx.get(url, headers=headers, timeout=10)
    assert r.status_code == 200, r.text
    samples: dict[str, Counter[tuple[tuple[str, str], ...]]] = {}
    for family in text_string_to_metric_families(r.text):
        for s in family.samples:
            samples.setdefault(s.name, Counter())[tuple(sorted(s.labels.items()))] += s.value
    return samples


def request_records(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in records if r.get("type") is None]


JURISDICTIONS = {"eu-cloud": "EU", "us-cloud": "US"}


def destination(record: dict[str, Any]) -> str:
    if record.get("jurisdiction"):
        return record["jurisdiction"]
    candidates = (record.get("decision") or {}).get("candidates") or []
    return JURISDICTIONS.get(candidates[0], "none") if candidates else "none"


def expected(records: list[dict[str, Any]]) -> dict[str, Counter[tuple[tuple[str, str], ...]]]:
    """What the metrics must say, computed from the audit records alone."""
    want: dict[str, Counter[tuple[tuple[str, str], ...]]] = {
        "egress_requests_total": Counter(),
        "egress_attempts_total": Counter(),
        "egress_cross_border_calls_total": Counter(),
        "egress_masked_values_total": Counter(),
    }
    for r in records:
        action = (r.get("decision") or {}).get("action") or "none"
        where = destination(r)
        labels = {"api": r["api"], "endpoint": r.get("endpoint") or "none", "jurisdiction": where}
        want["egress_requests_total"][
            tuple(sorted({**labels, "decision": action, "outcome": r["outcome"]}.items()))
        ] += 1
        left = bool(r.get("upstream_attempts"))
        want["egress_attempts_total"][(("jurisdiction", where), ("left", "true" if left else "false"))] += 1
        if left and where not in ("EU", "self"):
            want["egress_cross_border_calls_total"][(("jurisdiction", where),)] += 1
        for value in (r.get("masked") or {}).get("values") or ():
            want["egress_masked_values_total"][(("kind", value["kind"]),)] += 1
    return want


def findings_by_kind(samples: dict[str, Counter[tuple[tuple[str, str], ...]]]) -> Counter[str]:
    by_kind: Counter[str] = Counter()
    for labels, value in samples.get("egress_findings_total", Counter()).items():
        by_kind[dict(labels)["kind"]] += int(value)
    return by_kind


def test_counts_equal_the_audit_including_cross_border_calls(gateway: Running) -> None:
    sent = send_traffic(gateway.url, gateway.key)
    records = request_records(gateway.audit(expect=sent))
    assert len(records) == sent
    samples = scrape(gateway.url + "/metrics")
    want = expected(records)
    for name, counts in want.items():
        got = {labels: value for labels, value in samples.get(name, Counter()).items() if value}
        assert got == dict(counts), name
    # The US endpoint is outside home_jurisdictions [EU]: each call there is cross-border.
    us_calls = sum(1 for r in records if r.get("jurisdiction") == "US" and r.get("upstream_attempts"))
    assert us_calls == 2
    assert samples["egress_cross_border_calls_total"] == Counter({(("jurisdiction", "US"),): 2})
    # Findings: by kind, the audit's counts; the tier splits them further.
    audit_kinds: Counter[str] = Counter()
    for r in records:
        audit_kinds.update((r.get("findings") or {}).get("kinds") or {})
    assert findings_by_kind(samples) == audit_kinds and audit_kinds["secret"] >= 2
    # One latency observation per request, gateway and total; upstream time only for those that left.
    total = sum(v for labels, v in samples["egress_request_duration_seconds_count"].items())
    assert total == sent
    assert sum(samples["egress_gateway_duration_seconds_count"].values()) == sent
    left = sum(1 for r in records if r.get("upstream_attempts"))
    assert sum(samples["egress_upstream_duration_seconds_count"].values()) == left
    assert sum(samples["egress_time_to_first_byte_seconds_count"].values()) == sent
    # The policy ran for every request that reached the decide stage (it has a decision).
    assert sum(samples["egress_policy_evaluation_seconds_count"].values()) == sum(
        1 for r in records if r.get("decision")
    )
    # No user label anywhere; sampled gauges present for each endpoint.
    assert all("user" not in dict(labels) for counts in samples.values() for labels in counts)
    assert set(samples["egress_breaker_state"]) == {(("endpoint", "eu-cloud"),), (("endpoint", "us-cloud"),)}
    assert "egress_audit_queue_depth" in samples and "egress_audit_checkpoint_age_seconds" in samples


@pytest.mark.parametrize("authorization", [None, "Bearer wrong-token", f"Basic {TOKEN}", TOKEN])
def test_scrape_without_the_token_is_refused(gateway: Running, authorization: str | None) -> None:
    headers = {"authorization": authorization} if authorization is not None else {}
    r = httpx.get(gateway.url + "/metrics", headers=headers, timeout=10)
    assert r.status_code == 401
    assert r.headers["www-authenticate"].startswith("Bearer")
    assert "egress_requests_total" not in r.text


def test_metrics_off_by_default_is_not_found(sim: UpstreamSimulator, tmp_path: Path) -> None:
    running = start_gateway(write_config(tmp_path, sim.url))
    try:
        assert httpx.get(running.url + "/metrics", timeout=10).status_code == 404
    finally:
        running.stop()


def test_one_process_serves_its_own_registry_on_the_separate_listener(gateway: Running) -> None:
    """`egress serve --workers 1` with metrics.listen: the listener `egress serve` starts beside
    the gateway reads the gateway's own registry (the same page, with its token)."""
    port = free_port()
    config = gateway.gateway.config
    config = config.model_copy(
        update={
            "metrics": MetricsSettings(enabled=True, token_env=config.metrics.token_env, listen=f"127.0.0.1:{port}")
        }
    )
    before = scrape(gateway.url + "/metrics")["egress_requests_total"].total()
    with _metrics_listener(config, gateway.gateway.app):
        send_traffic(gateway.url, gateway.key)
        records = request_records(gateway.audit(expect=int(before) + 8))
        samples = scrape(f"http://127.0.0.1:{port}/metrics")
        assert samples["egress_requests_total"].total() == len(records) == before + 8
        assert httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).status_code == 401
    with pytest.raises(httpx.TransportError):  # closed with the server
        httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2)
