"""Many replicas, one gateway: what the shared hot state costs, and what replicas buy.

Four measurements, each bounded, side by side in one run (docs/scaling.md has the results):

1. ledger   the request path's Redis round trips for the session ledger (egress/shared/ledger.py)
            beside the in-process ledger (egress/mask/ledger.py), interleaved: a read of a session
            with 5 remembered values (HGETALL, 5 AES-GCM opens), the same read with a rate
            limiter's commands in the same pipelined round (INCR + PEXPIRE: what item 2 adds), and
            a write of one new value. p50/p90 wall and mean CPU (time.process_time) per call.
2. caches   a local cache hit (an OrderedDict, as the decision and findings caches are) beside a
            Redis GET of a ~400-byte cached decision plus its decode: which one wins.
3. replicas egress serve x1 vs x3 (separate processes, one PostgreSQL database, one Redis,
            bench/upstream.py as the provider), an aiohttp load spread round-robin over the
            replicas, requests with a session header and a secret (the ledger on every request):
            requests/s and latency p50/p99.
4. chain    the audit chain's write ceiling on PostgreSQL: W writer processes appending through
            the group-commit writer into one chain (one advisory lock) vs into W chains (W
            databases: the sharded design in docs/scaling.md), records/s in total.

    .venv/bin/python bench/replicas_bench.py [--only ledger,caches,replicas,chain] [--json FILE]
        [--redis redis://127.0.0.1:6379/0] [--pg postgresql://postgres@127.0.0.1:5432/postgres]

Needs Redis and PostgreSQL on loopback. The machine this first ran on had 2 cores shared with
other work: rerun it on a quiet machine before quoting throughput.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import aiohttp  # noqa: E402
import orjson  # noqa: E402
import psycopg  # noqa: E402
import redis  # noqa: E402
import yaml  # noqa: E402
from audit_bench import record  # noqa: E402  (bench/audit_bench.py: a gateway-shaped record)

from egress.audit.settings import AuditSettings  # noqa: E402
from egress.audit.writer import AuditWriter  # noqa: E402
from egress.gateway.auth import new_key  # noqa: E402
from egress.mask.ledger import SessionLedger  # noqa: E402
from egress.shared.client import HotState  # noqa: E402
from egress.shared.ledger import SharedLedger  # noqa: E402
from egress.shared.settings import RedisSettings  # noqa: E402
from egress.store.open import open_store  # noqa: E402
from egress.store.postgres import PostgresStore  # noqa: E402

try:
    import uvloop
except ImportError:  # pragma: no cover
    uvloop = None


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(p / 100 * len(s)))]


def summary(wall_us: list[float], cpu_us: float) -> dict[str, float]:
    return {"p50_us": round(pct(wall_us, 50), 1), "p90_us": round(pct(wall_us, 90), 1), "cpu_us": round(cpu_us, 1)}


# --- 1. the ledger's round trips ----------------------------------------------------------------


async def ledger_bench(url: str, n: int) -> dict[str, Any]:
    prefix = f"egress-bench-{secrets.token_hex(3)}:"
    hot = HotState(RedisSettings.model_validate({"url": url, "key_prefix": prefix}))
    key = os.urandom(32)
    shared = SharedLedger(hot, key, None, ttl_s=600, max_values=512, store_timeout_s=2)
    local = SessionLedger()
    values = {f"EGX_SECRET_{i}_abcdefghijklm": "pw-" + secrets.token_hex(10) for i in range(5)}
    await shared.remember("alice", "s1", values, {})
    local.remember("alice", "s1", values)

    async def shared_read() -> None:
        await shared.known("alice", "s1")

    async def shared_read_with_limit() -> None:
        round_ = hot.round()
        slot = shared.queue_read(round_, "alice", "s1")
        round_.call("INCR", hot.key("rl", "alice", str(int(time.time() // 60))))
        round_.call("PEXPIRE", hot.key("rl", "alice", str(int(time.time() // 60))), 120_000)
        await round_.run()
        await shared.finish_read(slot, "alice", "s1")

    async def shared_write() -> None:
        await shared.remember("alice", "s2", {"EGX_NEW_abcdefghijklm": "pw-" + secrets.token_hex(10)}, {})

    async def local_read() -> None:
        local.known("alice", "s1")

    async def local_write() -> None:
        local.remember("alice", "s2", {"EGX_NEW_abcdefghijklm": "pw-" + secrets.token_hex(10)})

    cases = {
        "in-process read": local_read,
        "in-process write": local_write,
        "Redis read (1 round trip)": shared_read,
        "Redis read + rate-limit commands (1 round trip)": shared_read_with_limit,
        "Redis write of 1 new value (1 round trip)": shared_write,
    }
    wall: dict[str, list[float]] = {k: [] for k in cases}
    cpu: dict[str, float] = dict.fromkeys(cases, 0.0)
    for _ in range(200):  # warm
        for fn in cases.values():
            await fn()
    for _ in range(n):  # interleaved: each case once per round
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
    shared.close()
    return {name: summary(wall[name], cpu[name] / n * 1e6) for name in cases}


# --- 2. a local cache hit vs a shared one ----------------------------------------------------


async def caches_bench(url: str, n: int) -> dict[str, Any]:
    decision = {
        "action": "mask",
        "endpoints": ["anthropic", "bedrock-eu"],
        "reasons": ["secrets are masked before they leave"],
        "obligations": [],
        "mask_kinds": ["secret"],
        "policy_revision": "sha256:" + "ab" * 32,
        "candidates": ["anthropic", "bedrock-eu", "vertex-eu"],
        "findings": [{"kind": "secret", "rule": "aws-access-token", "start": 10, "end": 30}] * 3,
    }
    blob = orjson.dumps(decision)
    local: OrderedDict[bytes, Any] = OrderedDict()
    k = b"rev\0" + os.urandom(16)
    local[k] = decision
    hot = HotState(RedisSettings.model_validate({"url": url, "key_prefix": f"egress-bench-{secrets.token_hex(3)}:"}))
    rkey = hot.key("decision", k.hex())
    await hot.redis.set(rkey, blob, px=60_000)
    wall: dict[str, list[float]] = {"local hit": [], "Redis GET + decode": []}
    cpu = {"local hit": 0.0, "Redis GET + decode": 0.0}
    for _ in range(n):
        c0, t0 = time.process_time(), time.perf_counter()
        item = local.get(k)
        local.move_to_end(k)
        assert item is not None
        wall["local hit"].append((time.perf_counter() - t0) * 1e6)
        cpu["local hit"] += time.process_time() - c0
        c0, t0 = time.process_time(), time.perf_counter()
        raw = await hot.bounded(hot.redis.get(rkey))
        orjson.loads(raw)
        wall["Redis GET + decode"].append((time.perf_counter() - t0) * 1e6)
        cpu["Redis GET + decode"] += time.process_time() - c0
    await hot.redis.delete(rkey)
    await hot.close()
    return {name: summary(wall[name], cpu[name] / n * 1e6) for name in wall} | {"decision_bytes": len(blob)}


# --- 3. one replica vs three ----------------------------------------------------------------


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, timeout: float = 120) -> None:
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer")


def make_db(admin: str) -> str:
    name = "egress_bench_" + secrets.token_hex(4)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return admin.rsplit("/", 1)[0] + "/" + name


def drop_db(admin: str, url: str) -> None:
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')


async def load(urls: list[str], key: str, clients: int, duration: float) -> dict[str, Any]:
    latencies: list[float] = []
    errors = 0
    stop = time.monotonic() + duration

    async def client(c: int) -> None:
        nonlocal errors
        i = c
        headers = {"x-egress-key": key, "anthropic-version": "2023-06-01", "x-claude-code-session-id": f"bench-{c}"}
        async with aiohttp.ClientSession() as http:
            while time.monotonic() < stop:
                i += 1
                body = {
                    "model": "claude-sonnet-4-5",
                    "max_tokens": 10,
                    "messages": [
                        {
                            "role": "user",
                            "content": f"turn {i}: deploy with AKIAQYLPMN5HHHFPZAM2 and DB_PASSWORD=Xk9mQ2vLp7Rt4abcZ",
                        }
                    ],
                }
                t0 = time.perf_counter()
                async with http.post(urls[i % len(urls)] + "/v1/messages", json=body, headers=headers) as r:
                    await r.read()
                    if r.status != 200:
                        errors += 1
                        continue
                latencies.append((time.perf_counter() - t0) * 1000)

    t0 = time.perf_counter()
    await asyncio.gather(*(client(c) for c in range(clients)))
    wall = time.perf_counter() - t0
    return {
        "requests_per_s": round(len(latencies) / wall, 1),
        "p50_ms": round(pct(latencies, 50), 2) if latencies else None,
        "p99_ms": round(pct(latencies, 99), 2) if latencies else None,
        "completed": len(latencies),
        "errors": errors,
    }


def replicas_bench(redis_url: str, admin: str, clients: int, duration: float) -> dict[str, Any]:
    out: dict[str, Any] = {}
    tmp = Path(tempfile.mkdtemp(prefix="egress-replicas-bench-"))
    up_port = free_port()
    upstream = subprocess.Popen(
        [sys.executable, str(ROOT / "bench" / "upstream.py"), "--port", str(up_port)], stdout=subprocess.DEVNULL
    )
    wait_http(f"http://127.0.0.1:{up_port}/healthz")
    try:
        for count in (1, 3, 1, 3):  # alternating: the machine's load drifts
            pg = make_db(admin)
            prefix = f"egress-bench-{secrets.token_hex(3)}:"
            procs: list[subprocess.Popen] = []
            try:
                doc = {
                    "data_dir": str(tmp / "data"),
                    "store": {"url": pg},
                    "redis": {"url": redis_url, "key_prefix": prefix},
                    "auth": {"required": True, "key_refresh_s": 1},
                    "providers": [
                        {
                            "name": "up",
                            "api": "anthropic",
                            "base_url": f"http://127.0.0.1:{up_port}",
                            "models": ["claude-*"],
                            "credentials": {"env": "BENCH_KEY"},
                            "operator": "bench",
                            "jurisdiction": "US",
                            "region": "us-east-1",
                            "retention_days": 30,
                            "trains_on_api_data": False,
                            "dpa": True,
                        }
                    ],
                }
                config = tmp / "egress.yaml"
                config.write_text(yaml.safe_dump(doc))
                store = open_store(pg)
                store.migrate()
                secret, key = new_key("bench", "team")
                store.create_key(key)
                store.close()
                urls = []
                for n in range(count):
                    port = free_port()
                    procs.append(
                        subprocess.Popen(
                            [
                                sys.executable,
                                "-m",
                                "egress",
                                "serve",
                                "--config",
                                str(config),
                                "--port",
                                str(port),
                                "--workers",
                                "1",
                            ],
                            env={**os.environ, "BENCH_KEY": "sk-bench"},
                            stdout=(tmp / f"serve-{count}-{n}.log").open("ab"),
                            stderr=subprocess.STDOUT,
                            start_new_session=True,
                        )
                    )
                    urls.append(f"http://127.0.0.1:{port}")
                    if n == 0:
                        wait_http(urls[0] + "/readyz")
                for u in urls:
                    wait_http(u + "/readyz")
                result = asyncio.run(load(urls, secret, clients, duration))
                out.setdefault(f"x{count}", []).append(result)
                print(f"  replicas x{count}: {result}", file=sys.stderr)
            finally:
                for p in procs:
                    os.killpg(p.pid, signal.SIGTERM)
                for p in procs:
                    p.wait(30)
                drop_db(admin, pg)
                client = redis.Redis.from_url(redis_url)
                for key in client.scan_iter(match=prefix + "*"):
                    client.delete(key)
                client.close()
    finally:
        upstream.terminate()
        upstream.wait(10)
    return out


# --- 4. the audit chain's write ceiling -------------------------------------------------------


def _writer_process(url: str, n: int, offset: int, start: Any, results: Any) -> None:
    store = PostgresStore(url)
    entries = [record(offset + i) for i in range(n)]
    writer = AuditWriter(store, AuditSettings(), None)
    writer.start()
    start.wait()
    t0 = time.perf_counter()
    for e in entries:
        writer.submit(e)
    writer.close()
    results.put((t0, time.perf_counter(), writer.written))
    store.close()


def chain_bench(admin: str, writers: int, per_writer: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    ctx = multiprocessing.get_context("spawn")
    for layout in ("one chain", f"{writers} chains", "one chain", f"{writers} chains"):
        dbs = [make_db(admin) for _ in range(1 if layout == "one chain" else writers)]
        try:
            for db in dbs:
                s = PostgresStore(db)
                s.migrate()
                s.close()
            start = ctx.Event()
            results = ctx.Queue()
            procs = [
                ctx.Process(
                    target=_writer_process, args=(dbs[w % len(dbs)], per_writer, w * per_writer, start, results)
                )
                for w in range(writers)
            ]
            for p in procs:
                p.start()
            time.sleep(2.0)  # each has built its records and connected
            start.set()
            got = [results.get(timeout=300) for _ in procs]
            for p in procs:
                p.join(30)
            t0 = min(g[0] for g in got)
            t1 = max(g[1] for g in got)
            total = sum(g[2] for g in got)
            rate = round(total / (t1 - t0))
            out.setdefault(layout, []).append(rate)
            print(f"  chain, {writers} writers, {layout}: {rate} records/s", file=sys.stderr)
        finally:
            for db in dbs:
                drop_db(admin, db)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", default="ledger,caches,replicas,chain")
    ap.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    ap.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/postgres")
    ap.add_argument("--n", type=int, default=2000, help="calls per case (ledger, caches)")
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--duration", type=float, default=10.0)
    ap.add_argument("--writers", type=int, default=3)
    ap.add_argument("--records", type=int, default=10_000, help="records per writer (chain)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    only = set(args.only.split(","))
    result: dict[str, Any] = {"cpus": os.cpu_count(), "loadavg_before": os.getloadavg()}
    if uvloop is not None:
        uvloop.install()
    if "ledger" in only:
        result["ledger"] = asyncio.run(ledger_bench(args.redis, args.n))
    if "caches" in only:
        result["caches"] = asyncio.run(caches_bench(args.redis, args.n))
    if "replicas" in only:
        result["replicas"] = replicas_bench(args.redis, args.pg, args.clients, args.duration)
    if "chain" in only:
        result["chain"] = chain_bench(args.pg, args.writers, args.records)
    result["loadavg_after"] = os.getloadavg()
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text)


if __name__ == "__main__":
    main()
