"""A clock tests move by hand (`clock.now += 61`), for anything that takes `clock=`."""

from __future__ import annotations


class ManualClock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now
