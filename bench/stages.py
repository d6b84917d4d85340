"""Per-stage cost of egress's request path, measured in-process on the benchmark body.

Calls egress's own functions (imported, not copied) one at a time in a tight loop and reports the
best-of-5 mean per call, so each number is the cost of that piece alone, without the network,
the event loop or sampling error. The audit store is measured on a real SQLite file in a
temporary folder, with the writer's own batch sizes, in wall time and in CPU time of the
writing thread.

    .venv/bin/python bench/stages.py            # a table on stdout
    .venv/bin/python bench/stages.py --json F   # also write the numbers to F
    .venv/bin/python bench/stages.py --ref HEAD # egress as committed, not the working tree

Bounded: every measurement is a fixed number of calls.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import dataclasses
import hashlib
import json
import os
import sys
import tempfile
import time
import timeit
from collections.abc import Iterator
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent


def _egress_source() -> Path:
    """The egress to import: `--ref REF` exports that commit (git archive) to a temporary folder,
    which lives as long as this process; otherwise this checkout's working tree."""
    if "--ref" not in sys.argv[:-1]:
        return BENCH.parent
    import atexit
    import shutil
    import subprocess

    ref = sys.argv[sys.argv.index("--ref") + 1]
    dest = Path(tempfile.mkdtemp(prefix="egress-stages-src-"))
    atexit.register(shutil.rmtree, dest, ignore_errors=True)
    tar = subprocess.run(["git", "archive", ref], cwd=BENCH.parent, capture_output=True, check=True, timeout=60)
    subprocess.run(["tar", "-x", "-C", str(dest)], input=tar.stdout, check=True, timeout=60)
    return dest


SOURCE = _egress_source()
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(SOURCE))

import body as body_mod  # noqa: E402
import orjson  # noqa: E402
from pydantic import SecretStr  # noqa: E402

from egress.audit.chain import GENESIS_HASH, link  # noqa: E402  (older refs define it there)
from egress.audit.record import build_entry, finalize  # noqa: E402
from egress.core.endpoint import Endpoint  # noqa: E402
from egress.core.exchange import Api, Exchange, Outcome  # noqa: E402
from egress.gateway.asgi import new_request_id  # noqa: E402
from egress.gateway.auth import find_gateway_key, hash_key, new_key  # noqa: E402
from egress.gateway.clients import identify  # noqa: E402
from egress.identity.oidc import VerifiedToken  # noqa: E402
from egress.identity.token_cache import VerifiedTokenCache  # noqa: E402
from egress.mask.masker import Masker  # noqa: E402
from egress.policy.decide import AllowServingEndpoints, RequestFacts, policy_input, validate  # noqa: E402
from egress.route.catalog import Catalog  # noqa: E402
from egress.route.upstream import upstream_headers  # noqa: E402
from egress.store.open import open_store  # noqa: E402
from egress.wire.apis import APIS  # noqa: E402


def per_call_us(fn: Any, number: int) -> float:
    return min(timeit.repeat(fn, number=number, repeat=5)) / number * 1e6


def endpoint() -> Endpoint:
    """The endpoint the benchmark config describes, with its credential filled in as config loading does."""
    ep = Endpoint.model_validate(
        {
            "name": "bench-anthropic",
            "api": "anthropic",
            "base_url": "http://127.0.0.1:9100",
            "models": ["claude-*"],
            "credentials": {"env": "BENCH_KEY"},
            "operator": "Bench upstream",
            "jurisdiction": "US",
            "region": "local",
            "retention_days": 0,
            "trains_on_api_data": False,
            "dpa": True,
        }
    )
    creds = ep.credentials.model_copy(update={"api_key": SecretStr("bench-upstream-placeholder")})
    return ep.model_copy(update={"credentials": creds})


def request_stages() -> list[tuple[str, float, str]]:
    body = body_mod.build(False)
    secret, _key = new_key("bench", None)
    headers = [(k.encode(), v.encode()) for k, v in [*body_mod.CLAUDE_CODE_HEADERS, ("x-egress-key", secret)]]
    headers = [(b"host", b"127.0.0.1:8080"), (b"content-length", str(len(body)).encode()), *headers]
    # An OIDC access token of a typical size, already verified once (the agent's next request).
    token = ".".join(base64.urlsafe_b64encode(os.urandom(size)).rstrip(b"=").decode() for size in (60, 300, 256))
    oidc_headers = [*headers[:-1], (b"authorization", f"Bearer {token}".encode())]
    tokens = VerifiedTokenCache(entries=10_000, max_age_s=600)
    tokens.put(token, VerifiedToken("bench", None, "bench", None, time.time() + 3600, {}))
    ep = endpoint()
    catalog = Catalog((ep,))
    codec = APIS[Api.ANTHROPIC_MESSAGES]
    parsed = codec.parse_request(Api.ANTHROPIC_MESSAGES, body)
    policy = AllowServingEndpoints()
    client = identify(headers)
    facts = RequestFacts(
        api="anthropic.messages",
        model=parsed.model,
        stream=False,
        user="bench",
        team=None,
        client=client.name,
        session_id=client.session_id,
    )
    candidates = catalog.candidates(Api.ANTHROPIC_MESSAGES, parsed.model)
    decision = validate(policy.decide_now(policy_input(facts, (), candidates)), candidates, policy.revision)
    masked = Masker().apply(body, parsed, (), decision)

    def exchange() -> Exchange:
        x = Exchange(
            request_id=new_request_id(),
            method="POST",
            path="/v1/messages",
            query="",
            headers=headers,
            api=Api.ANTHROPIC_MESSAGES,
        )
        x.body = body
        x.client = client
        x.parsed = parsed
        x.decision = decision
        x.masked = masked
        x.endpoint_name = ep.name
        x.endpoint_jurisdiction = ep.jurisdiction
        x.endpoint_region = ep.region
        x.upstream_attempts = 1
        x.upstream_body = masked.body  # its SHA-256 is taken on the audit writer thread
        x.upstream_status = 200
        x.status = 200
        x.bytes_out = 420
        x.outcome = Outcome.FORWARDED
        x.finished_ns = time.perf_counter_ns()
        return x

    filled = exchange()
    entry = finalize(build_entry(filled))  # the writer thread's half: digest and canonical JSON

    async def timeout_ctx() -> None:
        async with asyncio.timeout(30.0):
            pass

    try:
        import uvloop

        loop = uvloop.new_event_loop()  # what `egress serve` runs on
    except ImportError:  # pragma: no cover
        loop = asyncio.new_event_loop()

    def in_loop_timeout() -> None:
        loop.run_until_complete(timeout_ctx())

    def noop_coro() -> None:
        async def nothing() -> None:
            return None

        loop.run_until_complete(nothing())

    async def create_and_cancel_task() -> None:
        async def waiter() -> None:
            await asyncio.sleep(3600)

        t = asyncio.create_task(waiter())
        await asyncio.sleep(0)
        t.cancel()
        try:
            await t
        except asyncio.CancelledError:
            pass

    def task_cycle() -> None:
        loop.run_until_complete(create_and_cancel_task())

    n = 2000
    rows: list[tuple[str, float, str]] = [
        ("new_request_id (secrets.token_hex)", per_call_us(new_request_id, n * 10), "gateway/asgi.py new_request_id"),
        ("Exchange(...) + fields", per_call_us(exchange, n * 10), "core/exchange.py Exchange"),
        (
            "identify (client from headers)",
            per_call_us(lambda: identify(headers), n * 10),
            "gateway/clients.py identify",
        ),
        (
            "find_gateway_key + sha256 of key",
            per_call_us(lambda: hash_key(find_gateway_key(headers)[0] or ""), n * 10),
            "gateway/auth.py find_gateway_key, hash_key",
        ),
        (
            "OIDC token: find (JWT shape) + verified-token cache hit",
            per_call_us(lambda: tokens.get(find_gateway_key(oidc_headers, accept_jwt=True)[0] or ""), n * 10),
            "gateway/auth.py find_gateway_key, identity/token_cache.py",
        ),
        ("orjson.loads (32 KB body)", per_call_us(lambda: orjson.loads(body), n), "wire/body.py load_object"),
        (
            "parse_request (loads + text segments)",
            per_call_us(lambda: codec.parse_request(Api.ANTHROPIC_MESSAGES, body), n),
            "wire/anthropic.py parse_request",
        ),
        (
            "catalog.candidates (fnmatch)",
            per_call_us(lambda: catalog.candidates(Api.ANTHROPIC_MESSAGES, parsed.model), n * 10),
            "route/catalog.py Catalog.candidates",
        ),
        (
            "policy_input + evaluate + validate (uuid4)",
            per_call_us(
                lambda: validate(policy.decide_now(policy_input(facts, (), candidates)), candidates, policy.revision),
                n * 10,
            ),
            "policy/decide.py policy_input, validate",
        ),
        (
            "masker.apply (nothing to mask)",
            per_call_us(lambda: Masker().apply(body, parsed, (), decision), n * 10),
            "mask/masker.py Masker.apply",
        ),
        (
            "sha256(body).hexdigest() (upstream_body_sha256)",
            per_call_us(lambda: hashlib.sha256(body).hexdigest(), n),
            "gateway/pipeline.py Pipeline._forward",
        ),
        (
            "upstream_headers (CIMultiDict)",
            per_call_us(lambda: upstream_headers(headers, ep, frozenset({b"x-egress-key"})), n * 10),
            "route/upstream.py upstream_headers",
        ),
        (
            "usage_from_body (small answer)",
            per_call_us(
                lambda: codec.usage_from_body(
                    b'{"type":"message","usage":{"input_tokens":8123,"output_tokens":21}}', filled.usage
                ),
                n * 10,
            ),
            "wire/anthropic.py usage_from_body",
        ),
        (
            "build_entry (audit record, sorted JSON)",
            per_call_us(lambda: build_entry(filled), n * 10),
            "audit/record.py build_entry",
        ),
        (
            "link (chain hash of one record)",
            per_call_us(lambda: link(GENESIS_HASH, entry.canonical), n * 10),
            "audit/chain.py link (writer thread)",
        ),
        (
            "asyncio.timeout() enter/exit (in a loop turn)",
            per_call_us(in_loop_timeout, n) - per_call_us(noop_coro, n),
            "gateway/body.py read_body",
        ),
        (
            "create_task + cancel (DisconnectWatch-like)",
            per_call_us(task_cycle, n) - per_call_us(noop_coro, n),
            "gateway/disconnect.py DisconnectWatch",
        ),
    ]
    loop.close()
    return rows


def audit_store(batches: tuple[int, ...] = (1, 32, 512), records: int = 2048) -> list[dict[str, Any]]:
    """Wall and thread-CPU time per record of SqlStore.append_audit, by batch size (fixed count)."""
    body = body_mod.build(False)
    entry_x = Exchange(
        request_id="egr_" + "0" * 24,
        method="POST",
        path="/v1/messages",
        query="",
        headers=[],
        api=Api.ANTHROPIC_MESSAGES,
    )
    entry_x.body = body
    base = finalize(build_entry(entry_x))
    out = []
    for batch in batches:
        with tempfile.TemporaryDirectory(prefix="egress-stages-") as tmp:
            store = open_store(f"sqlite:///{Path(tmp) / 'egress.db'}")
            store.migrate()
            entries = [dataclasses.replace(base, request_id=new_request_id()) for _ in range(records)]
            w0, c0 = time.perf_counter(), time.thread_time()
            for i in range(0, records, batch):
                store.append_audit(entries[i : i + batch], link)
            w1, c1 = time.perf_counter(), time.thread_time()
            store.close()
        out.append(
            {
                "batch": batch,
                "records": records,
                "record_bytes": len(base.canonical),
                "wall_us_per_record": round((w1 - w0) / records * 1e6, 1),
                "cpu_us_per_record": round((c1 - c0) / records * 1e6, 1),
                "commits_per_s": round(records / batch / (w1 - w0), 1),
            }
        )
    return out


@contextlib.contextmanager
def bench_config() -> Iterator[Any]:
    """A loaded egress Config like the benchmark's (one Anthropic endpoint, everything else default)."""
    from egress.config import load_config

    with tempfile.TemporaryDirectory(prefix="egress-stages-") as tmp:
        cfg = Path(tmp) / "egress.yaml"
        cfg.write_text(
            f"data_dir: {json.dumps(tmp + '/data')}\n"
            "providers:\n"
            "  - {name: bench-anthropic, api: anthropic, base_url: 'http://127.0.0.1:9', models: ['claude-*'],\n"
            "     credentials: {env: BENCH_KEY}, operator: Bench, jurisdiction: US, region: local,\n"
            "     retention_days: 0, trains_on_api_data: false, dpa: true}\n"
        )
        os.environ.setdefault("BENCH_KEY", "bench-upstream-placeholder")
        yield load_config(cfg)


def scan_stages(batches: int = 5, per_batch: int = 100) -> list[dict[str, Any]]:
    """The inspect stage as `egress serve` builds it (egress.app.build_scanner, default detection
    settings), on the benchmark body: everything seen before, only the newest turn new (what the
    benchmark's default "fresh" load sends), and nothing seen before."""
    import egress.app

    with bench_config() as config:
        build_scanner = getattr(egress.app, "build_scanner", None)
        if build_scanner is None:
            return [{"case": "this egress has no configurable scanner (no detectors)", "us": None}]
        scanner = build_scanner(config)
    codec = APIS[Api.ANTHROPIC_MESSAGES]
    body = body_mod.build(False)
    head, tail = body_mod.fresh_split(body)
    base = codec.parse_request(Api.ANTHROPIC_MESSAGES, body).prompt
    total_chars = sum(len(seg.text) for seg in base.segments)
    fresh_chars = next(len(seg.text) for seg in base.segments if body_mod.FRESH_MARK in seg.text)
    scanner.scan(base)  # now every text of the body has been seen once
    # Each request parses into new str objects, whose hashes are not computed yet: so must these.
    same = [codec.parse_request(Api.ANTHROPIC_MESSAGES, body).prompt for _ in range(per_batch)]
    t0 = time.perf_counter()
    for prompt in same:
        scanner.scan(prompt)
    seen = (time.perf_counter() - t0) / per_batch * 1e6
    n = 0
    fresh_best = cold_best = float("inf")
    cache = getattr(getattr(scanner, "text_scanner", None), "_cache", None)
    for _ in range(batches):
        prompts = []
        for _ in range(per_batch):
            n += 1
            numbered = b"%s%0*d%s" % (head, body_mod.FRESH_DIGITS, n, tail)
            prompts.append(codec.parse_request(Api.ANTHROPIC_MESSAGES, numbered).prompt)
        t0 = time.perf_counter()
        for prompt in prompts:
            scanner.scan(prompt)
        fresh_best = min(fresh_best, (time.perf_counter() - t0) / per_batch * 1e6)
        if cache is not None:
            t0 = time.perf_counter()
            for _ in range(20):
                cache.clear()
                scanner.scan(base)
            cold_best = min(cold_best, (time.perf_counter() - t0) / 20 * 1e6)
    rows = [
        {"case": f"every text seen before (cache hits; {total_chars:,} chars hashed)", "us": round(seen, 1)},
        {
            "case": f"newest tool result new ({fresh_chars:,} new chars of {total_chars:,})",
            "us": round(fresh_best, 1),
            "mb_per_s_of_new_text": round(fresh_chars / fresh_best, 1),
        },
    ]
    if cache is not None:
        rows.append(
            {
                "case": f"nothing seen before (cache cleared; {total_chars:,} chars)",
                "us": round(cold_best, 1),
                "mb_per_s": round(total_chars / cold_best, 1),
            }
        )
    return rows


def gc_cost() -> dict[str, Any]:
    """What one full garbage collection costs in a process holding a built gateway (the app from
    a config like the benchmark's, plus uvicorn and uvloop imported), before and after gc.freeze()."""
    import gc

    import uvicorn.protocols.http.httptools_impl  # noqa: F401 - loaded by `egress serve` too

    from egress.app import build_app

    with bench_config() as config:
        app = build_app(config)
        gc.collect()
        tracked = len(gc.get_objects())
        full = []
        for _ in range(3):
            t0 = time.perf_counter()
            gc.collect()
            full.append((time.perf_counter() - t0) * 1000)
        gc.freeze()
        t0 = time.perf_counter()
        gc.collect()
        frozen = (time.perf_counter() - t0) * 1000
        gc.unfreeze()
        del app
    return {
        "tracked_objects": tracked,
        "full_collection_ms": round(min(full), 2),
        "full_collection_ms_max": round(max(full), 2),
        "after_freeze_ms": round(frozen, 3),
        "thresholds": gc.get_threshold(),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--ref", help="import egress from this git ref (default: the working tree)")
    args = ap.parse_args()
    import egress

    print(f"egress from {Path(egress.__file__).parent.parent}" + (f" (git {args.ref})" if args.ref else ""))
    rows = request_stages()
    print("| stage (inspect: see the next tables) | µs per call | where (egress/) |\n|---|---:|---|")
    for name, us, where in rows:
        print(f"| {name} | {us:.1f} | {where} |")
    # orjson.loads is shown on its own but is part of parse_request: count it once.
    total = sum(us for name, us, _ in rows if not name.startswith("orjson.loads"))
    print(f"| **sum (orjson.loads counted once, inside parse_request)** | **{total:.1f}** | |")
    store = audit_store()
    print("\n| audit store: SQLite append_audit, batch of | wall µs/record | writer-thread CPU µs/record | commits/s |")
    print("|---:|---:|---:|---:|")
    for r in store:
        print(f"| {r['batch']} | {r['wall_us_per_record']} | {r['cpu_us_per_record']} | {r['commits_per_s']} |")
    scans = scan_stages()
    print("\n| inspect stage (egress.app.build_scanner, default detection) on the body | µs per request | MB/s |")
    print("|---|---:|---:|")
    for r in scans:
        mbs = r.get("mb_per_s_of_new_text") or r.get("mb_per_s") or ""
        print(f"| {r['case']} | {r['us']} | {mbs} |")
    gcs = gc_cost()
    print(
        f"\ngarbage collector: {gcs['tracked_objects']:,} tracked objects once the app is built; one full "
        f"collection takes {gcs['full_collection_ms']}–{gcs['full_collection_ms_max']} ms, "
        f"{gcs['after_freeze_ms']} ms after gc.freeze(); thresholds {gcs['thresholds']}"
    )
    if args.json:
        doc = {
            "stages": [{"stage": n, "us": round(u, 2), "where": w} for n, u, w in rows],
            "sum_us": round(total, 1),
            "audit_store": store,
            "inspect": scans,
            "gc": gcs,
        }
        args.json.write_text(json.dumps(doc, indent=2) + "\n")


if __name__ == "__main__":
    main()
