"""Bounded exponential backoff with jitter: the n-th retry (0-based) waits a time drawn uniformly
from [d/2, d], d = min(cap, initial * 2**n). Never more than `cap`; never a fixed rhythm that
several gateways would share after one outage."""

from __future__ import annotations

import random


def backoff_delay(attempt: int, initial_s: float, cap_s: float, rng: random.Random) -> float:
    ceiling = min(cap_s, initial_s * 2 ** min(attempt, 64))
    return rng.uniform(ceiling / 2, ceiling)
