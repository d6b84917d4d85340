"""Rate limits on the request path: what the admission costs, alone and in the ledger's round.

Cases, interleaved (each once per round, so drift on a shared machine hits all alike); wall time
p50/p90 (perf_counter) and mean CPU (time.process_time) per request, in microseconds:

  no limits                     Quota.queue for a caller no limit applies to (a dict lookup)
  in process                    admission with the counters in this process (no Redis)
  Redis, own round trip         admission alone: one EVAL of the admission script (3 counters)
  ledger read alone             the shared ledger's read (HGETALL + 5 AES-GCM opens), egress/shared
  ledger + limits, 2 trips      the ledger's read, then the admission in a round trip of its own
  ledger + limits, pipelined    both in one pipelined round trip (egress/shared Round)

The number issue #19 asks for is `ledger + limits, pipelined` minus `ledger read alone` (the rate
limit's added cost when it shares the ledger's round trip; target <= 0.2 ms p50), beside
`Redis, own round trip` (what it costs with no ledger to share, e.g. requests without a session).

    .venv/bin/python bench/limits_bench.py [-n 2000] [--redis redis://127.0.0.1:6379/0] [--json FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import redis  # noqa: E402

from egress.core.exchange import Api, Exchange, Principal  # noqa: E402
from egress.limits.prices import PriceBook  # noqa: E402
from egress.limits.quota import Quota  # noqa: E402
from egress.limits.settings import LimitsSettings  # noqa: E402
from egress.shared.client import HotState  # noqa: E402
from egress.shared.ledger import SharedLedger  # noqa: E402
from egress.shared.settings import RedisSettings  # noqa: E402

ALICE = Principal(user="alice", team="qa", key_id="key_a", method="gateway_key")
NOBODY = Principal(user="nobody", team=None, key_id=None, method="gateway_key")
# Three counters: the user's requests per minute, the team's requests and output tokens.
LIMITS = LimitsSettings.model_validate(
    {
        "users": {"alice": {"requests_per_minute": 10**9}},
        "teams": {"qa": {"requests_per_minute": 10**9, "output_tokens_per_minute": 10**12}},
    }
)


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(p / 100 * len(s)))]


def exchange(who: Principal) -> Exchange:
    x = Exchange(
        request_id="req_b", method="POST", path="/v1/messages", query="", headers=[], api=Api.ANTHROPIC_MESSAGES
    )
    x.principal = who
    x.body = b"x" * 4000
    return x


async def run(url: str, n: int) -> dict[str, Any]:
    prefix = f"egress-bench-limits-{secrets.token_hex(3)}:"
    hot = HotState(RedisSettings.model_validate({"url": url, "key_prefix": prefix}))
    quota = Quota(LIMITS, PriceBook({}), hot)
    local = Quota(LIMITS, PriceBook({}), None)
    ledger = SharedLedger(hot, os.urandom(32), None, ttl_s=600, max_values=512, store_timeout_s=2)
    values = {f"EGX_SECRET_{i}_abcdefghijklm": "pw-" + secrets.token_hex(10) for i in range(5)}
    await ledger.remember("alice", "s1", values, {})
    x, nobody = exchange(ALICE), exchange(NOBODY)

    async def no_limits() -> None:
        quota.queue(nobody, None)

    async def in_process() -> None:
        await local.admit(x)

    async def own_round() -> None:
        await quota.admit(x)

    async def ledger_alone() -> None:
        await ledger.known("alice", "s1")

    async def two_trips() -> None:
        await ledger.known("alice", "s1")
        await quota.admit(x)

    async def pipelined() -> None:
        round_ = hot.round()
        slot = ledger.queue_read(round_, "alice", "s1")
        ticket = quota.queue(x, round_)
        await round_.run()
        assert ticket is not None
        quota.settle(ticket)
        await ledger.finish_read(slot, "alice", "s1")

    cases: dict[str, Callable[[], Awaitable[None]]] = {
        "no limits": no_limits,
        "in process": in_process,
        "Redis, own round trip": own_round,
        "ledger read alone": ledger_alone,
        "ledger + limits, 2 trips": two_trips,
        "ledger + limits, pipelined": pipelined,
    }
    wall: dict[str, list[float]] = {k: [] for k in cases}
    cpu = dict.fromkeys(cases, 0.0)
    for _ in range(200):
        for fn in cases.values():
            await fn()
    for _ in range(n):
        for name, fn in cases.items():
            c0, t0 = time.process_time(), time.perf_counter()
            await fn()
            wall[name].append((time.perf_counter() - t0) * 1e6)
            cpu[name] += time.process_time() - c0
    client = redis.Redis.from_url(url)
    for k in client.scan_iter(match=prefix + "*"):
        client.delete(k)
    client.close()
    await hot.close()
    ledger.close()
    out = {
        name: {
            "p50_us": round(pct(wall[name], 50), 1),
            "p90_us": round(pct(wall[name], 90), 1),
            "cpu_us": round(cpu[name] / n * 1e6, 1),
        }
        for name in cases
    }
    out["added by limits, pipelined (p50 difference)"] = {
        "p50_us": round(out["ledger + limits, pipelined"]["p50_us"] - out["ledger read alone"]["p50_us"], 1),
        "cpu_us": round(out["ledger + limits, pipelined"]["cpu_us"] - out["ledger read alone"]["cpu_us"], 1),
    }
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("-n", type=int, default=2000)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    result = asyncio.run(run(args.redis, args.n))
    width = max(len(k) for k in result)
    for name, row in result.items():
        print(f"{name:<{width}}  " + "  ".join(f"{k} {v:>8}" for k, v in row.items()))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
