"""The counters, kept in Redis (shared by every replica) or in this process, with one rule.

Both apply `windows.admits` to every counter a request touches and add its cost to all of them
only when all admit (all or nothing): in Redis as one Lua script (atomic: no other replica's
request interleaves), in process under the event loop (no await inside). The script is sent with
EVAL (Redis keeps its compiled form by digest), so a Redis restarted empty needs no reload.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from egress.limits.windows import Counter

# KEYS: the counters. ARGV: per counter its limit, cost and window (ms).
# Returns {0, used...} (admitted; each counter's value after) or {i, pttl_ms, used} (refused by
# the i-th counter, 1-based). A counter gets its expiry when it has none (created by this call).
ADMIT_SCRIPT = """
local n = #KEYS
local used = {}
for i = 1, n do
  local u = tonumber(redis.call('GET', KEYS[i]) or '0')
  local need = tonumber(ARGV[3*i-1])
  if need < 1 then need = 1 end
  if u + need > tonumber(ARGV[3*i-2]) then
    return {i, redis.call('PTTL', KEYS[i]), u}
  end
  used[i] = u
end
local out = {0}
for i = 1, n do
  local cost = tonumber(ARGV[3*i-1])
  if cost > 0 then
    used[i] = redis.call('INCRBY', KEYS[i], cost)
    if redis.call('PTTL', KEYS[i]) < 0 then redis.call('PEXPIRE', KEYS[i], ARGV[3*i]) end
  end
  out[i+1] = used[i]
end
return out
"""

# KEYS: counters. ARGV: per counter its delta and window (ms). A negative delta (an estimate
# corrected down) never creates a counter; a counter never goes below zero.
ADD_SCRIPT = """
for i = 1, #KEYS do
  local d = tonumber(ARGV[2*i-1])
  if d > 0 or redis.call('EXISTS', KEYS[i]) == 1 then
    local v = redis.call('INCRBY', KEYS[i], d)
    if v < 0 then redis.call('SET', KEYS[i], 0, 'KEEPTTL') end
    if redis.call('PTTL', KEYS[i]) < 0 then redis.call('PEXPIRE', KEYS[i], ARGV[2*i]) end
  end
end
return #KEYS
"""


@dataclass(frozen=True, slots=True)
class Charge:
    """What a request adds to one counter now."""

    counter: Counter
    key: str
    cost: int


@dataclass(frozen=True, slots=True)
class Verdict:
    """Admitted (refused is None), with each counter's value after; or refused by one counter,
    with the milliseconds until its window ends (-1: unknown)."""

    refused: Charge | None
    ttl_ms: int = -1
    used: tuple[int, ...] = ()

    @staticmethod
    def of_script(charges: tuple[Charge, ...], reply: Any) -> Verdict:
        values = [int(v) for v in reply]
        if values[0] == 0:
            return Verdict(None, used=tuple(values[1:]))
        return Verdict(charges[values[0] - 1], ttl_ms=values[1], used=(values[2],))


def admit_args(charges: tuple[Charge, ...], prefix: str) -> list[Any]:
    """EVAL's arguments for ADMIT_SCRIPT."""
    keys = [prefix + c.key for c in charges]
    argv: list[Any] = []
    for c in charges:
        argv += [c.counter.limit, c.cost, int(c.counter.dim.window_s * 1000)]
    return ["EVAL", ADMIT_SCRIPT, len(keys), *keys, *argv]


def add_args(deltas: list[tuple[str, int, float]], prefix: str) -> list[Any]:
    """EVAL's arguments for ADD_SCRIPT: (key, delta, window_s) each."""
    keys = [prefix + k for k, _, _ in deltas]
    argv: list[Any] = []
    for _, delta, window in deltas:
        argv += [delta, int(window * 1000)]
    return ["EVAL", ADD_SCRIPT, len(keys), *keys, *argv]


@dataclass(slots=True)
class _Cell:
    value: int
    expires: float


@dataclass(slots=True)
class LocalCounters:
    """The same counters in this process: without Redis, or while it is down. `share` scales
    every limit (limits.fallback_share while Redis is down)."""

    share: float = 1.0
    cells: dict[str, _Cell] = field(default_factory=dict)

    def _live(self, key: str, now: float) -> _Cell | None:
        cell = self.cells.get(key)
        if cell is not None and cell.expires <= now:
            del self.cells[key]
            return None
        return cell

    def admit(self, charges: tuple[Charge, ...], now: float | None = None) -> Verdict:
        now = time.monotonic() if now is None else now
        used: list[int] = []
        for c in charges:
            cell = self._live(c.key, now)
            u = cell.value if cell is not None else 0
            limit = max(1, int(c.counter.limit * self.share))
            if u + max(c.cost, 1) > limit:
                ttl = int((cell.expires - now) * 1000) if cell is not None else -1
                return Verdict(c, ttl_ms=ttl, used=(u,))
            used.append(u)
        for i, c in enumerate(charges):
            if c.cost > 0:
                cell = self._live(c.key, now)
                if cell is None:
                    cell = self.cells[c.key] = _Cell(0, now + c.counter.dim.window_s)
                cell.value += c.cost
                used[i] = cell.value
        return Verdict(None, used=tuple(used))

    def add(self, deltas: list[tuple[str, int, float]], now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        for key, delta, window in deltas:
            cell = self._live(key, now)
            if cell is None:
                if delta <= 0:
                    continue
                cell = self.cells[key] = _Cell(0, now + window)
            cell.value = max(0, cell.value + delta)

    def value(self, key: str, now: float | None = None) -> int:
        cell = self._live(key, time.monotonic() if now is None else now)
        return 0 if cell is None else cell.value
