"""The host set every format is written from: who may reach which provider host."""

from __future__ import annotations

import pytest

from egress.lockdown.hosts import LockdownError, build_plan, catalog_host
from egress.lockdown.settings import LockdownSettings
from tests.unit.lockdown.plans import catalog, config, plan


def by_name(p):
    return {h.name: h for h in p.hosts}


def test_configured_endpoints_are_the_gateways_and_nobody_elses():
    hosts = by_name(plan())
    assert {h.name for h in plan().gateway_hosts} == {"api.anthropic.com", "api.mistral.ai"}
    for name in ("api.anthropic.com", "api.mistral.ai"):
        assert hosts[name].gateway_may_reach and not hosts[name].clients_may_reach
    assert hosts["api.anthropic.com"].origins == ("catalog:anthropic", "endpoint:anthropic")


def test_every_catalog_host_is_blocked_configured_or_not():
    hosts = by_name(plan())
    openai = hosts["api.openai.com"]
    assert not openai.gateway_may_reach and not openai.clients_may_reach
    assert openai in plan().blocked_for_clients and openai in plan().denied_to_gateway


def test_a_template_becomes_a_pattern_or_is_named_as_not_covered():
    hosts = by_name(plan())
    assert hosts["*.openai.azure.com"].is_pattern
    assert plan().unexpressible == ("vertex-regional",)
    assert "127.0.0.1" not in hosts  # self-hosted entries have no fixed host


def test_tools_are_blocked_unless_allowed_and_never_when_an_endpoint_shares_the_host():
    hosts = by_name(plan())
    assert hosts["api.githubcopilot.com"].clients_may_reach  # allow_tools: [github-copilot]
    assert hosts["*.githubcopilot.com"].clients_may_reach
    assert not hosts["api2.cursor.sh"].clients_may_reach
    # zcode's host is also the mistral endpoint's: clients reach it through the gateway only.
    settings = config().lockdown.model_copy(update={"allow_tools": ("zcode",)})
    shared = by_name(build_plan(config().providers, catalog(), settings))["api.mistral.ai"]
    assert shared.gateway_may_reach and not shared.clients_may_reach


def test_unknown_tool_is_refused():
    with pytest.raises(LockdownError, match="cursr"):
        build_plan(config().providers, catalog(), LockdownSettings(allow_tools=("cursr",)))


def test_addresses_join_published_ranges_pins_and_literals():
    p = plan()
    hosts = by_name(p)
    assert [str(n) for n in p.addresses(hosts["api.anthropic.com"])] == ["160.79.104.0/23", "2607:6bc0::/48"]
    assert [str(n) for n in p.addresses(hosts["api.openai.com"])] == ["198.51.100.7/32", "2001:db8::7/128"]
    resolved = p.with_resolved({"api.openai.com": ("198.51.100.8", "198.51.100.7")})
    assert [str(n) for n in resolved.addresses(hosts["api.openai.com"])] == [
        "198.51.100.7/32",
        "198.51.100.8/32",
        "2001:db8::7/128",
    ]


def test_revision_follows_the_inputs_and_never_the_credentials():
    base = plan().revision
    assert base.startswith("sha256:") and base == plan().revision
    cfg = config()
    other = cfg.lockdown.model_copy(update={"allow_tools": ()})
    assert build_plan(cfg.providers, catalog(), other).revision != base
    rekeyed = [
        e.model_copy(update={"credentials": e.credentials.model_copy(update={"env": "ANOTHER"})}) for e in cfg.providers
    ]
    assert build_plan(rekeyed, catalog(), cfg.lockdown).revision == base


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://api.example.com/v1", ("api.example.com", 443)),
        ("http://api.example.com:8080/v1", ("api.example.com", 8080)),
        ("https://{resource}.openai.azure.com/openai/v1", ("*.openai.azure.com", 443)),
        ("https://{a}.{b}.example.com", ("*.example.com", 443)),
        ("https://{region}-aiplatform.example.com/v1", None),
        ("https://bedrock.{region}.example.com", None),
        ("https://{name}.com", None),
    ],
)
def test_catalog_host(url, expected):
    entry = catalog().entries[0].model_copy(update={"base_url": url})
    assert catalog_host(entry) == expected
