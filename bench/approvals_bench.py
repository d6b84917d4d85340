"""What just-in-time approvals cost, measured in-process.

1. A forwarded request that needs no approval: the real gateway app (`build_app`) called through
   ASGI in-process (no client network; the near-zero-cost bench/upstream.py on loopback behind
   it), the 32 KB Claude Code body, non-stream. Alternating request by request: the approval
   gate configured (as `egress serve` runs) and no gate at all; p50 and p90 of each and the
   difference. The audit record's `approval` field is in both (it is None for such requests).
2. The approval check of a request that needs one (refuse mode, the retry path): the digest of
   the masked 32 KB body, then `consume` on a real SQLite file: a miss (no approval: one
   SELECT) and a hit (an approved one is used: conditional UPDATE, re-read, audit step), called
   directly and through the gateway's worker thread (`ApprovalDesk`), p50.
3. The audit record of an exchange with and without an approval note (build_entry + finalize).

    .venv/bin/python bench/approvals_bench.py [--requests 3000] [--checks 2000] [--json FILE]

Bounded: every measurement is a fixed number of calls.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(BENCH.parent))

import body as body_mod  # noqa: E402
import yaml  # noqa: E402

from egress.app import build_app, open_configured_store  # noqa: E402
from egress.approve.desk import ApprovalDesk  # noqa: E402
from egress.approve.service import Approvals, request_digest  # noqa: E402
from egress.audit.record import build_entry, finalize  # noqa: E402
from egress.config import load_config  # noqa: E402
from egress.core.approvals import ApprovalNote  # noqa: E402
from egress.core.exchange import Api, Exchange  # noqa: E402
from egress.gateway.asgi import GatewayApp  # noqa: E402
from egress.gateway.auth import new_key  # noqa: E402
from egress.store.sqlite import SqliteStore  # noqa: E402

KEY_ENV = {"BENCH_KEY": "sk-ant-bench-0000"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(int(q * len(ordered)), len(ordered) - 1)]


def stats_us(samples_ns: list[int]) -> dict[str, float]:
    us = [s / 1000 for s in samples_ns]
    return {"p50_us": round(pct(us, 0.5), 2), "p90_us": round(pct(us, 0.9), 2), "n": len(us)}


# --- 1. a forwarded request that needs no approval ------------------------------------------------


class Lifespan:
    """Runs the app's ASGI lifespan (start-up and shut-down) in-process."""

    def __init__(self, app: GatewayApp) -> None:
        self.app = app
        self.inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.task = asyncio.create_task(self.app({"type": "lifespan"}, self.inbox.get, self.outbox.put))
        await self.inbox.put({"type": "lifespan.startup"})
        message = await self.outbox.get()
        assert message["type"] == "lifespan.startup.complete", message

    async def stop(self) -> None:
        await self.inbox.put({"type": "lifespan.shutdown"})
        await self.outbox.get()
        assert self.task is not None
        await self.task


async def one_request(app: GatewayApp, headers: list[tuple[bytes, bytes]], payload: bytes) -> int:
    sent: list[dict[str, Any]] = []
    delivered = False
    never = asyncio.Event()

    async def receive() -> dict[str, Any]:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": payload, "more_body": False}
        await never.wait()  # the client stays connected
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/v1/messages",
        "query_string": b"",
        "headers": headers,
    }
    await app(scope, receive, send)
    return int(sent[0]["status"])


def forwarded_requests(tmp: Path, requests: int) -> dict[str, Any]:
    port = free_port()
    upstream = subprocess.Popen(
        [sys.executable, str(BENCH / "upstream.py"), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert upstream.stdout is not None and upstream.stdout.readline().startswith("ready")
        doc = {
            "data_dir": str(tmp / "data"),
            "audit": {"flush_interval_ms": 20},
            "auth": {"required": True},
            "approvals": {"mode": "refuse"},
            "providers": [
                {
                    "name": "bench",
                    "api": "anthropic",
                    "base_url": f"http://127.0.0.1:{port}",
                    "models": ["claude-*"],
                    "credentials": {"env": "BENCH_KEY"},
                    "operator": "bench",
                    "jurisdiction": "US",
                    "region": "us",
                    "retention_days": 0,
                    "trains_on_api_data": False,
                    "dpa": True,
                }
            ],
        }
        path = tmp / "egress.yaml"
        path.write_text(yaml.safe_dump(doc))
        config = load_config(path, env={**os.environ, **KEY_ENV})
        store = open_configured_store(config)
        secret, key = new_key("bench", "perf")
        store.create_key(key)
        store.close()
        headers = [(k.encode().lower(), v.encode()) for k, v in body_mod.CLAUDE_CODE_HEADERS]
        headers = [h for h in headers if h[0] not in (b"content-type", b"x-egress-key")]
        headers += [(b"content-type", b"application/json"), (b"x-egress-key", secret.encode())]
        payload = body_mod.build(False)
        return asyncio.run(_alternate(config, headers, payload, requests))
    finally:
        upstream.terminate()
        upstream.wait(10)


async def _alternate(config: Any, headers: list[tuple[bytes, bytes]], payload: bytes, requests: int) -> dict[str, Any]:
    app = build_app(config)
    lifespan = Lifespan(app)
    await lifespan.start()
    pipeline = app.pipeline
    gate = pipeline.approvals
    samples: dict[str, list[int]] = {"gate": [], "no_gate": []}
    try:
        for _ in range(200):  # warm-up: connections, caches
            assert await one_request(app, headers, payload) == 200
        for i in range(requests * 2):
            label = "gate" if i % 2 == 0 else "no_gate"
            pipeline.approvals = gate if label == "gate" else None
            t0 = time.perf_counter_ns()
            status = await one_request(app, headers, payload)
            samples[label].append(time.perf_counter_ns() - t0)
            assert status == 200
    finally:
        pipeline.approvals = gate
        await lifespan.stop()
    gate_stats, bare = stats_us(samples["gate"]), stats_us(samples["no_gate"])
    return {
        "gate": gate_stats,
        "no_gate": bare,
        "p50_difference_us": round(gate_stats["p50_us"] - bare["p50_us"], 2),
    }


# --- 2. the approval check on a retry -------------------------------------------------------------


def timed(fn: Callable[[], Any], n: int, setup: Callable[[], Any] | None = None) -> list[int]:
    out = []
    for _ in range(n):
        arg = setup() if setup is not None else None
        t0 = time.perf_counter_ns()
        fn() if arg is None else fn(arg)
        out.append(time.perf_counter_ns() - t0)
    return out


def retry_checks(tmp: Path, checks: int) -> dict[str, Any]:
    store = SqliteStore(tmp / "approvals.db")
    store.migrate()
    steps: list[Any] = []
    approvals = Approvals(store, lambda a, step, actor: steps.append(step))
    payload = body_mod.build(False)
    digest = request_digest("bench", "anthropic.messages", payload)
    counter = iter(range(10**9))

    def approved_one() -> str:
        d = f"{next(counter):064d}"
        a = approvals.create(
            user="bench",
            team=None,
            request_id="egr_bench",
            api="anthropic.messages",
            model="claude",
            endpoints=("bench",),
            reasons=("bench",),
            kinds={"secret": 1},
            rules={"private-key-pem": 1},
            digest=d,
            ttl_s=3600,
        )
        approvals.approve(a.approval_id, "approver")
        return d

    result = {
        "digest_32kb": stats_us(timed(lambda: request_digest("bench", "anthropic.messages", payload), checks)),
        "consume_miss": stats_us(timed(lambda: approvals.consume("bench", digest), checks)),
        "consume_hit": stats_us(timed(lambda d: approvals.consume("bench", d), checks // 4, approved_one)),
    }
    desk = ApprovalDesk(approvals)

    async def through_desk() -> list[int]:
        out = []
        for _ in range(checks):
            t0 = time.perf_counter_ns()
            await desk.consume("bench", digest)
            out.append(time.perf_counter_ns() - t0)
        return out

    result["consume_miss_via_desk"] = stats_us(asyncio.run(through_desk()))
    desk.close()
    store.close()
    return result


# --- 3. the audit record --------------------------------------------------------------------------


def audit_record(n: int) -> dict[str, Any]:
    x = Exchange(
        request_id="egr_bench", method="POST", path="/v1/messages", query="", headers=[], api=Api.ANTHROPIC_MESSAGES
    )
    x.finished_ns = x.started_ns + 1000
    plain = timed(lambda: finalize(build_entry(x)), n)
    x.approval = ApprovalNote("apv_bench", "used", "approver")
    noted = timed(lambda: finalize(build_entry(x)), n)
    return {"without_approval": stats_us(plain), "with_approval": stats_us(noted)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=3000, help="forwarded requests per variant (default 3000)")
    ap.add_argument("--checks", type=int, default=2000, help="approval checks per measurement (default 2000)")
    ap.add_argument("--json", type=Path, help="also write the numbers here")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="egress-approvals-bench-") as tmp_s:
        tmp = Path(tmp_s)
        (tmp / "a").mkdir()
        (tmp / "b").mkdir()
        results = {
            "forwarded_without_approval": forwarded_requests(tmp / "a", args.requests),
            "retry_check": retry_checks(tmp / "b", args.checks),
            "audit_record": audit_record(args.checks),
            "python": sys.version.split()[0],
            "cpus": os.cpu_count(),
            "loadavg": os.getloadavg(),
        }
    print(json.dumps(results, indent=2))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
