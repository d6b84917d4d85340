"""The formats `egress lockdown export` writes, one module each, and the host set they share."""

from __future__ import annotations

from collections.abc import Callable

from egress.lockdown.formats import cilium, istio, kubernetes, nftables, terraform
from egress.lockdown.hosts import LockdownPlan
from egress.lockdown.render import Artifact

FORMATS: dict[str, Callable[[LockdownPlan], list[Artifact]]] = {
    "kubernetes": kubernetes.render,
    "cilium": cilium.render,
    "istio": istio.render,
    "nftables": nftables.render,
    "terraform": terraform.render,
}
# Formats whose rules list addresses: they resolve names at generation time (unless told not to).
RESOLVING = frozenset({"nftables"})


def export(plan: LockdownPlan, fmt: str) -> list[Artifact]:
    return FORMATS[fmt](plan)
