"""What a Bedrock- (or Vertex-) routed request costs beyond an Anthropic-routed one, in CPU time.

The per-request work that differs between the routes, called in-process (no network) on the
~32 KB Claude Code body (bench/body.py) and the benchmark's 20-event stream (bench/upstream.py):

  anthropic  the upstream headers; the stream's chunks passed through as they are;
  bedrock    the same headers, then the adapter: body mapping (model out, anthropic_version in),
             the path, SigV4 signing with botocore (credentials already resolved, as after the
             first request), and the answer: the 20 events as AWS event-stream frames (the way
             Bedrock sends them, base64 in JSON, 20 network reads) decoded back into SSE;
  vertex     the same headers, the body mapping, a cached OAuth2 token, the stream filter
             (drops vertex_event) over the 20 SSE events.

Everything after (restoration, observation, the relay's SSE framing) is the same on every route
and not measured here. Method: `time.process_time` over batches of requests, the routes
interleaved batch by batch (A B C A B C ...) so that load from other work on the shared machine
falls on all alike; per route the median over batches of CPU µs per request, and the added cost
as the median of the per-round differences.

    .venv/bin/python bench/clouds_bench.py [--rounds 30 --batch 200]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import datetime as dt
import json
import os
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.body import build as claude_code_body  # noqa: E402
from bench.upstream import SSE_EVENTS  # noqa: E402
from egress.core.endpoint import Endpoint  # noqa: E402
from egress.route.clouds.bedrock import BedrockAdapter  # noqa: E402
from egress.route.clouds.vertex import VertexAdapter  # noqa: E402
from egress.route.upstream import upstream_headers  # noqa: E402
from egress.wire.eventstream import Header, encode_message  # noqa: E402
from egress.wire.sse import event_data  # noqa: E402

PROFILE = "eu.anthropic.claude-sonnet-4-5-20250929-v1:0"
CLIENT_HEADERS = [
    (b"host", b"127.0.0.1:8080"),
    (b"content-type", b"application/json"),
    (b"anthropic-version", b"2023-06-01"),
    (b"anthropic-beta", b"claude-code-20250219,interleaved-thinking-2025-05-14"),
    (b"x-api-key", b"sk-ant-client"),
    (b"x-egress-key", b"egk_bench"),
    (b"user-agent", b"claude-cli/2.1.332 (external, cli)"),
    (b"x-stainless-lang", b"js"),
    (b"x-claude-code-session-id", b"7f3c1e52-9a4b-4d1e-8c2f-5b6a7d8e9f01"),
]


def endpoint(api: str, **fields: object) -> Endpoint:
    doc: dict[str, object] = {
        "name": f"bench-{api}",
        "api": api,
        "base_url": "https://bedrock-runtime.eu-central-1.amazonaws.com",
        "models": ["claude-*"],
        "credentials": {"env": "X"},
        "operator": "bench",
        "jurisdiction": "EU",
        "region": "eu-central-1",
        "retention_days": 0,
        "trains_on_api_data": False,
        "dpa": True,
    }
    return Endpoint.model_validate({**doc, **fields})


def bedrock_frames() -> list[bytes]:
    rng = random.Random(1)
    frames = []
    for event in SSE_EVENTS:
        data = event_data(event)
        assert data is not None
        payload = json.dumps({"bytes": base64.b64encode(data).decode(), "p": "x" * rng.randint(0, 24)}).encode()
        headers = (
            Header.string(":event-type", "chunk"),
            Header.string(":content-type", "application/json"),
            Header.string(":message-type", "event"),
        )
        frames.append(encode_message(headers, payload))
    return frames


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--batch", type=int, default=200)
    args = parser.parse_args()

    os.environ.update(
        AWS_ACCESS_KEY_ID="AKIDBENCH00000000001",
        AWS_SECRET_ACCESS_KEY="bench/secret/key/00000000000000000000001",
        AWS_SHARED_CREDENTIALS_FILE="/nonexistent",
        AWS_CONFIG_FILE="/nonexistent",
        AWS_EC2_METADATA_DISABLED="true",
    )
    body = claude_code_body(stream=True)
    sse_chunks = list(SSE_EVENTS)
    frames = bedrock_frames()
    anthropic_ep = endpoint("anthropic", base_url="https://api.anthropic.com", jurisdiction="US", region="us")
    bedrock_ep = endpoint("bedrock", credentials={"chain": True}, model_map={"claude-sonnet-4-5": PROFILE})
    vertex_ep = endpoint(
        "vertex",
        base_url="https://europe-west1-aiplatform.googleapis.com/v1/projects/p/locations/europe-west1",
        jurisdiction="BE",
        region="europe-west1",
    )
    bedrock = BedrockAdapter(bedrock_ep)
    vertex = VertexAdapter(vertex_ep)  # `env` credentials: the token is a header, like a cached one
    drop = frozenset({b"x-egress-key"})

    async def anthropic_request() -> None:
        upstream_headers(CLIENT_HEADERS, anthropic_ep, drop)
        for chunk in sse_chunks:  # passed through as they are
            assert chunk

    async def bedrock_request() -> None:
        headers = upstream_headers(CLIENT_HEADERS, bedrock_ep, drop)
        prepared = bedrock.prepare(PROFILE, True, body, headers)
        await bedrock.authorize(bedrock_ep.base_url + prepared.path, headers, prepared.body)
        answer = bedrock.answer()
        answer.head(
            200, [(b"content-type", b"application/vnd.amazon.eventstream")], "application/vnd.amazon.eventstream"
        )
        for frame in frames:
            answer.feed(frame)
        answer.finish()

    async def vertex_request() -> None:
        headers = upstream_headers(CLIENT_HEADERS, vertex_ep, drop)
        prepared = vertex.prepare("claude-sonnet-4-5@20250929", True, body, headers)
        await vertex.authorize(vertex_ep.base_url + prepared.path, headers, prepared.body)
        answer = vertex.answer()
        answer.head(200, [(b"content-type", b"text/event-stream")], "text/event-stream")
        for chunk in sse_chunks:
            answer.feed(chunk)
        answer.finish()

    signing_headers = upstream_headers(CLIENT_HEADERS, bedrock_ep, drop)
    signing_body = bedrock.prepare(PROFILE, True, body, signing_headers)

    async def bedrock_body_only() -> None:
        bedrock.prepare(PROFILE, True, body, signing_headers)

    async def bedrock_sign_only() -> None:
        await bedrock.authorize(bedrock_ep.base_url + signing_body.path, signing_headers, signing_body.body)

    async def bedrock_stream_only() -> None:
        answer = bedrock.answer()
        answer.head(
            200, [(b"content-type", b"application/vnd.amazon.eventstream")], "application/vnd.amazon.eventstream"
        )
        for frame in frames:
            answer.feed(frame)
        answer.finish()

    routes: dict[str, Callable[[], Awaitable[None]]] = {
        "anthropic": anthropic_request,
        "bedrock": bedrock_request,
        "vertex": vertex_request,
        # Bedrock's parts, for where the time goes:
        "  body+path": bedrock_body_only,
        "  sigv4": bedrock_sign_only,
        "  stream": bedrock_stream_only,
    }
    for fn in routes.values():  # warm-up (botocore resolves the credential chain on the first)
        for _ in range(50):
            await fn()
    per_round: dict[str, list[float]] = {name: [] for name in routes}
    for _ in range(args.rounds):
        for name, fn in routes.items():
            t0 = time.process_time()
            for _ in range(args.batch):
                await fn()
            per_round[name].append((time.process_time() - t0) / args.batch * 1e6)
    medians = {name: statistics.median(v) for name, v in per_round.items()}
    added = {
        name: statistics.median(b - a for a, b in zip(per_round["anthropic"], per_round[name], strict=True))
        for name in ("bedrock", "vertex")
    }
    sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    print(f"body {len(body)} bytes, stream {len(SSE_EVENTS)} events; {args.rounds} rounds x {args.batch} requests")
    print(f"{'route':<12} {'CPU µs/request (median)':>24} {'range over rounds':>22}")
    for name, values in per_round.items():
        print(f"{name:<12} {medians[name]:>24.1f} {min(values):>10.1f} .. {max(values):<9.1f}")
    for name, value in added.items():
        print(f"added by {name}: {value:.1f} µs per request (median of per-round differences)")
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H%M%SZ")
    (out / f"{stamp}-{sha}.clouds.json").write_text(
        json.dumps({"rounds": per_round, "median_us": medians, "added_us": added, "batch": args.batch}, indent=1)
    )


if __name__ == "__main__":
    asyncio.run(main())
