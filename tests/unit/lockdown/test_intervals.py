"""nftables interval sets refuse overlapping elements: the ruleset folds each network inside
another into it. Property: the written networks are disjoint and cover exactly what was given."""

from __future__ import annotations

import ipaddress

from hypothesis import given
from hypothesis import strategies as st

from egress.lockdown.formats.nftables import _disjoint

networks = st.builds(
    lambda address, prefix: ipaddress.ip_network((address, prefix), strict=False),
    st.integers(min_value=0, max_value=2**32 - 1),
    st.integers(min_value=8, max_value=32),
)


def covered(items) -> set[tuple[int, int]]:
    """The union of networks as merged (start, end) integer ranges."""
    spans = sorted((int(n.network_address), int(n.broadcast_address)) for n in items)
    merged: list[list[int]] = []
    for start, end in spans:
        if merged and start <= merged[-1][1] + 1:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return {(a, b) for a, b in merged}


@given(st.lists(networks, min_size=1, max_size=30))
def test_folded_networks_are_disjoint_and_cover_the_same_addresses(given_networks):
    folded = _disjoint([(n, f"host{i}") for i, n in enumerate(given_networks)])
    result = [n for n, _ in folded]
    for i, a in enumerate(result):
        for b in result[i + 1 :]:
            assert not a.overlaps(b)
    assert covered(result) == covered(given_networks)
    assert result == sorted(result, key=lambda n: (int(n.network_address), n.prefixlen))
