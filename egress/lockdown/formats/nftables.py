"""An nftables ruleset for developer machines and CI runners: traffic to any provider address is
dropped, except to the gateway, in the output hook (the machine's own processes) and the forward
hook (containers and VMs it runs). Other traffic is untouched.

Addresses come from the vendors' published ranges, `lockdown.addresses`, address-literal
endpoints and, unless turned off, DNS at generation time: providers move, so `egress lockdown
refresh` re-resolves and reloads the table. The file replaces the whole `inet egress_lockdown`
table atomically (`nft -f`), so loading it twice is the same as loading it once.
"""

from __future__ import annotations

import ipaddress

from egress.lockdown.hosts import Address, LockdownPlan
from egress.lockdown.render import Artifact, header

TABLE = "egress_lockdown"
FILE = "egress-lockdown.nft"
NOTE = (
    "Load with `nft -f egress-lockdown.nft` (as root); remove with `nft delete table inet egress_lockdown`. "
    "Names resolved at generation time may move: run `egress lockdown refresh --apply` from a timer. "
    "*.patterns cannot be expressed as addresses; the names under them that the catalog lists are."
)


def render(plan: LockdownPlan) -> list[Artifact]:
    gateway = sorted({ipaddress.ip_network(a, strict=False) for a in plan.settings.gateway.addresses}, key=_key)
    owners: dict[Address, set[str]] = {}
    for host in plan.blocked_for_clients:
        if host.is_loopback:
            continue
        for network in plan.addresses(host):
            owners.setdefault(network, set()).add(host.name)
    blocked = sorted(owners, key=_key)
    unresolved = sorted(h.name for h in plan.blocked_for_clients if not plan.addresses(h) and not h.is_pattern)
    notes = [NOTE]
    if unresolved:
        notes.append("Names with no address at generation time (not covered until refreshed): " + ", ".join(unresolved))
    lines = [
        f"table inet {TABLE}",
        f"delete table inet {TABLE}",
        f"table inet {TABLE} {{",
    ]
    lines += _set("gateway_v4", "ipv4_addr", [(n, "the gateway") for n in gateway if n.version == 4])
    lines += _set("gateway_v6", "ipv6_addr", [(n, "the gateway") for n in gateway if n.version == 6])
    lines += _set("providers_v4", "ipv4_addr", [(n, _comment(owners[n])) for n in blocked if n.version == 4])
    lines += _set("providers_v6", "ipv6_addr", [(n, _comment(owners[n])) for n in blocked if n.version == 6])
    local_uid = plan.settings.gateway.local_uid
    for chain, hook in (("output", "output"), ("forward", "forward")):
        lines += [
            f"\tchain {chain} {{",
            f"\t\ttype filter hook {hook} priority filter; policy accept;",
        ]
        if chain == "output" and local_uid is not None:
            # A gateway on this machine: its own process (and only it) may reach the providers.
            lines.append(f'\t\tmeta skuid {local_uid} accept comment "the gateway on this machine"')
        lines += [
            "\t\tip daddr @gateway_v4 accept",
            "\t\tip6 daddr @gateway_v6 accept",
            '\t\tip daddr @providers_v4 counter drop comment "LLM provider: only through the gateway"',
            '\t\tip6 daddr @providers_v6 counter drop comment "LLM provider: only through the gateway"',
            "\t}",
        ]
    lines.append("}")
    return [Artifact(FILE, header(plan, "nftables", notes=notes) + "\n".join(lines) + "\n")]


def _set(name: str, kind: str, elements: list[tuple[Address, str]]) -> list[str]:
    lines = [f"\tset {name} {{", f"\t\ttype {kind}", "\t\tflags interval"]
    if elements:
        merged = _disjoint(elements)
        lines.append("\t\telements = {")
        lines += [f'\t\t\t{_element(network)} comment "{comment}",' for network, comment in merged]
        lines.append("\t\t}")
    lines.append("\t}")
    return lines


def _disjoint(elements: list[tuple[Address, str]]) -> list[tuple[Address, str]]:
    """Interval sets refuse overlapping elements: a network inside another is folded into it."""
    out: list[tuple[Address, str]] = []
    for network, comment in sorted(elements, key=lambda e: (e[0].prefixlen, _key(e[0]))):
        container = next((i for i, (n, _) in enumerate(out) if network.subnet_of(n)), None)  # type: ignore[arg-type]
        if container is None:
            out.append((network, comment))
        else:
            held, held_comment = out[container]
            out[container] = (held, _comment({*held_comment.split(" "), *comment.split(" ")}))
    return sorted(out, key=lambda e: _key(e[0]))


def _element(network: Address) -> str:
    """A single address is written bare, a network in CIDR notation."""
    return str(network.network_address) if network.prefixlen == network.max_prefixlen else str(network)


def _comment(names: set[str]) -> str:
    text = " ".join(sorted(n for n in names if n))
    return text if len(text) <= 120 else text[:117] + "..."


def _key(network: Address) -> tuple[int, int, int]:
    return (network.version, int(network.network_address), network.prefixlen)
