"""Internal identifiers: an organisation's own names, matched with whole-word semantics.

Configured as lists (domains, hostnames, service names, project codenames, customer names,
package namespaces) and IP ranges; turned into ordinary rules so the same engine, cache and
merging apply.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from dataclasses import replace

from pydantic import BaseModel, ConfigDict, Field

from egress.core.exchange import Kind
from egress.detect.rules import Rule


class InternalIdentifiers(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    domains: tuple[str, ...] = Field(default=(), description="internal DNS domains; subdomains match too")
    hostnames: tuple[str, ...] = ()
    services: tuple[str, ...] = ()
    codenames: tuple[str, ...] = ()
    customers: tuple[str, ...] = ()
    package_namespaces: tuple[str, ...] = Field(default=(), description="e.g. @acme/, com.acme., acme-internal-")
    ip_ranges: tuple[str, ...] = Field(default=(), description="CIDR ranges, e.g. 10.20.0.0/16")
    patterns: tuple[str, ...] = Field(default=(), description="extra RE2 patterns (matched whole)")


def _word(term: str) -> str:
    """Whole-word: a word boundary on each side that starts or ends with a word character."""
    body = re.escape(term).replace("\\ ", "[ _-]?")
    left = r"\b" if term[:1].isalnum() or term[:1] == "_" else ""
    right = r"\b" if term[-1:].isalnum() or term[-1:] == "_" else ""
    return f"{left}{body}{right}"


def _rule(
    rule_id: str, description: str, pattern: str, family: str, keywords: tuple[str, ...] = (), severity: str = "medium"
) -> Rule:
    return Rule(
        id=rule_id,
        description=description,
        regex=pattern,
        secret_group=1,
        keywords=keywords,
        kind=Kind.INTERNAL,
        family=family,
        severity=severity,
        confidence=0.95,
        origin="config:internal_identifiers",
    )


def internal_rules(config: InternalIdentifiers) -> tuple[Rule, ...]:
    rules: list[Rule] = []
    if config.domains:
        alternatives = "|".join(re.escape(d.strip(".").lower()) for d in config.domains)
        rules.append(
            _rule(
                "internal-domain",
                "Internal domain or a host in it",
                rf"(?i)\b((?:[a-z0-9](?:[a-z0-9-]{{0,61}}[a-z0-9])?\.)*(?:{alternatives}))\b",
                "domain",
                tuple(d.strip(".").lower() for d in config.domains),
            )
        )
    lists = (
        ("internal-hostname", "Internal hostname", config.hostnames, "host"),
        ("internal-service", "Internal service name", config.services, "service"),
        ("internal-codename", "Project codename", config.codenames, "codename"),
        ("internal-customer", "Customer name", config.customers, "customer"),
    )
    for rule_id, description, terms, family in lists:
        if terms:
            alternatives = "|".join(_word(t) for t in sorted(terms, key=len, reverse=True))
            rules.append(
                _rule(rule_id, description, f"(?i)({alternatives})", family, tuple(t.lower().split()[0] for t in terms))
            )
    if config.package_namespaces:
        alternatives = "|".join(re.escape(n) for n in config.package_namespaces)
        rules.append(
            _rule(
                "internal-package",
                "Internal package namespace",
                rf"((?:{alternatives})[A-Za-z0-9_.\-/]{{0,100}})",
                "package",
                tuple(n.lower() for n in config.package_namespaces),
            )
        )
    if config.ip_ranges:
        networks = tuple(ipaddress.ip_network(r, strict=False) for r in config.ip_ranges)
        rule = _rule(
            "internal-ip",
            "Address in an internal IP range",
            r"\b((?:\d{1,3}\.){3}\d{1,3}|(?i:[0-9a-f]{0,4}:){2,7}[0-9a-f]{0,4})\b",
            "network",
            severity="low",
        )
        rules.append(replace(rule, check=_in_networks(networks)))
    for i, pattern in enumerate(config.patterns):
        rules.append(
            _rule(f"internal-pattern-{i + 1}", "Configured internal identifier pattern", f"({pattern})", "pattern")
        )
    return tuple(rules)


def _in_networks(networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]) -> Callable[..., bool]:
    def check(value: str, text: str = "", start: int = 0, end: int = 0) -> bool:
        try:
            address = ipaddress.ip_address(value)
        except ValueError:
            return False
        return any(address in n for n in networks)

    return check
