"""Session recording's costs (the `record_payload` obligation), in-process.

1. The request path: what a request does at its end with recording off (build the audit draft,
   queue it) and on (also: a capture, one append per upstream chunk, the pending recording,
   queue it), on the 32 KB benchmark body and a streamed answer of `--chunks` reads; p50 and p90
   per request in µs, alternating off/on in one run.
2. The recording writer's thread: sealing one recording (two AES-256-GCM payloads, metadata) and
   writing batches to a real SQLite file (recordings/s through `RecordingWriter`).
3. AES-256-GCM throughput on 64 KB, 1 MB and 8 MB payloads (MB/s, one core).

    .venv/bin/python bench/recording_bench.py [--requests 20000] [--chunks 100] [--json FILE]

Bounded: every measurement is a fixed number of calls.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import statistics
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(BENCH.parent))

import body as body_mod  # noqa: E402

from egress.audit.record import build_entry  # noqa: E402
from egress.core.capture import Capture  # noqa: E402
from egress.core.exchange import Action, Api, Decision, Exchange, Outcome  # noqa: E402
from egress.recording.keys import Direction, RecordingKeys  # noqa: E402
from egress.recording.recordings import PendingRecording, RecordingMeta, pending_recording, seal_recording  # noqa: E402
from egress.recording.settings import RecordingSettings  # noqa: E402
from egress.recording.writer import RecordingWriter  # noqa: E402
from egress.store.sqlite import SqliteStore  # noqa: E402

ANSWER_BYTES = 8 * 1024
MAX_BYTES = 8 * 1024 * 1024


def stream_chunks(n: int) -> list[bytes]:
    """An 8 KB Anthropic-shaped event stream, cut into `n` reads as the upstream client yields them."""
    event = (
        b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,'
        b'"delta":{"type":"text_delta","text":"some answer text here"}}\n\n'
    )
    wire = (event * (ANSWER_BYTES // len(event) + 1))[:ANSWER_BYTES]
    size = -(-len(wire) // n)
    return [wire[i : i + size] for i in range(0, len(wire), size)]


def exchange(body: bytes, recorded: bool) -> Exchange:
    x = Exchange(
        request_id="egr_" + os.urandom(12).hex(),
        method="POST",
        path="/v1/messages",
        query="",
        headers=[],
        api=Api.ANTHROPIC_MESSAGES,
    )
    x.api = Api.ANTHROPIC_MESSAGES
    x.body = body
    x.decision = Decision(
        action=Action.ALLOW,
        endpoints=("bench",),
        mask_kinds=(),
        reasons=(),
        decision_id="dec_bench",
        policy_revision="bench",
        obligations=("record_payload",) if recorded else (),
    )
    x.endpoint_name = "bench"
    x.upstream_attempts = 1
    x.upstream_body = body
    x.upstream_status = 200
    x.status = 200
    x.outcome = Outcome.FORWARDED
    x.finished_ns = time.perf_counter_ns()
    return x


def request_path(body: bytes, chunks: list[bytes], n: int) -> dict[str, dict[str, float]]:
    """Per request, the end-of-request work with recording off and on, alternating (µs)."""
    sink: queue.SimpleQueue[object] = queue.SimpleQueue()
    times: dict[str, list[float]] = {"off": [], "on": []}
    for i in range(n):
        for mode in ("off", "on") if i % 2 else ("on", "off"):
            x = exchange(body, mode == "on")
            t0 = time.perf_counter_ns()
            if mode == "on":
                x.capture = Capture(MAX_BYTES, stream=True)
                for chunk in chunks:
                    x.capture.add(chunk)
            sink.put(build_entry(x))
            if x.capture is not None:
                sink.put(x)  # Pipeline.handle hands the exchange to RecordingWriter.submit
            times[mode].append((time.perf_counter_ns() - t0) / 1e3)
        if i % 1000 == 999:
            while not sink.empty():
                sink.get_nowait()
    return {
        mode: {"p50_us": statistics.median(t), "p90_us": statistics.quantiles(t, n=10)[8]} for mode, t in times.items()
    }


def pending(body: bytes, chunks: list[bytes], i: int) -> PendingRecording:
    return PendingRecording(
        request_id=f"egr_{i:024d}",
        recorded_at=time.time(),
        sent=body,
        received=chunks,
        meta=RecordingMeta(
            api="anthropic.messages",
            client_api="anthropic.messages",
            endpoint="bench",
            upstream_path="/v1/messages",
            status=200,
            stream=True,
            masked_kinds={"secret": 2},
            sent_bytes=len(body),
            received_bytes=sum(map(len, chunks)),
        ),
    )


def writer_side(body: bytes, chunks: list[bytes], n: int) -> dict[str, float]:
    keys = RecordingKeys.of(os.urandom(32))
    items = [pending(body, chunks, i) for i in range(n)]
    t0 = time.perf_counter()
    for item in items[:1000]:
        seal_recording(keys, item, MAX_BYTES, 0.0)
    seal_us = (time.perf_counter() - t0) / 1000 * 1e6
    x = exchange(body, True)
    x.capture = Capture(MAX_BYTES, stream=True)
    for chunk in chunks:
        x.capture.add(chunk)
    t0 = time.perf_counter()
    for _ in range(1000):
        pending_recording(x)
    pending_us = (time.perf_counter() - t0) / 1000 * 1e6
    with tempfile.TemporaryDirectory(prefix="egress-recording-bench-") as tmp:
        store = SqliteStore(Path(tmp) / "egress.db")
        store.migrate()
        writer = RecordingWriter(store, keys, RecordingSettings())
        writer.start()
        t0 = time.perf_counter()
        for item in items:
            writer.submit(item)
        writer.close()
        wall = time.perf_counter() - t0
        assert writer.written == n
        db_mb = (Path(tmp) / "egress.db").stat().st_size / 1e6
        store.close()
    return {"seal_us": seal_us, "pending_us": pending_us, "recordings_per_s": n / wall, "db_mb": db_mb, "recordings": n}


def aes_throughput() -> dict[str, float]:
    keys = RecordingKeys.of(os.urandom(32))
    out = {}
    for size in (64 * 1024, 1024 * 1024, 8 * 1024 * 1024):
        payload = os.urandom(size)
        rounds = max(8, (64 * 1024 * 1024) // size)
        best = float("inf")
        for _ in range(3):
            t0 = time.perf_counter()
            for _ in range(rounds):
                sealed = keys.seal("egr_bench", Direction.RECEIVED, payload)
            best = min(best, (time.perf_counter() - t0) / rounds)
        assert keys.open("egr_bench", Direction.RECEIVED, sealed) == payload
        out[f"{size // 1024} KB"] = size / best / 1e6
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--chunks", type=int, default=100, help="upstream reads per streamed answer")
    parser.add_argument("--recordings", type=int, default=5_000)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    body = body_mod.build(True)
    chunks = stream_chunks(args.chunks)
    path = request_path(body, chunks, args.requests)
    print(f"request path, {len(body)} B body, {len(chunks)}-read streamed answer of {ANSWER_BYTES} B, {args.requests} each:")
    print("| recording | p50 µs | p90 µs |\n|---|---:|---:|")
    for mode, r in path.items():
        print(f"| {mode} | {r['p50_us']:.2f} | {r['p90_us']:.2f} |")
    writer = writer_side(body, chunks, args.recordings)
    print(
        f"\nwriter thread: build one recording from its exchange {writer['pending_us']:.1f} µs, "
        f"seal it {writer['seal_us']:.0f} µs; "
        f"RecordingWriter to SQLite {writer['recordings_per_s']:,.0f} recordings/s "
        f"({writer['recordings']} recordings, {writer['db_mb']:.0f} MB)"
    )
    aes = aes_throughput()
    print("AES-256-GCM seal, one core: " + ", ".join(f"{k}: {v:,.0f} MB/s" for k, v in aes.items()))
    if args.json:
        args.json.write_text(json.dumps({"request_path": path, "writer": writer, "aes_mb_s": aes}, indent=2))


if __name__ == "__main__":
    main()
