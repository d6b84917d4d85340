"""Coding tools' own backends: hosts that receive prompts from a tool that cannot be pointed at a
gateway (its client talks to the vendor's cloud, which calls the model). The bundled catalog lists
them under `tool_hosts:` so that `egress lockdown` can block them ("not through this tool") unless
the configuration allows one explicitly (`lockdown.allow_tools`).

Each entry names the vendor page its hosts come from and when they were read, like a provider
entry. A host is a DNS name, or `*.` and a domain for every name under it (a pattern: DNS-aware
policies match it; address-based rules use the entry's concrete names only).
"""

from __future__ import annotations

import ipaddress
import re

from pydantic import BaseModel, ConfigDict, Field, field_validator

_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
HOST = re.compile(rf"^(?:\*\.)?(?:{_LABEL}\.)+{_LABEL}$")


class ToolHost(BaseModel):
    """One coding tool's backend hosts, with the page they come from."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$")
    tool: str = Field(description="the coding tool, as its users know it")
    operator: str
    hosts: tuple[str, ...] = Field(min_length=1, description="DNS names, or *.domain patterns")
    source: str = Field(pattern=r"^https://\S+$", description="the vendor page the hosts come from")
    as_of: str = Field(pattern=r"^\d{4}-\d{2}-\d{2}$", description="when the hosts were read from the source")
    notes: str = ""

    @field_validator("hosts")
    @classmethod
    def _hosts(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if bad := [h for h in value if not HOST.match(h)]:
            raise ValueError(f"{bad} are not lower-case DNS names or *.domain patterns")
        return value


class PublishedRange(BaseModel):
    """The address ranges a vendor publishes for one API host, for rules that cannot match names
    (plain Kubernetes NetworkPolicy, cloud firewalls). A host without one is matched by name only."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    host: str = Field(pattern=HOST.pattern)
    cidrs: tuple[str, ...] = Field(min_length=1, description="IPv4 and IPv6 networks, CIDR notation")
    source: str = Field(pattern=r"^https://\S+$")
    as_of: str = Field(pattern=r"^\d{4}-\d{2}-\d{2}$")
    notes: str = ""

    @field_validator("cidrs")
    @classmethod
    def _cidrs(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for cidr in value:
            ipaddress.ip_network(cidr)  # raises ValueError on anything else
        return value
