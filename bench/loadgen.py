"""Fallback load generator (used only when `wrk` is not installed, or with `--loadgen python`).

N clients, each with its own keep-alive connection, POST the same body back to back for a fixed
time and record each request's latency (request written -> whole response read). It prints one
JSON object in the same shape as the wrk runner's, then exits.

It costs far more CPU per request than wrk (an aiohttp client in Python), which on a 2-core
machine competes with the gateway: prefer wrk. Loopback only, bounded by --duration.

    python bench/loadgen.py --url http://127.0.0.1:PORT/v1/messages --body FILE \
        --header 'x-egress-key: egk_…' --clients 8 --duration 8
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from urllib.parse import urlsplit

import aiohttp
import body as body_mod  # bench/body.py (this script's folder is on sys.path when run as a script)

try:
    import uvloop
except ImportError:  # pragma: no cover
    uvloop = None


def _percentile(sorted_us: list[float], p: float) -> float:
    if not sorted_us:
        return 0.0
    k = min(len(sorted_us) - 1, max(0, int(round(p / 100.0 * len(sorted_us) + 0.5)) - 1))
    return sorted_us[k]


class Bodies:
    """The same body every time, or (fresh_base >= 0) with the newest turn's number changed per
    request (bench/body.py FRESH_MARK), so that turn is new text every time."""

    def __init__(self, body: bytes, fresh_base: int) -> None:
        self.body = body
        self.n = fresh_base
        if fresh_base >= 0:
            self.head, self.tail = body_mod.fresh_split(body)

    def next(self) -> bytes:
        if self.n < 0:
            return self.body
        self.n += 1
        return b"%s%0*d%s" % (self.head, body_mod.FRESH_DIGITS, self.n, self.tail)


async def _client(
    session: aiohttp.ClientSession,
    url: str,
    bodies: Bodies,
    headers: dict[str, str],
    deadline: float,
    lat_us: list[float],
    errors: dict[str, int],
    counters: dict[str, int],
) -> None:
    while time.perf_counter() < deadline:
        body = bodies.next()
        t0 = time.perf_counter_ns()
        try:
            async with session.post(url, data=body, headers=headers) as resp:
                async for chunk in resp.content.iter_any():
                    counters["bytes"] += len(chunk)
                status = resp.status
        except (aiohttp.ClientError, TimeoutError):
            errors["read"] += 1
            continue
        lat_us.append((time.perf_counter_ns() - t0) / 1000.0)
        if status >= 400:
            errors["status"] += 1


async def run(url: str, bodies: Bodies, headers: dict[str, str], clients: int, duration: float) -> dict:
    if urlsplit(url).hostname not in ("127.0.0.1", "localhost"):
        raise SystemExit("loopback only")
    lat_us: list[float] = []
    errors = {"connect": 0, "read": 0, "write": 0, "status": 0, "timeout": 0}
    counters = {"bytes": 0}
    connector = aiohttp.TCPConnector(limit=clients, force_close=False)
    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout, skip_auto_headers=("User-Agent",)) as s:
        started = time.perf_counter()
        deadline = started + duration
        await asyncio.gather(
            *(_client(s, url, bodies, headers, deadline, lat_us, errors, counters) for _ in range(clients))
        )
        elapsed = time.perf_counter() - started
    lat_us.sort()
    n = len(lat_us)
    return {
        "requests": n,
        "duration_us": int(elapsed * 1e6),
        "bytes": counters["bytes"],
        "errors": errors,
        "latency_us": {
            "min": lat_us[0] if n else 0,
            "mean": sum(lat_us) / n if n else 0,
            "max": lat_us[-1] if n else 0,
            "stdev": 0,
            "p50": _percentile(lat_us, 50),
            "p90": _percentile(lat_us, 90),
            "p99": _percentile(lat_us, 99),
            "p999": _percentile(lat_us, 99.9),
        },
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", required=True)
    ap.add_argument("--body", required=True)
    ap.add_argument("--header", action="append", default=[], help="'name: value', repeatable")
    ap.add_argument("--clients", type=int, default=1)
    ap.add_argument("--duration", type=float, default=8.0)
    ap.add_argument(
        "--fresh-base",
        type=int,
        default=-1,
        help="number requests from here in the newest turn (bench/body.py); -1: identical bodies",
    )
    args = ap.parse_args()
    headers = {}
    for h in args.header:
        name, _, value = h.partition(":")
        headers[name.strip()] = value.strip()
    with open(args.body, "rb") as f:
        body = f.read()
    coro = run(args.url, Bodies(body, args.fresh_base), headers, args.clients, min(args.duration, 120.0))
    result = uvloop.run(coro) if uvloop is not None else asyncio.run(coro)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
