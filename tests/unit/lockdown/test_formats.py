"""Every format: same input, same bytes (golden files), a header naming the revision and the
catalog date, and output the target's own schema accepts (Kubernetes via kubernetes-validate at a
pinned Kubernetes version; Cilium and Istio via their vendored CRD schemas; HCL via python-hcl2).

Regenerate the golden files after an intended change with EGRESS_UPDATE_GOLDEN=1."""

from __future__ import annotations

import copy
import ipaddress
import json
import os
from pathlib import Path
from typing import Any

import hcl2
import jsonschema
import kubernetes_validate
import pytest
import yaml

from egress.lockdown.export import FORMATS, export
from egress.lockdown.render import Artifact
from tests.unit.lockdown.plans import GOLDEN, RESOLVED, plan

KUBERNETES_VERSION = "1.34.0"  # the schemas kubernetes-validate checks the NetworkPolicies against
CRDS = Path(__file__).resolve().parents[2] / "fixtures" / "crd-schemas"
CRD_FILES = {
    ("cilium.io/v2", "CiliumNetworkPolicy"): "cilium.io/ciliumnetworkpolicy_v2.json",
    ("cilium.io/v2", "CiliumClusterwideNetworkPolicy"): "cilium.io/ciliumclusterwidenetworkpolicy_v2.json",
    ("networking.istio.io/v1", "ServiceEntry"): "networking.istio.io/serviceentry_v1.json",
    ("networking.istio.io/v1", "Sidecar"): "networking.istio.io/sidecar_v1.json",
    ("networking.istio.io/v1", "Gateway"): "networking.istio.io/gateway_v1.json",
    ("networking.istio.io/v1", "DestinationRule"): "networking.istio.io/destinationrule_v1.json",
    ("networking.istio.io/v1", "VirtualService"): "networking.istio.io/virtualservice_v1.json",
    ("security.istio.io/v1", "AuthorizationPolicy"): "security.istio.io/authorizationpolicy_v1.json",
}


def artifacts(fmt: str) -> list[Artifact]:
    p = plan()
    return export(p.with_resolved(RESOLVED) if fmt == "nftables" else p, fmt)


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_golden_and_deterministic(fmt):
    first, second = artifacts(fmt), artifacts(fmt)
    assert first == second
    for artifact in first:
        golden = GOLDEN / fmt / artifact.path
        if os.environ.get("EGRESS_UPDATE_GOLDEN"):
            golden.parent.mkdir(parents=True, exist_ok=True)
            golden.write_text(artifact.text)
        assert golden.is_file(), f"no golden file {golden}: run with EGRESS_UPDATE_GOLDEN=1 after checking the output"
        assert artifact.text == golden.read_text(), f"{golden} differs (EGRESS_UPDATE_GOLDEN=1 after checking)"


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_header_names_revision_and_catalog_date(fmt):
    p = plan()
    for artifact in artifacts(fmt):
        head = artifact.text.split("\n\n", 1)[0]
        assert f"configuration revision: {p.revision}" in head and "provider catalog: 2026-01-15" in head


def test_kubernetes_network_policies_validate_and_say_what_they_allow():
    docs = [d for d in yaml.safe_load_all(artifacts("kubernetes")[0].text) if d]
    for doc in docs:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
    by_name = {(d["metadata"]["namespace"], d["metadata"]["name"]): d for d in docs}
    assert set(by_name) == {
        ("developers", "egress-lockdown-clients"),
        ("ci", "egress-lockdown-clients"),
        ("egress", "egress-lockdown-gateway-egress"),
        ("egress", "egress-lockdown-gateway-ingress"),
    }
    clients = by_name[("ci", "egress-lockdown-clients")]["spec"]
    assert clients["podSelector"] == {} and clients["policyTypes"] == ["Egress"]
    assert not any("ipBlock" in peer for rule in clients["egress"] for peer in rule["to"])  # no address at all
    gateway = by_name[("egress", "egress-lockdown-gateway-egress")]["spec"]
    blocks = [peer["ipBlock"]["cidr"] for rule in gateway["egress"] for peer in rule["to"] if "ipBlock" in peer]
    # Anthropic's published ranges and mistral's pinned address; never openai's (not configured).
    assert blocks == ["160.79.104.0/23", "192.0.2.40/32", "2607:6bc0::/48"]
    ingress = by_name[("egress", "egress-lockdown-gateway-ingress")]["spec"]["ingress"][0]
    assert ingress["from"] == [{"namespaceSelector": {"matchLabels": {"egress.dev/ai-agents": "through-gateway"}}}]


def test_kubernetes_validate_catches_a_broken_policy():
    doc = next(d for d in yaml.safe_load_all(artifacts("kubernetes")[0].text) if d)
    broken = copy.deepcopy(doc)
    broken["spec"]["egress"][0]["ports"][0]["protocol"] = 53
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


def strict(schema: Any) -> Any:
    """The schema with unknown keys refused wherever it lists the known ones (as kubeconform's
    strict mode does): a misspelt field fails instead of being ignored."""
    if isinstance(schema, dict):
        out = {k: strict(v) for k, v in schema.items()}
        if out.get("type") == "object" and "properties" in out and "additionalProperties" not in out:
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [strict(v) for v in schema]
    return schema


def validate_crd(doc: dict) -> None:
    path = CRD_FILES[(doc["apiVersion"], doc["kind"])]
    schema = json.loads((CRDS / path).read_text())
    # The spec strictly; apiVersion, kind and metadata are the API server's to check, not the CRD's.
    schema["properties"]["spec"] = strict(schema["properties"]["spec"])
    # Not jsonschema.validate: it checks the schema first, and Cilium's uses a Go regex class
    # (\\PC) that Python's re lacks in a field these policies never set.
    jsonschema.validators.validator_for(schema)(schema).validate(doc)


@pytest.mark.parametrize("fmt", ["cilium", "istio"])
def test_custom_resources_validate_against_their_published_schemas(fmt):
    docs = [d for d in yaml.safe_load_all(artifacts(fmt)[0].text) if d]
    assert docs
    for doc in docs:
        validate_crd(doc)


def test_crd_schema_catches_a_misspelt_field():
    doc = next(d for d in yaml.safe_load_all(artifacts("cilium")[0].text) if d)
    broken = copy.deepcopy(doc)
    broken["spec"]["egress"][1]["toFQDN"] = broken["spec"]["egress"][1].pop("toFQDNs")
    with pytest.raises(jsonschema.ValidationError):
        validate_crd(broken)


def test_cilium_allows_the_gateway_by_name_and_denies_other_providers_by_range():
    docs = {d["kind"]: d for d in yaml.safe_load_all(artifacts("cilium")[0].text) if d}
    gateway = docs["CiliumNetworkPolicy"]["spec"]
    names = [f for rule in gateway["egress"] for f in rule.get("toFQDNs", [])]
    assert names == [{"matchName": "api.anthropic.com"}, {"matchName": "api.mistral.ai"}]
    denied = [c["cidr"] for rule in gateway["egressDeny"] for c in rule["toCIDRSet"]]
    assert denied == ["198.51.100.7/32", "2001:db8::7/128"]  # openai's pins; not the gateway's own
    clients = docs["CiliumClusterwideNetworkPolicy"]["spec"]
    allowed_tools = [f for rule in clients["egress"] for f in rule.get("toFQDNs", [])]
    assert allowed_tools == [{"matchPattern": "*.githubcopilot.com"}, {"matchName": "api.githubcopilot.com"}]
    blocked = {c["cidr"] for rule in clients["egressDeny"] for c in rule["toCIDRSet"]}
    assert {"160.79.104.0/23", "192.0.2.40/32", "198.51.100.7/32"} <= blocked


def test_istio_routes_each_allowed_host_through_the_egress_gateway_only():
    docs = [d for d in yaml.safe_load_all(artifacts("istio")[0].text) if d]
    kinds = [d["kind"] for d in docs]
    entries = [d["spec"]["hosts"] for d in docs if d["kind"] == "ServiceEntry"]
    assert entries == [["api.anthropic.com"], ["api.mistral.ai"]]
    assert kinds.count("VirtualService") == 2 and kinds.count("Sidecar") == 3
    assert all(d["spec"]["outboundTrafficPolicy"]["mode"] == "REGISTRY_ONLY" for d in docs if d["kind"] == "Sidecar")
    policy = next(d for d in docs if d["kind"] == "AuthorizationPolicy")["spec"]
    assert policy["rules"][0]["from"][0]["source"]["principals"] == ["cluster.local/ns/egress/sa/egress"]


def unquote(value: Any) -> Any:
    """python-hcl2 8 keeps string literals' quotes."""
    if isinstance(value, list):
        return [unquote(v) for v in value]
    return value.strip('"') if isinstance(value, str) else value


def test_terraform_parses_as_hcl_and_lists_the_right_domains():
    files = {a.path: hcl2.loads(a.text) for a in artifacts("terraform")}
    assert set(files) == {"aws/main.tf", "gcp/main.tf"}
    aws = files["aws/main.tf"]
    local = {k: unquote(v) for block in aws["locals"] for k, v in block.items() if not k.startswith("__")}
    assert local["gateway_domains"] == ["api.anthropic.com", "api.mistral.ai"]
    assert "api.openai.com" in local["provider_domains"] and ".openai.azure.com" in local["provider_domains"]
    assert "api.githubcopilot.com" not in local["provider_domains"]  # an allowed tool
    rules = {
        unquote(name): body
        for block in files["gcp/main.tf"]["resource"]
        for kind, named in block.items()
        if unquote(kind) == "google_compute_network_firewall_policy_rule"
        for name, body in named.items()
    }
    assert set(rules) == {"gateway_to_endpoints", "deny_provider_names", "deny_provider_ranges"}


def test_nftables_lists_every_blocked_address_and_never_an_allowed_tools():
    text = artifacts("nftables")[0].text
    elements = text.split("table inet", 1)[1]
    for address in ("160.79.104.0/23", "192.0.2.40", "198.51.100.7", "203.0.113.5", "203.0.113.6", "2001:db8::7"):
        assert f"\t{address} comment" in elements, address
    # An address DNS gave inside a published range is folded into it (interval sets refuse overlaps).
    assert ipaddress.ip_address("160.79.104.10") in ipaddress.ip_network("160.79.104.0/23")
    assert "160.79.104.10" not in elements
    assert "10.20.0.10" in text.split("set gateway_v4", 1)[1].split("}", 1)[0]
    assert "githubcopilot" not in text.split("table inet", 1)[1]
