"""What a limit counts, over which window, and the one admission rule both counters apply.

Windows are fixed and anchored at their first use: a counter is created by the first request
that adds to it and expires one window later (Redis PEXPIRE; the same in process). Within a
window the count is exact and atomic, so a limit of N admits exactly N; across the end of a
window a client can send N at its end and N more at the start of the next (at most 2N in any
sliding window of the same length: the tolerance docs/limits.md states). Spend counts per
calendar month (UTC): its window ends with the month.

The admission rule (`admits`): a request is admitted when every counter it touches has room
for what it adds now (`used + max(cost, 1) <= limit`). Requests cost 1; input tokens cost their
estimate (body bytes / 4) and are corrected after the answer; output tokens and spend cost 0
now and are added after the answer, so a counter refuses once it is spent.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from enum import StrEnum

MINUTE_S = 60.0
DAY_S = 86_400.0
# Spend counters live a little over a month: their key names the month (`spend:2026-12`).
MONTH_TTL_S = 32 * DAY_S
# What one token's worth of body is, for the estimate before the answer's usage is known.
BYTES_PER_TOKEN = 4
MICRO = 1_000_000  # spend is counted in micro-dollars (integers)


class Dim(StrEnum):
    """A limit: the configuration's field name."""

    REQUESTS_PER_MINUTE = "requests_per_minute"
    INPUT_TOKENS_PER_MINUTE = "input_tokens_per_minute"
    OUTPUT_TOKENS_PER_MINUTE = "output_tokens_per_minute"
    INPUT_TOKENS_PER_DAY = "input_tokens_per_day"
    OUTPUT_TOKENS_PER_DAY = "output_tokens_per_day"
    SPEND_PER_MONTH = "spend_per_month_usd"

    @property
    def window_s(self) -> float:
        return _WINDOW[self]

    @property
    def counts(self) -> str:
        """What the counter adds up: requests, input, output or spend (micro-dollars)."""
        return _COUNTS[self]


_WINDOW = {
    Dim.REQUESTS_PER_MINUTE: MINUTE_S,
    Dim.INPUT_TOKENS_PER_MINUTE: MINUTE_S,
    Dim.OUTPUT_TOKENS_PER_MINUTE: MINUTE_S,
    Dim.INPUT_TOKENS_PER_DAY: DAY_S,
    Dim.OUTPUT_TOKENS_PER_DAY: DAY_S,
    Dim.SPEND_PER_MONTH: MONTH_TTL_S,
}
_COUNTS = {
    Dim.REQUESTS_PER_MINUTE: "requests",
    Dim.INPUT_TOKENS_PER_MINUTE: "input",
    Dim.OUTPUT_TOKENS_PER_MINUTE: "output",
    Dim.INPUT_TOKENS_PER_DAY: "input",
    Dim.OUTPUT_TOKENS_PER_DAY: "output",
    Dim.SPEND_PER_MONTH: "spend",
}


class Scope(StrEnum):
    KEY = "key"
    USER = "user"
    TEAM = "team"


@dataclass(frozen=True, slots=True)
class Counter:
    """One counter a request touches: whose, which limit, its key suffix and its limit (in the
    counter's unit: micro-dollars for spend)."""

    scope: Scope
    name: str
    dim: Dim
    limit: int

    @property
    def label(self) -> str:
        """What the audit and the refusal name: `team qa requests_per_minute`."""
        return f"{self.scope.value} {self.name} {self.dim.value}"

    def key(self, now: float) -> str:
        """The counter's key (under the configured prefix); the month's name for spend."""
        base = f"lim:{self.scope.value[0]}:{self.name}:{self.dim.value}"
        if self.dim is Dim.SPEND_PER_MONTH:
            return base + ":" + time.strftime("%Y-%m", time.gmtime(now))
        return base


def admits(used: int, cost: int, limit: int) -> bool:
    """The admission rule: room for what the request adds now (at least one unit)."""
    return used + max(cost, 1) <= limit


def estimate_tokens(body_bytes: int) -> int:
    """Input tokens before the answer says: the body's size over BYTES_PER_TOKEN, rounded up."""
    return -(-body_bytes // BYTES_PER_TOKEN)


def retry_after_s(ttl_ms: int, window_s: float) -> int:
    """Whole seconds until the window ends (at least 1); a counter without an expiry (-1, -2) waits a window."""
    if ttl_ms <= 0:
        return max(1, int(window_s))
    return max(1, -(-ttl_ms // 1000))
