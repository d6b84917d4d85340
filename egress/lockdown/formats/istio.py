"""Istio: the egress gateway pattern.

- A ServiceEntry per host the gateway may reach, exported only to the gateway's namespace and
  the egress gateway's: other namespaces do not see it.
- A Sidecar in the gateway's and each client namespace with `outboundTrafficPolicy: REGISTRY_ONLY`,
  so a host without a ServiceEntry is unreachable from them (set the same mode mesh-wide in
  meshConfig to cover every namespace).
- A Gateway on the egress gateway, a DestinationRule and a VirtualService per host: the gateway's
  pods reach each provider through the egress gateway, over Istio mutual TLS, the provider's own
  TLS passing through untouched.
- An AuthorizationPolicy on the egress gateway that admits only the gateway's service account:
  no other workload may use it to reach a provider host.
"""

from __future__ import annotations

from typing import Any

from egress.lockdown.hosts import LockdownPlan, ProviderHost
from egress.lockdown.render import Artifact, header, slug, yaml_documents

NOTE = (
    "REGISTRY_ONLY applies to workloads with a sidecar; set meshConfig.outboundTrafficPolicy.mode "
    "REGISTRY_ONLY as well so namespaces without the Sidecar resource below are covered. Hosts that "
    "are address literals or *.patterns are reached directly by the gateway's sidecar (an egress "
    "gateway routes on TLS SNI names only)."
)

_GATEWAY_NAME = "egress-lockdown"


def render(plan: LockdownPlan) -> list[Artifact]:
    settings = plan.settings
    gateway = settings.gateway
    istio = settings.istio
    egress_service = f"istio-egressgateway.{istio.namespace}.svc.cluster.local"
    documents: list[dict[str, Any]] = []
    routed = [h for h in plan.gateway_hosts if not h.is_literal and not h.is_pattern and h.port == 443]
    for host in plan.gateway_hosts:
        documents.append(_service_entry(host, gateway.namespace, istio.namespace))
    for namespace in (gateway.namespace, *settings.client_namespaces):
        documents.append(
            {
                "apiVersion": "networking.istio.io/v1",
                "kind": "Sidecar",
                "metadata": {"name": "egress-lockdown-registry-only", "namespace": namespace},
                "spec": {
                    "egress": [{"hosts": ["./*", f"{istio.namespace}/*", f"{gateway.namespace}/*"]}],
                    "outboundTrafficPolicy": {"mode": "REGISTRY_ONLY"},
                },
            }
        )
    if routed:
        documents.append(
            {
                "apiVersion": "networking.istio.io/v1",
                "kind": "Gateway",
                "metadata": {"name": _GATEWAY_NAME, "namespace": istio.namespace},
                "spec": {
                    "selector": dict(istio.egress_gateway_labels),
                    "servers": [
                        {
                            "port": {"number": 443, "name": "tls-providers", "protocol": "TLS"},
                            "hosts": [h.name for h in routed],
                            "tls": {"mode": "ISTIO_MUTUAL"},
                        }
                    ],
                },
            }
        )
        documents.append(
            {
                "apiVersion": "networking.istio.io/v1",
                "kind": "DestinationRule",
                "metadata": {"name": "egress-lockdown-egressgateway", "namespace": gateway.namespace},
                "spec": {
                    "host": egress_service,
                    "exportTo": ["."],
                    "subsets": [
                        {
                            "name": slug(h.name),
                            "trafficPolicy": {"tls": {"mode": "ISTIO_MUTUAL", "sni": h.name}},
                        }
                        for h in routed
                    ],
                },
            }
        )
        for host in routed:
            documents.append(
                {
                    "apiVersion": "networking.istio.io/v1",
                    "kind": "VirtualService",
                    "metadata": {"name": f"egress-lockdown-{slug(host.name)}", "namespace": gateway.namespace},
                    "spec": {
                        "hosts": [host.name],
                        "exportTo": [".", istio.namespace],
                        "gateways": ["mesh", f"{istio.namespace}/{_GATEWAY_NAME}"],
                        "tls": [
                            {
                                "match": [{"gateways": ["mesh"], "port": 443, "sniHosts": [host.name]}],
                                "route": [
                                    {
                                        "destination": {
                                            "host": egress_service,
                                            "subset": slug(host.name),
                                            "port": {"number": 443},
                                        }
                                    }
                                ],
                            }
                        ],
                        "tcp": [
                            {
                                "match": [{"gateways": [f"{istio.namespace}/{_GATEWAY_NAME}"], "port": 443}],
                                "route": [{"destination": {"host": host.name, "port": {"number": 443}}, "weight": 100}],
                            }
                        ],
                    },
                }
            )
    documents.append(
        {
            "apiVersion": "security.istio.io/v1",
            "kind": "AuthorizationPolicy",
            "metadata": {"name": "egress-lockdown-only-the-gateway", "namespace": istio.namespace},
            "spec": {
                "selector": {"matchLabels": dict(istio.egress_gateway_labels)},
                "action": "ALLOW",
                "rules": [
                    {
                        "from": [
                            {
                                "source": {
                                    "principals": [f"cluster.local/ns/{gateway.namespace}/sa/{gateway.service_account}"]
                                }
                            }
                        ]
                    }
                ],
            },
        }
    )
    return [Artifact("istio-egress.yaml", header(plan, "istio", notes=[NOTE]) + yaml_documents(documents))]


def _service_entry(host: ProviderHost, namespace: str, istio_namespace: str) -> dict[str, Any]:
    tls = host.port == 443
    spec: dict[str, Any] = {
        "hosts": [host.name if not host.is_literal else f"{slug(host.name)}.egress-lockdown.invalid"],
        "exportTo": [".", istio_namespace],
        "location": "MESH_EXTERNAL",
        "ports": [
            {
                "number": host.port,
                "name": f"{'tls' if tls else 'http'}-{host.port}",
                "protocol": "TLS" if tls else "HTTP",
            }
        ],
        "resolution": "NONE" if host.is_pattern or host.is_literal else "DNS",
    }
    if host.is_literal:
        spec["addresses"] = [host.name]
        spec["endpoints"] = [{"address": host.name}]
        spec["resolution"] = "STATIC"
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "ServiceEntry",
        "metadata": {"name": f"egress-lockdown-{slug(host.name)}", "namespace": namespace},
        "spec": spec,
    }
