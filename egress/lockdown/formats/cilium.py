"""Cilium policies, which match DNS names (`toFQDNs`, learnt through Cilium's DNS proxy).

- The gateway's pods (CiliumNetworkPolicy in its namespace) may reach the configured endpoints'
  hosts by name, the cluster DNS and the store's ports; an egressDeny rule drops every other
  provider's published ranges even if another policy allowed them.
- Every pod in a namespace carrying the client label(s) (CiliumClusterwideNetworkPolicy) may reach
  the gateway and the cluster DNS, and the hosts of the tools the configuration allows; an
  egressDeny rule drops every provider address range known.

Cilium's deny rules take CIDRs, not names (egressDeny has no toFQDNs): a provider name is denied
by not being in any allow rule (a selected endpoint's egress is default-deny), and its address
ranges, where known, by the deny rule, which no other policy can override.
"""

from __future__ import annotations

from typing import Any

from egress.lockdown.hosts import LockdownPlan, ProviderHost
from egress.lockdown.render import Artifact, header, yaml_documents

NOTE = (
    "Names are matched by toFQDNs; Cilium's egressDeny takes address ranges only, so other "
    "providers are denied by name through default-deny (no allow rule names them) and by address "
    "through egressDeny wherever a range is published or pinned. Cilium must run with its DNS proxy "
    "(the dns rules below send lookups through it)."
)


def render(plan: LockdownPlan) -> list[Artifact]:
    settings = plan.settings
    gateway = settings.gateway
    dns = _dns_rule()
    gateway_egress: list[dict[str, Any]] = [dns]
    by_port: dict[int, list[ProviderHost]] = {}
    for host in plan.gateway_hosts:
        by_port.setdefault(host.port, []).append(host)
    for port, hosts in sorted(by_port.items()):
        named = [h for h in hosts if not h.is_literal]
        literal = [h for h in hosts if h.is_literal]
        ports = [{"ports": [{"port": str(port), "protocol": "TCP"}]}]
        if named:
            gateway_egress.append({"toFQDNs": [_fqdn(h) for h in named], "toPorts": ports})
        if literal:
            gateway_egress.append(
                {"toCIDR": [f"{h.name}/{128 if ':' in h.name else 32}" for h in literal], "toPorts": ports}
            )
    if gateway.store_ports:
        gateway_egress.append(
            {
                "toEntities": ["cluster"],
                "toPorts": [{"ports": [{"port": str(p), "protocol": "TCP"} for p in gateway.store_ports]}],
            }
        )
    documents: list[dict[str, Any]] = []
    gateway_spec: dict[str, Any] = {
        "description": "egress lockdown: the gateway reaches the configured endpoints only",
        "endpointSelector": {"matchLabels": dict(gateway.pod_labels)},
        "egress": gateway_egress,
    }
    denied = _cidrs(plan, plan.denied_to_gateway)
    if denied:
        gateway_spec["egressDeny"] = [{"toCIDRSet": [{"cidr": c} for c in denied]}]
    documents.append(
        {
            "apiVersion": "cilium.io/v2",
            "kind": "CiliumNetworkPolicy",
            "metadata": {"name": "egress-lockdown-gateway", "namespace": gateway.namespace},
            "spec": gateway_spec,
        }
    )
    client_selector = {
        f"io.cilium.k8s.namespace.labels.{k}": v for k, v in sorted(settings.client_namespace_labels.items())
    }
    gateway_peer = {
        "matchLabels": {
            "io.kubernetes.pod.namespace": gateway.namespace,
            **{k: v for k, v in sorted(gateway.pod_labels.items())},
        }
    }
    client_egress: list[dict[str, Any]] = [
        dns,
        {"toEndpoints": [gateway_peer], "toPorts": [{"ports": [{"port": str(gateway.port), "protocol": "TCP"}]}]},
    ]
    tools = [h for h in plan.tool_hosts_allowed if not h.is_literal]
    if tools:
        client_egress.append(
            {"toFQDNs": [_fqdn(h) for h in tools], "toPorts": [{"ports": [{"port": "443", "protocol": "TCP"}]}]}
        )
    client_spec: dict[str, Any] = {
        "description": "egress lockdown: developer and CI pods reach model providers through the gateway only",
        "endpointSelector": {"matchLabels": client_selector},
        "egress": client_egress,
    }
    blocked = _cidrs(plan, plan.blocked_for_clients)
    if blocked:
        client_spec["egressDeny"] = [{"toCIDRSet": [{"cidr": c} for c in blocked]}]
    documents.append(
        {
            "apiVersion": "cilium.io/v2",
            "kind": "CiliumClusterwideNetworkPolicy",
            "metadata": {"name": "egress-lockdown-clients"},
            "spec": client_spec,
        }
    )
    return [Artifact("cilium-policies.yaml", header(plan, "cilium", notes=[NOTE]) + yaml_documents(documents))]


def _fqdn(host: ProviderHost) -> dict[str, str]:
    return {"matchPattern": host.name} if host.is_pattern else {"matchName": host.name}


def _dns_rule() -> dict[str, Any]:
    return {
        "toEndpoints": [{"matchLabels": {"io.kubernetes.pod.namespace": "kube-system", "k8s-app": "kube-dns"}}],
        "toPorts": [
            {
                "ports": [{"port": "53", "protocol": "ANY"}],
                "rules": {"dns": [{"matchPattern": "*"}]},
            }
        ],
    }


def _cidrs(plan: LockdownPlan, hosts: tuple[ProviderHost, ...]) -> list[str]:
    networks = {n for h in hosts if not h.is_loopback for n in plan.addresses(h)}
    return [str(n) for n in sorted(networks, key=lambda n: (n.version, int(n.network_address), n.prefixlen))]
