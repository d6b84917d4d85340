"""Plain Kubernetes NetworkPolicies.

- Each developer and CI namespace (`lockdown.client_namespaces`) may reach the gateway's pods on
  its port and the cluster DNS, nothing else: no provider host.
- The gateway's pods may reach the cluster DNS, the store's ports inside the cluster, and the
  configured endpoints' published address ranges (and pinned addresses), nothing else.
- The gateway accepts connections only from namespaces carrying the client label(s).

A NetworkPolicy matches addresses, never DNS names: an endpoint whose vendor publishes no ranges
cannot be allowed by name here, which is why the header says which ones, and why this format is
best paired with the Cilium or Istio one.
"""

from __future__ import annotations

from typing import Any

from egress.lockdown.hosts import LockdownPlan
from egress.lockdown.render import Artifact, header, yaml_documents

NOTE = (
    "A NetworkPolicy matches IP addresses, never DNS names. This file allows the gateway only the "
    "address ranges vendors publish for the configured endpoints (and addresses pinned in "
    "lockdown.addresses); an endpoint with neither is listed below as not expressible, and the gateway "
    "cannot reach it under this policy alone. Pair it with the cilium (toFQDNs) or istio (egress "
    "gateway) format, which match names. Client namespaces get a default-deny egress policy: allow "
    "package mirrors and the like with further policies naming their addresses, never 0.0.0.0/0, "
    "which would reopen every provider."
)

_LABEL = "egress.dev/lockdown"


def render(plan: LockdownPlan) -> list[Artifact]:
    settings = plan.settings
    gateway = settings.gateway
    unexpressed = [h.name for h in plan.gateway_hosts if not plan.addresses(h) and not h.is_loopback]
    notes = [NOTE]
    if unexpressed:
        notes.append("Configured endpoint hosts with no published or pinned addresses: " + ", ".join(unexpressed))
    dns = _dns_peer()
    documents: list[dict[str, Any]] = []
    for namespace in settings.client_namespaces:
        documents.append(
            _policy(
                "egress-lockdown-clients",
                namespace,
                {},
                egress=[
                    {
                        "to": [
                            {
                                "namespaceSelector": {
                                    "matchLabels": {"kubernetes.io/metadata.name": gateway.namespace}
                                },
                                "podSelector": {"matchLabels": dict(gateway.pod_labels)},
                            }
                        ],
                        "ports": [{"protocol": "TCP", "port": gateway.port}],
                    },
                    dns,
                ],
            )
        )
    gateway_egress: list[dict[str, Any]] = [dns]
    if gateway.store_ports:
        gateway_egress.append(
            {
                "to": [{"namespaceSelector": {}}],
                "ports": [{"protocol": "TCP", "port": p} for p in gateway.store_ports],
            }
        )
    by_port: dict[int, set[str]] = {}
    for host in plan.gateway_hosts:
        for network in plan.addresses(host):
            by_port.setdefault(host.port, set()).add(str(network))
    for port, networks in sorted(by_port.items()):
        gateway_egress.append(
            {
                "to": [{"ipBlock": {"cidr": n}} for n in sorted(networks, key=_sort_key)],
                "ports": [{"protocol": "TCP", "port": port}],
            }
        )
    documents.append(
        _policy("egress-lockdown-gateway-egress", gateway.namespace, dict(gateway.pod_labels), egress=gateway_egress)
    )
    documents.append(
        _policy(
            "egress-lockdown-gateway-ingress",
            gateway.namespace,
            dict(gateway.pod_labels),
            ingress=[
                {
                    "from": [{"namespaceSelector": {"matchLabels": dict(settings.client_namespace_labels)}}],
                    "ports": [{"protocol": "TCP", "port": gateway.port}],
                }
            ],
        )
    )
    text = header(plan, "kubernetes", notes=notes) + yaml_documents(documents)
    return [Artifact("networkpolicies.yaml", text)]


def _policy(
    name: str,
    namespace: str,
    pod_labels: dict[str, str],
    *,
    egress: list[dict[str, Any]] | None = None,
    ingress: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    spec: dict[str, Any] = {"podSelector": {"matchLabels": pod_labels} if pod_labels else {}}
    types = []
    if ingress is not None:
        types.append("Ingress")
        spec["ingress"] = ingress
    if egress is not None:
        types.append("Egress")
        spec["egress"] = egress
    spec["policyTypes"] = types
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": namespace, "labels": {_LABEL: "true"}},
        "spec": spec,
    }


def _dns_peer() -> dict[str, Any]:
    return {
        "to": [
            {
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
                "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
            }
        ],
        "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
    }


def _sort_key(cidr: str) -> tuple[int, str]:
    return (6 if ":" in cidr else 4, cidr)
