"""What metrics and traces cost per request, three ways side by side in one run, interleaved:
`off` (no telemetry), `metrics` (metrics on, traces off) and `traces` (metrics and traces on).

    .venv/bin/python bench/telemetry_bench.py [--rounds 30] [--requests 100] [--hook-requests 300] [--kb 4]
                                              [--stream] [--only hooks|gateway]

Two measurements:

1. The bookkeeping alone (`hooks`): what the pipeline runs for telemetry, per request, exactly
   as it runs it: `Telemetry.begin`, the stage boundaries of a forwarded request (parse,
   inspect, decide, mask, forward with restore inside; gateway/stage.py) around no-op stages,
   the audit record built by audit/record.py from a typed Exchange like a forwarded request's,
   and `Telemetry.end` (metrics counted, spans built and queued). With traces on, each batch ends
   with a flush of the span processor, so the exporter thread's encoding and its OTLP/HTTP posts
   to the sink are inside the batch's CPU time. Precise: nothing else runs.
2. End to end (`gateway`): the gateway itself, as below. The bookkeeping is a few percent of a
   request's CPU here, so this shows the total and its noise rather than resolving the
   difference on a shared machine.

Three gateways are built by `egress.app.build_app` from the same configuration but for their
telemetry: `off` (none), `metrics` (metrics.enabled, traces off) and `traces` (metrics and
traces on, exporting over OTLP/HTTP to a sink in another process). Each gets requests through
its ASGI callable directly (no HTTP server in front: less noise, same pipeline), forwarded to
the near-zero-cost upstream (bench/upstream.py, its own process). Every request is the same
Claude Code-shaped body (bench/body.py, `--kb` KB, one AWS key in it: found and masked).

Method (both): for each round, the three variants run `--requests` sequential requests each, in an
order rotated every round; each batch's CPU time (time.process_time: every thread of this
process, so the audit writers and the span exporter's thread count too, the upstream and the
sink do not) is divided by its requests. The p50 over rounds of each variant's CPU per request
is reported, and the p50 of the per-round differences to `off` (the bookkeeping's cost). Wall
time per request (perf_counter) is reported beside it, for information only: the machine is
shared and wall time is noisy.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import uvloop
import yaml

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(BENCH.parent))

import body as body_mod  # noqa: E402 - bench/body.py

from egress.app import build_app, open_configured_store  # noqa: E402
from egress.audit.record import build_entry  # noqa: E402
from egress.config import load_config  # noqa: E402
from egress.core.endpoint import Endpoint  # noqa: E402
from egress.core.exchange import (  # noqa: E402
    Action,
    Api,
    Decision,
    Exchange,
    Finding,
    MaskedRequest,
    MaskedValue,
    Outcome,
    Principal,
    Usage,
)
from egress.gateway.asgi import GatewayApp  # noqa: E402
from egress.gateway.auth import new_key  # noqa: E402
from egress.gateway.stage import StageBoundary, run_stage  # noqa: E402
from egress.telemetry.metrics import GatewayMetrics  # noqa: E402
from egress.telemetry.settings import TracingSettings  # noqa: E402
from egress.telemetry.telemetry import Telemetry  # noqa: E402
from egress.telemetry.tracing import Tracing, otlp_processor  # noqa: E402
from egress.wire.apis import APIS  # noqa: E402

TOKEN_ENV = "BENCH_METRICS_TOKEN"
VARIANTS = ("off", "metrics", "traces")


def sink_main(port: int) -> None:
    """An OTLP/HTTP sink: reads each export and answers 200 (its own process: not measured)."""

    class Sink(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            self.rfile.read(int(self.headers.get("content-length", "0")))
            self.send_response(200)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            return None

    server = ThreadingHTTPServer(("127.0.0.1", port), Sink)
    print("ready", flush=True)
    server.serve_forever()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(cmd: list[str]) -> subprocess.Popen:
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith("ready"):
        proc.kill()
        raise SystemExit(f"{cmd[1]} did not start: {line!r}")
    return proc


def write_config(tmp: Path, name: str, upstream: str, sink: str) -> Path:
    doc: dict[str, Any] = {
        "data_dir": str(tmp / name),
        "auth": {"required": True},
        "organisation": {"home_jurisdictions": ["EU"]},
        "providers": [
            {
                "name": "bench",
                "api": "anthropic",
                "base_url": upstream,
                "models": ["claude-*"],
                "credentials": {"env": "BENCH_KEY"},
                "operator": "Bench",
                "jurisdiction": "US",
                "region": "us",
                "retention_days": 0,
                "trains_on_api_data": False,
                "dpa": True,
            }
        ],
    }
    if name in ("metrics", "traces"):
        doc["metrics"] = {"enabled": True, "token_env": TOKEN_ENV}
    if name == "traces":
        doc["tracing"] = {"enabled": True, "endpoint": sink}
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


class Gateway:
    """One variant: the app, its lifespan, its gateway key."""

    def __init__(self, path: Path) -> None:
        config = load_config(path, env={"BENCH_KEY": "sk-bench"})
        store = open_configured_store(config)
        secret, key = new_key("bench", "platform")
        store.create_key(key)
        store.close()
        self.key = secret.encode()
        self.app: GatewayApp = build_app(config)
        self._lifespan: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._started = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        async def send(message: dict[str, Any]) -> None:
            if message["type"].startswith("lifespan.startup"):
                self._started.set()

        self._task = asyncio.create_task(self.app({"type": "lifespan"}, self._lifespan.get, send))
        await self._lifespan.put({"type": "lifespan.startup"})
        await self._started.wait()

    async def stop(self) -> None:
        await self._lifespan.put({"type": "lifespan.shutdown"})
        if self._task is not None:
            await self._task

    async def request(self, payload: bytes) -> int:
        done = asyncio.Event()
        sent = False
        status = 0

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": payload, "more_body": False}
            await done.wait()
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif not message.get("more_body", False):
                done.set()

        scope = {
            "type": "http",
            "method": "POST",
            "path": "/v1/messages",
            "query_string": b"",
            "headers": [*HEADERS, (b"x-egress-key", self.key)],
        }
        await self.app(scope, receive, send)
        done.set()
        return status


HEADERS = [
    (b"content-type", b"application/json"),
    (b"anthropic-version", b"2023-06-01"),
    (b"user-agent", b"claude-cli/2.1.0 (external, cli)"),
]


_DECIDE = StageBoundary("decide")
_FORWARD = StageBoundary("forward")


def _stage(*args: Any) -> None:
    return None


def forwarded_exchange(payload: bytes) -> Exchange:
    """An Exchange as a forwarded request leaves it: parsed, one finding masked, decided, routed."""
    x = Exchange(
        request_id="egr_0123456789abcdef01234567",
        method="POST",
        path="/v1/messages",
        query="",
        headers=list(HEADERS),
        api=Api.ANTHROPIC_MESSAGES,
    )
    x.body = payload
    x.principal = Principal(user="bench", team="platform", key_id="key_0123", method="gateway_key")
    x.parsed = APIS[Api.ANTHROPIC_MESSAGES].parse_request(Api.ANTHROPIC_MESSAGES, payload)
    x.findings = (Finding(kind="secret", rule_id="aws-access-key-id", segment=3, start=10, end=30, confidence=1.0),)
    x.candidates = ("bench",)
    x.decision = Decision(
        action=Action.MASK,
        endpoints=("bench",),
        mask_kinds=("secret", "pii"),
        reasons=("mask secret",),
        decision_id="dec_0123",
        policy_revision="rego:0123456789abcdef",
    )
    x.masked = MaskedRequest(
        body=payload,
        placeholders={},
        masked_count=1,
        values=(MaskedValue(kind="secret", rule_id="aws-access-key-id", value_hash="h" * 16, occurrences=1),),
    )
    x.upstream_body = payload
    x.endpoint_name, x.endpoint_jurisdiction, x.endpoint_region = "bench", "US", "us"
    x.upstream_attempts, x.upstream_status, x.status = 1, 200, 200
    x.upstream_ns = 400_000
    x.usage = Usage(input_tokens=1200, output_tokens=40)
    x.outcome = Outcome.FORWARDED
    return x


def one_request(telemetry: Telemetry, x: Exchange) -> None:
    """The telemetry calls of one forwarded request, in the pipeline's order."""
    marks = telemetry.begin()
    run_stage("parse", _stage)
    run_stage("inspect", _stage)
    with _DECIDE:
        pass
    run_stage("mask", _stage)
    with _FORWARD:
        run_stage("restore", _stage)
    x.finished_ns = time.perf_counter_ns()
    draft = build_entry(x)
    telemetry.end(x, draft.record, x.finished_ns - 100_000, marks)


def hooks(args: argparse.Namespace, sink: str, payload: bytes) -> dict[str, Any]:
    endpoints = (
        Endpoint.model_validate(
            {
                "name": "bench",
                "api": "anthropic",
                "base_url": "http://127.0.0.1:1",
                "models": ["claude-*"],
                "credentials": {"env": "BENCH_KEY"},
                "operator": "Bench",
                "jurisdiction": "US",
                "region": "us",
                "retention_days": 0,
                "trains_on_api_data": False,
                "dpa": True,
            }
        ),
    )

    def metrics() -> GatewayMetrics:
        return GatewayMetrics(home_jurisdictions=("EU",), endpoint_jurisdictions={"bench": "US"})

    tracing = Tracing(
        TracingSettings(enabled=True, endpoint=sink), endpoints, otlp_processor(TracingSettings(endpoint=sink))
    )
    variants = {"off": Telemetry(), "metrics": Telemetry(metrics=metrics()), "traces": Telemetry(metrics(), tracing)}
    x = forwarded_exchange(payload)
    n = args.hook_requests  # 7 spans each with traces on: well within the span queue, none dropped
    cpu: dict[str, list[float]] = {name: [] for name in VARIANTS}
    for name in VARIANTS:  # warm-up
        for _ in range(n):
            one_request(variants[name], x)
    tracing.processor.force_flush()
    for r in range(args.rounds):
        for name in VARIANTS[r % 3 :] + VARIANTS[: r % 3]:
            telemetry = variants[name]
            c0 = time.process_time()
            for _ in range(n):
                one_request(telemetry, x)
            if telemetry.tracing is not None:
                telemetry.tracing.processor.force_flush()  # the export's CPU belongs to the batch
            cpu[name].append((time.process_time() - c0) / n)
    tracing.close()
    return summarise(cpu, {}, args.rounds, n)


def summarise(cpu: dict[str, list[float]], wall: dict[str, list[float]], rounds: int, per_batch: int) -> dict[str, Any]:
    result: dict[str, Any] = {"rounds": rounds, "requests_per_batch": per_batch}
    for name in VARIANTS:
        result[name] = {"cpu_us_p50": p50(cpu[name]) * 1e6}
        if wall:
            result[name]["wall_us_p50"] = p50(wall[name]) * 1e6
        if name != "off":
            deltas = [(a - b) * 1e6 for a, b in zip(cpu[name], cpu["off"], strict=True)]
            result[name]["cpu_delta_us_p50"] = p50(deltas)
            q = statistics.quantiles(deltas, n=4)
            result[name]["cpu_delta_us_iqr"] = (q[0], q[2])
    return result


def table(title: str, result: dict[str, Any]) -> None:
    print(
        f"\n{title}: CPU per request, p50 of {result['rounds']} interleaved batches of {result['requests_per_batch']}"
    )
    print("| variant | CPU µs/request | Δ vs off (p50) | Δ IQR | wall µs/request (p50) |")
    print("|---|---:|---:|---:|---:|")
    for name in VARIANTS:
        r = result[name]
        delta = f"{r['cpu_delta_us_p50']:+.1f}" if "cpu_delta_us_p50" in r else "—"
        iqr = f"{r['cpu_delta_us_iqr'][0]:+.1f} … {r['cpu_delta_us_iqr'][1]:+.1f}" if "cpu_delta_us_iqr" in r else "—"
        wall = f"{r['wall_us_p50']:.1f}" if "wall_us_p50" in r else "—"
        print(f"| {name} | {r['cpu_us_p50']:.1f} | {delta} | {iqr} | {wall} |")


def p50(values: list[float]) -> float:
    return statistics.median(values)


async def run(args: argparse.Namespace, tmp: Path, upstream: str, sink: str) -> dict[str, Any]:
    os.environ[TOKEN_ENV] = "bench-token"
    gateways = {name: Gateway(write_config(tmp, name, upstream, sink)) for name in VARIANTS}
    for gw in gateways.values():
        await gw.start()
    payload = body_mod.build(args.stream, target=args.kb * 1024, secrets=1)
    cpu: dict[str, list[float]] = {name: [] for name in VARIANTS}
    wall: dict[str, list[float]] = {name: [] for name in VARIANTS}
    try:
        for gw in gateways.values():  # warm-up: caches, connections, first compilations
            for _ in range(args.requests):
                assert await gw.request(payload) == 200
        for r in range(args.rounds):
            order = VARIANTS[r % 3 :] + VARIANTS[: r % 3]
            for name in order:
                gw = gateways[name]
                c0 = time.process_time()
                for _ in range(args.requests):
                    w0 = time.perf_counter()
                    status = await gw.request(payload)
                    wall[name].append(time.perf_counter() - w0)
                    assert status == 200, status
                cpu[name].append((time.process_time() - c0) / args.requests)
    finally:
        for gw in gateways.values():
            await gw.stop()
    return summarise(cpu, wall, args.rounds, args.requests)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--requests", type=int, default=100, help="gateway requests per variant per round")
    ap.add_argument("--hook-requests", type=int, default=300, help="bookkeeping-alone requests per variant per round")
    ap.add_argument("--kb", type=int, default=4, help="request body size")
    ap.add_argument("--stream", action="store_true", help="streamed answers (default: non-stream)")
    ap.add_argument("--only", choices=["hooks", "gateway"], help="run one of the two measurements")
    ap.add_argument("--sink", type=int, help=argparse.SUPPRESS)  # run as the OTLP sink
    args = ap.parse_args()
    if args.sink:
        sink_main(args.sink)
        return
    up_port, sink_port = free_port(), free_port()
    upstream = start([sys.executable, str(BENCH / "upstream.py"), "--port", str(up_port)])
    sink = start([sys.executable, __file__, "--sink", str(sink_port)])
    try:
        sink_url = f"http://127.0.0.1:{sink_port}/v1/traces"
        payload = body_mod.build(args.stream, target=args.kb * 1024, secrets=1)
        if args.only in (None, "hooks"):
            table("Bookkeeping alone (hooks)", hooks(args, sink_url, payload))
        if args.only in (None, "gateway"):
            with tempfile.TemporaryDirectory(prefix="egress-telemetry-bench-") as tmp:
                result = uvloop.run(run(args, Path(tmp), f"http://127.0.0.1:{up_port}", sink_url))
            table(f"End to end (gateway, {args.kb} KB body)", result)
    finally:
        for proc in (upstream, sink):
            proc.send_signal(signal.SIGTERM)
            proc.wait(10)


if __name__ == "__main__":
    main()
