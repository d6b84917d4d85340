"""The `lockdown:` section of the configuration (egress.config types its field as this): where the
gateway runs, which namespaces hold developers and CI jobs, which coding tools the organisation
allows to reach their own clouds, and addresses to use beside DNS in address-based rules.

Defaults are defined here only."""

from __future__ import annotations

import ipaddress

from pydantic import BaseModel, ConfigDict, Field, field_validator


class GatewaySite(BaseModel):
    """Where the gateway runs, as the generated policies name it."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    namespace: str = Field(default="egress", description="the gateway's Kubernetes namespace")
    service: str = Field(default="egress", description="the gateway's Kubernetes Service")
    port: int = Field(default=8080, ge=1, le=65535, description="the port clients reach the gateway on")
    pod_labels: dict[str, str] = Field(
        default_factory=lambda: {"app.kubernetes.io/name": "egress"}, description="labels of the gateway's pods"
    )
    addresses: tuple[str, ...] = Field(
        default=(), description="addresses or networks developer machines reach the gateway at (nftables exception)"
    )
    url: str | None = Field(
        default=None, description="the gateway's URL for `egress lockdown check` (default server.public_url)"
    )
    service_account: str = Field(default="egress", description="the gateway pods' Kubernetes service account")
    local_uid: int | None = Field(
        default=None,
        ge=0,
        description="nftables: the user a gateway on the same machine runs as (its own traffic to providers is let through)",
    )
    store_ports: tuple[int, ...] = Field(
        default=(5432, 6379), description="in-cluster ports the gateway's pods may reach (PostgreSQL, Redis)"
    )

    @field_validator("addresses")
    @classmethod
    def _networks(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for item in value:
            ipaddress.ip_network(item, strict=False)
        return value


class IstioSite(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    namespace: str = Field(default="istio-system", description="where the egress gateway runs")
    egress_gateway_labels: dict[str, str] = Field(default_factory=lambda: {"istio": "egressgateway"})
    egress_service_account: str = Field(default="istio-egressgateway-service-account")


class LockdownSettings(BaseModel):
    """What `egress lockdown export`, `refresh` and `check` read beside the providers and the catalog."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    gateway: GatewaySite = GatewaySite()
    istio: IstioSite = IstioSite()
    client_namespace_labels: dict[str, str] = Field(
        default_factory=lambda: {"egress.dev/ai-agents": "through-gateway"},
        description="label(s) of the developer and CI namespaces whose egress is locked down",
    )
    client_namespaces: tuple[str, ...] = Field(
        default=("developers", "ci"),
        description="developer and CI namespaces (a NetworkPolicy is namespaced: one copy each)",
    )
    allow_tools: tuple[str, ...] = Field(
        default=(),
        description="ids of catalog tool_hosts (cursor, github-copilot, zcode) allowed to reach their own cloud",
    )
    addresses: dict[str, tuple[str, ...]] = Field(
        default_factory=dict,
        description="host -> addresses listed beside what DNS answers (pinned, split-horizon or private endpoints)",
    )
    resolve_timeout_s: float = Field(default=2.0, gt=0, le=30, description="per host, when resolving names")
    check_timeout_s: float = Field(default=3.0, gt=0, le=30, description="per host, DNS + TCP + TLS, in lockdown check")

    @field_validator("addresses")
    @classmethod
    def _addresses(cls, value: dict[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
        for items in value.values():
            for item in items:
                ipaddress.ip_network(item, strict=False)
        return value
