"""The host set every lock-down format is written from: each provider host the catalog knows
(configured or not), each configured endpoint's host, and each coding tool's backend, with who
may reach it.

Invariants:
- Every host a configured endpoint sends to is `gateway_may_reach`; no other provider host is.
- No provider host is reachable by clients (developer machines, CI) unless it belongs to a tool
  the configuration allows (`lockdown.allow_tools`) — and never a configured endpoint's host:
  a client reaches those through the gateway only.
- The plan is a pure function of the endpoints, the catalog and the settings; its revision is a
  digest of exactly those inputs, so the same inputs give the same bytes in every format.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from egress.core.endpoint import Endpoint
from egress.lockdown.settings import LockdownSettings
from egress.route.provider_catalog import PLACEHOLDER, CatalogEntry, ProviderCatalog

Address = ipaddress.IPv4Network | ipaddress.IPv6Network


class LockdownError(Exception):
    """The configuration asks for something the lock-down cannot express (an unknown tool id)."""


@dataclass(frozen=True, slots=True)
class ProviderHost:
    """One host (a DNS name, a `*.domain` pattern, or an address literal) and who may reach it."""

    name: str
    port: int
    origins: tuple[str, ...]  # "endpoint:<name>", "catalog:<id>", "tool:<id>"
    gateway_may_reach: bool
    clients_may_reach: bool
    networks: tuple[str, ...] = ()  # published ranges and pinned addresses (CIDR), sorted
    tls: bool = True  # the host is spoken to over TLS (https); a plain-http endpoint is not

    @property
    def is_pattern(self) -> bool:
        return self.name.startswith("*.")

    @property
    def is_literal(self) -> bool:
        try:
            ipaddress.ip_address(self.name)
        except ValueError:
            return False
        return True

    @property
    def is_loopback(self) -> bool:
        return self.name == "localhost" or (self.is_literal and ipaddress.ip_address(self.name).is_loopback)


@dataclass(frozen=True, slots=True)
class LockdownPlan:
    """The host set with what every format's header names."""

    hosts: tuple[ProviderHost, ...]
    revision: str  # "sha256:<16 hex>" of the inputs
    catalog_date: str
    settings: LockdownSettings
    unexpressible: tuple[str, ...] = ()  # catalog ids whose URL template cannot become a host pattern
    resolved: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # name -> addresses DNS gave

    @property
    def gateway_hosts(self) -> tuple[ProviderHost, ...]:
        return tuple(h for h in self.hosts if h.gateway_may_reach)

    @property
    def blocked_for_clients(self) -> tuple[ProviderHost, ...]:
        return tuple(h for h in self.hosts if not h.clients_may_reach)

    @property
    def denied_to_gateway(self) -> tuple[ProviderHost, ...]:
        return tuple(h for h in self.hosts if not h.gateway_may_reach and not h.clients_may_reach)

    @property
    def tool_hosts_allowed(self) -> tuple[ProviderHost, ...]:
        return tuple(h for h in self.hosts if h.clients_may_reach)

    def addresses(self, host: ProviderHost) -> tuple[Address, ...]:
        """Every network an address-based rule lists for `host`: its literal, published ranges,
        pinned addresses and, when the plan was resolved, what DNS answered."""
        items = [*host.networks, *self.resolved.get(host.name, ())]
        if host.is_literal:
            items.append(host.name)
        return tuple(sorted({ipaddress.ip_network(i, strict=False) for i in items}, key=_network_key))

    def with_resolved(self, resolved: Mapping[str, tuple[str, ...]]) -> LockdownPlan:
        ordered = {name: tuple(sorted(set(v), key=_address_key)) for name, v in sorted(resolved.items()) if v}
        return LockdownPlan(self.hosts, self.revision, self.catalog_date, self.settings, self.unexpressible, ordered)


def build_plan(endpoints: Iterable[Endpoint], catalog: ProviderCatalog, settings: LockdownSettings) -> LockdownPlan:
    """The host set from the configured endpoints, every catalog entry and tool, and the settings."""
    endpoints = tuple(endpoints)
    tools = {t.id: t for t in catalog.tool_hosts}
    if unknown := sorted(set(settings.allow_tools) - set(tools)):
        raise LockdownError(f"lockdown.allow_tools names unknown tools {unknown}; the catalog knows {sorted(tools)}")
    ranges: dict[str, set[str]] = {}
    for published in catalog.published_ranges:
        ranges.setdefault(published.host, set()).update(published.cidrs)
    for name, pinned in settings.addresses.items():
        ranges.setdefault(name.lower(), set()).update(pinned)

    found: dict[tuple[str, int], _Draft] = {}

    def add(
        name: str, port: int, origin: str, *, gateway: bool = False, clients: bool = False, tls: bool = True
    ) -> None:
        draft = found.setdefault((name, port), _Draft())
        draft.tls = draft.tls and tls
        draft.origins.add(origin)
        draft.gateway |= gateway
        draft.clients |= clients

    for endpoint in endpoints:
        parts = urlsplit(endpoint.base_url)
        if parts.hostname:
            add(
                parts.hostname.lower(),
                parts.port or _default_port(parts.scheme),
                f"endpoint:{endpoint.name}",
                gateway=True,
                tls=parts.scheme == "https",
            )
    unexpressible = []
    for entry in catalog.entries:
        if entry.jurisdiction == "self":
            continue  # self-hosted servers have no fixed host; a configured one is an endpoint above
        host = catalog_host(entry)
        if host is None:
            unexpressible.append(entry.id)
            continue
        add(host[0], host[1], f"catalog:{entry.id}", tls=entry.base_url.startswith("https://"))
    allowed_tools = set(settings.allow_tools)
    for tool in catalog.tool_hosts:
        for name in tool.hosts:
            add(name, 443, f"tool:{tool.id}", clients=tool.id in allowed_tools)

    hosts = []
    for (name, port), draft in sorted(found.items()):
        # A configured endpoint's host is reached through the gateway only, even if a tool shares it.
        clients = draft.clients and not draft.gateway
        hosts.append(
            ProviderHost(
                name=name,
                port=port,
                origins=tuple(sorted(draft.origins)),
                gateway_may_reach=draft.gateway,
                clients_may_reach=clients,
                networks=tuple(
                    sorted(ranges.get(name, ()), key=lambda n: _network_key(ipaddress.ip_network(n, strict=False)))
                ),
                tls=draft.tls,
            )
        )
    return LockdownPlan(
        hosts=tuple(hosts),
        revision=revision(endpoints, catalog, settings),
        catalog_date=catalog.version,
        settings=settings,
        unexpressible=tuple(sorted(unexpressible)),
    )


def catalog_host(entry: CatalogEntry) -> tuple[str, int] | None:
    """The host and port an entry's base_url names; placeholders that are whole leftmost labels
    become `*.` (every resource name under the domain). None when a placeholder sits further right
    or fills part of a label (the header names such entries as not covered)."""
    parts = urlsplit(PLACEHOLDER.sub("PLACEHOLDER", entry.base_url))
    if not parts.hostname:
        return None
    port = parts.port or _default_port(parts.scheme)
    labels = parts.hostname.split(".")
    templated = [i for i, label in enumerate(labels) if "placeholder" in label]
    if not templated:
        return parts.hostname, port
    whole = all(labels[i] == "placeholder" for i in templated)
    # Only whole leftmost labels: `{region}-aiplatform.x.com` as `*.x.com` would block all of x.com.
    if not whole or templated != list(range(len(templated))) or len(labels) - len(templated) < 2:
        return None
    return "*." + ".".join(labels[len(templated) :]), port


def revision(endpoints: Iterable[Endpoint], catalog: ProviderCatalog, settings: LockdownSettings) -> str:
    """A digest of what the lock-down is made from: each endpoint's name, API and URL, the
    catalog's entries, tools and ranges, and the lockdown settings (credentials are never part)."""
    document = {
        "endpoints": [{"name": e.name, "api": str(e.api), "base_url": e.base_url} for e in endpoints],
        "catalog": {
            "version": catalog.version,
            "entries": [[e.id, e.base_url, e.jurisdiction] for e in catalog.entries],
            "tool_hosts": [t.model_dump(mode="json") for t in catalog.tool_hosts],
            "published_ranges": [r.model_dump(mode="json") for r in catalog.published_ranges],
        },
        "lockdown": settings.model_dump(mode="json"),
    }
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()[:16]


@dataclass
class _Draft:
    origins: set[str] = field(default_factory=set)
    gateway: bool = False
    clients: bool = False
    tls: bool = True


def _default_port(scheme: str) -> int:
    return 80 if scheme == "http" else 443


def _network_key(network: Address) -> tuple[int, int, int]:
    return (network.version, int(network.network_address), network.prefixlen)


def _address_key(address: str) -> tuple[int, int]:
    parsed = ipaddress.ip_address(address)
    return (parsed.version, int(parsed))
