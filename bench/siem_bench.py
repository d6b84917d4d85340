"""SIEM delivery throughput (issue #18.4: at least 5,000 records/s to the HTTP sink).

N audit records (default 100,000, realistic request records of about 1 kB) are written to a real
SQLite store (WAL, synchronous=FULL, as the gateway runs it), then one `SiemDelivery` worker
delivers them to a local HTTP receiver in another process (Splunk HEC: the receiver parses every
event of every batch and answers code 0; or Elastic bulk: every action and document parsed, per
item results). Timed: from the worker's start until the persisted cursor reaches N. Reported:
records/s (wall), and the deliverer process's CPU seconds per 1,000 records (time.process_time,
which the other engineers' load on the shared machine disturbs less than wall time).

    .venv/bin/python bench/siem_bench.py [--records 100000] [--batch 500] [--format splunk_hec] [--json FILE]

Bounded: a fixed number of records; the receiver is stopped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import sys
import tempfile
import time
from pathlib import Path

import orjson
from aiohttp import web
from prometheus_client import CollectorRegistry

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from egress.audit.chain import link  # noqa: E402
from egress.core.records import AuditEntry  # noqa: E402
from egress.siem.delivery import SiemDelivery  # noqa: E402
from egress.siem.metrics import SiemMetrics  # noqa: E402
from egress.siem.settings import SiemSettings  # noqa: E402
from egress.store.sqlite import SqliteStore  # noqa: E402


def record(i: int) -> AuditEntry:
    """A request record shaped like the gateway's (decision, findings, masked values, latency)."""
    doc = {
        "api": "anthropic.messages",
        "decision": {
            "action": "mask",
            "candidates": ["anthropic-eu"],
            "reasons": ["pii.email masked"],
            "revision": "r1",
        },
        "endpoint": "anthropic-eu",
        "findings": {"count": 3, "kinds": {"email": 2, "aws_access_key": 1}},
        "jurisdiction": "DE",
        "latency_ms": {"gateway": 1.8, "total": 812.4, "upstream": 810.6},
        "masked": {"values": [{"kind": "email", "id": f"m{i}a"}, {"kind": "aws_access_key", "id": f"m{i}b"}]},
        "model": "claude-sonnet-4-5",
        "outcome": "forwarded",
        "request_id": f"req_{i:012d}",
        "status": 200,
        "team": "platform",
        "ts": 1_800_000_000.0 + i / 100,
        "upstream_attempts": [{"endpoint": "anthropic-eu", "status": 200}],
        "usage": {"input_tokens": 1834, "output_tokens": 412},
        "user": "alice@example.org",
        "request_sha256": "9f" * 32,
        "response_sha256": "3c" * 32,
    }
    canonical = orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)
    return AuditEntry(
        doc["request_id"], doc["ts"], doc["user"], doc["team"], doc["api"], doc["endpoint"], doc["jurisdiction"],
        doc["outcome"], 200, canonical,
    )  # fmt: skip


def receiver(port: int, ready: multiprocessing.synchronize.Event) -> None:
    """HEC and bulk endpoints that parse every event and answer as the real ones do."""

    async def hec(request: web.Request) -> web.Response:
        body = await request.read()
        for line in body.split(b"\n"):
            event = orjson.loads(line)
            assert event["event"]["seq"] > 0
        return web.json_response({"text": "Success", "code": 0})

    async def bulk(request: web.Request) -> web.Response:
        lines = [line for line in (await request.read()).split(b"\n") if line]
        items = []
        for action, doc in zip(lines[::2], lines[1::2], strict=True):
            _id = orjson.loads(action)["index"]["_id"]
            assert orjson.loads(doc)["seq"] > 0
            items.append({"index": {"_id": _id, "status": 201}})
        return web.Response(
            body=orjson.dumps({"took": 1, "errors": False, "items": items}), content_type="application/json"
        )

    async def main() -> None:
        app = web.Application(client_max_size=512 * 1024 * 1024)
        app.router.add_post("/services/collector/event", hec)
        app.router.add_post("/_bulk", bulk)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        ready.set()
        await asyncio.Event().wait()

    asyncio.run(main())


async def deliver(store: SqliteStore, url: str, fmt: str, batch: int, n: int) -> tuple[float, float]:
    sink = {"name": "bench", "type": "http", "format": fmt, "url": url, "delivery": {"batch_size": batch}}
    delivery = SiemDelivery(SiemSettings(sinks=(sink,)), store, SiemMetrics(CollectorRegistry()), env={})
    worker = delivery.workers[0]
    cpu0, t0 = time.process_time(), time.perf_counter()
    delivery.start()
    while worker.delivered < n:
        await asyncio.sleep(0.005)
        assert worker.failures == 0, "a send failed"
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    await delivery.stop()
    cursor = store.siem_cursor("bench")
    assert cursor is not None and cursor.seq == n
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--format", choices=("splunk_hec", "elastic_bulk"), default="splunk_hec")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    n = args.records
    with tempfile.TemporaryDirectory() as tmp:
        store = SqliteStore(Path(tmp) / "egress.db")
        store.migrate()
        for start in range(1, n + 1, 5000):
            store.append_audit([record(i) for i in range(start, min(start + 5000, n + 1))], link)
        size = sum(len(s.entry.canonical) for s in store.siem_batch(0, 100)) / 100
        port = 20000 + (int(time.time() * 1000) % 20000)
        ready = multiprocessing.Event()
        proc = multiprocessing.Process(target=receiver, args=(port, ready), daemon=True)
        proc.start()
        try:
            assert ready.wait(20), "the receiver did not start"
            wall, cpu = asyncio.run(deliver(store, f"http://127.0.0.1:{port}", args.format, args.batch, n))
        finally:
            proc.terminate()
            proc.join(5)
            store.close()
    result = {
        "records": n,
        "record_bytes": round(size),
        "batch": args.batch,
        "format": args.format,
        "wall_s": round(wall, 3),
        "records_per_s": round(n / wall),
        "deliverer_cpu_s": round(cpu, 3),
        "deliverer_cpu_ms_per_1000": round(cpu / n * 1e6, 2),
    }
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
