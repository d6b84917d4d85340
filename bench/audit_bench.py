"""The tamper-evident audit's costs, on a real SQLite file in a temporary folder.

1. Records/s through the group-commit writer (`AuditWriter`, default settings: 20 ms, 512 per
   batch) with signed checkpoints off and on, side by side, alternating, in one run.
2. The cost of one checkpoint: signing; reading the head + storing it (v1, for comparison); and
   a v2 checkpoint as the writer thread makes it, with the Merkle root of its 1,000-record span
   read back from the store (`egress.audit.writer.sign_checkpoint`), and that root alone.
3. `egress audit verify` on a clean chain of N records (default 100,000) with a v2 checkpoint
   every 1,000 (every span root recomputed): reading the rows, the whole verification; an export
   of it verified offline; and a filtered export (one record in ten) with its inclusion proofs,
   written and verified offline.

    .venv/bin/python bench/audit_bench.py [--records 20000] [--verify 100000] [--json FILE]

Bounded: every measurement is a fixed number of records.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey  # noqa: E402

from egress.audit.chain import link  # noqa: E402
from egress.audit.checkpoint import Signer  # noqa: E402
from egress.audit.export import ExportFilter, export_jsonl, read_export, verify_export  # noqa: E402
from egress.audit.merkle import leaf_hash, merkle_root  # noqa: E402
from egress.audit.record import AuditDraft, finalize  # noqa: E402
from egress.audit.settings import AuditSettings  # noqa: E402
from egress.audit.spans import SpanRootCheck  # noqa: E402
from egress.audit.verify import verify_audit  # noqa: E402
from egress.audit.writer import AuditWriter, sign_checkpoint  # noqa: E402
from egress.core.records import AuditEntry  # noqa: E402
from egress.store.sqlite import SqliteStore  # noqa: E402


def record(i: int) -> AuditEntry:
    """A record shaped like the gateway's (record v2, a forwarded request with findings), ~1.3 KB."""
    return finalize(
        AuditDraft(
            {
                "v": 2,
                "request_id": f"egr_{i:024d}",
                "ts": 1_700_000_000.0 + i / 100,
                "user": "bob" if i % 10 == 0 else "alice",  # bob: the filtered export's one in ten
                "team": "platform",
                "key_id": "key_0123456789ab",
                "auth": "gateway_key",
                "client": "claude-code",
                "user_agent": "claude-cli/2.0.14 (external, cli)",
                "session_id": "5f0c3f0e-6a55-4f43-9d0c-2a3cf1b0e4a1",
                "api": "anthropic.messages",
                "method": "POST",
                "path": "/v1/messages",
                "model": "claude-sonnet-4-5",
                "stream": True,
                "endpoint": "anthropic",
                "translated_from": None,
                "jurisdiction": "US",
                "region": "us-east-1",
                "upstream_attempts": 1,
                "upstream_status": 200,
                "status": 200,
                "outcome": "forwarded",
                "error_code": None,
                "error_stage": None,
                "bytes_in": 32768,
                "bytes_out": 2048,
                "upstream_body_sha256": "ab" * 32,
                "usage": {
                    "input_tokens": 8123,
                    "output_tokens": 21,
                    "cache_read_tokens": 8000,
                    "cache_write_tokens": 0,
                },
                "latency_ms": {"total": 812.5, "upstream": 812.1, "gateway": 0.4},
                "findings": {"total": 2, "kinds": {"secret": 2}, "rules": {"aws-access-token": 1, "stripe-key": 1}},
                "decision": {
                    "id": "dec_0123456789abcdef",
                    "action": "mask",
                    "endpoints": ["anthropic"],
                    "reasons": ["secrets are masked before they leave"],
                    "obligations": [],
                    "policy_revision": "sha256:0123456789abcdef",
                    "candidates": ["anthropic", "bedrock-eu"],
                    "shadow": None,
                },
                "masked": {
                    "count": 2,
                    "values": [
                        {"kind": "secret", "rule": "aws-access-token", "hash": "h" * 16, "occurrences": 1},
                        {"kind": "secret", "rule": "stripe-key", "hash": "k" * 16, "occurrences": 1},
                    ],
                    "rewritten": True,
                },
            },
            None,
        )
    )


def writer_run(folder: Path, entries: list[AuditEntry], signer: Signer | None, every: int) -> dict[str, Any]:
    store = SqliteStore(folder / f"w-{time.monotonic_ns()}.db")
    store.migrate()
    writer = AuditWriter(store, AuditSettings(checkpoint_every=every), signer)
    writer.start()
    t0 = time.perf_counter()
    for e in entries:
        writer.submit(e)  # the request path's whole share of the audit
    t1 = time.perf_counter()
    writer.close()
    wall = time.perf_counter() - t0
    assert writer.written == len(entries) and store.audit_count() == len(entries)
    cps = len(store.list_checkpoints())
    store.close()
    return {"records_per_s": len(entries) / wall, "submit_us": (t1 - t0) / len(entries) * 1e6, "checkpoints": cps}


def throughput(folder: Path, n: int, rounds: int) -> dict[str, Any]:
    """Alternating off / every 1000 / every 100, `rounds` times; the median of each."""
    entries = [record(i) for i in range(n)]
    signer = Signer(Ed25519PrivateKey.generate())
    modes: dict[str, tuple[Signer | None, int]] = {
        "checkpoints off": (None, 1000),
        "checkpoint every 1000": (signer, 1000),
        "checkpoint every 100": (signer, 100),
    }
    results: dict[str, list[dict[str, Any]]] = {m: [] for m in modes}
    for _ in range(rounds):
        for mode, (s, every) in modes.items():
            results[mode].append(writer_run(folder, entries, s, every))
    return {
        mode: {
            "records_per_s": statistics.median(r["records_per_s"] for r in runs),
            "submit_us": statistics.median(r["submit_us"] for r in runs),
            "all": [round(r["records_per_s"]) for r in runs],
            "checkpoints": runs[0]["checkpoints"],
        }
        for mode, runs in results.items()
    }


def per_call_us(fn: Callable[[], Any], n: int) -> float:
    best = float("inf")
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        best = min(best, (time.perf_counter() - t0) / n)
    return best * 1e6


def checkpoint_cost(folder: Path) -> dict[str, float]:
    store = SqliteStore(folder / "cp.db")
    store.migrate()
    store.append_audit([record(i) for i in range(1000)], link)
    signer = Signer(Ed25519PrivateKey.generate())
    seq = [1000]

    def one_checkpoint() -> None:
        head = store.audit_head()
        assert head is not None
        seq[0] += 1  # a new (seq, key) each time, as a real checkpoint of a longer chain
        store.append_checkpoint(signer.sign(seq[0], head[1], time.time()))

    out = {
        "sign_us": per_call_us(lambda: signer.sign(1000, "ab" * 32, 1.0), 200),
        "head_sign_store_us": per_call_us(one_checkpoint, 50),
    }
    store.close()
    out.update(span_checkpoint_cost(folder, signer))
    return out


def span_checkpoint_cost(folder: Path, signer: Signer, span: int = 1000, rounds: int = 20) -> dict[str, float]:
    """A v2 checkpoint as the writer thread signs it after `span` new records: read the head and
    the highest stored checkpoint, read the span's (seq, hash) pairs back, build the Merkle root,
    sign, store. Each round appends `span` records first (not timed)."""
    store = SqliteStore(folder / "span.db")
    store.migrate()
    times, roots = [], []
    for r in range(rounds):
        store.append_audit([record(r * span + i) for i in range(span)], link)
        head = store.audit_head()
        assert head is not None
        t0 = time.perf_counter()
        cp = sign_checkpoint(store, signer, head)
        times.append(time.perf_counter() - t0)
        assert cp is not None and cp.first == r * span + 1 and cp.seq == (r + 1) * span
        pairs = list(store.iter_audit_hashes(cp.first, cp.seq))
        t0 = time.perf_counter()
        merkle_root([leaf_hash(seq, digest) for seq, digest in pairs])
        roots.append(time.perf_counter() - t0)
    store.close()
    return {
        "span_checkpoint_us": statistics.median(times) * 1e6,
        "span_checkpoint_max_us": max(times) * 1e6,
        "span_root_only_us": statistics.median(roots) * 1e6,
    }


def verification(folder: Path, n: int) -> dict[str, float]:
    store = SqliteStore(folder / "verify.db")
    store.migrate()
    key = Ed25519PrivateKey.generate()
    signer = Signer(key)
    for start in range(0, n, 1000):
        store.append_audit([record(i) for i in range(start, min(start + 1000, n))], link)
        head = store.audit_head()
        assert head is not None
        assert sign_checkpoint(store, signer, head) is not None  # v2: the span root is checked too
    out: dict[str, float] = {"records": n, "db_mb": (folder / "verify.db").stat().st_size / 1e6}
    t0 = time.perf_counter()
    rows = sum(1 for _ in store.iter_audit())
    out["read_rows_s"] = time.perf_counter() - t0
    assert rows == n
    t0 = time.perf_counter()
    report = verify_audit(store.iter_audit(), store.list_checkpoints(), key.public_key())
    out["verify_s"] = time.perf_counter() - t0
    assert report.ok and report.chain.checked == n and report.covered_seq == n, report.breaks
    # The part of it that v2 checkpoints add: every span root recomputed (a leaf and ~1 node
    # hash per record), over pairs already in memory.
    pairs = [(r.seq, r.hash) for r in store.iter_audit()]
    spans = SpanRootCheck(store.list_checkpoints())
    t0 = time.perf_counter()
    for seq, digest in pairs:
        spans.feed(seq, digest)
    out["span_roots_s"] = time.perf_counter() - t0
    assert spans.checked == n // 1000 and not spans.mismatches
    t0 = time.perf_counter()
    path = folder / "export.jsonl"
    with path.open("wb") as f:
        for line in export_jsonl(store.iter_audit(), store.list_checkpoints(), ExportFilter(), time.time()):
            f.write(line)
    out["export_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    with path.open("rb") as f:
        exported = read_export(f)
    assert verify_export(exported, key.public_key()).ok
    out["verify_export_s"] = time.perf_counter() - t0
    out["export_mb"] = path.stat().st_size / 1e6
    out.update(filtered(folder, store, key))
    store.close()
    return out


def filtered(folder: Path, store: SqliteStore, key: Ed25519PrivateKey) -> dict[str, float]:
    """One record in ten (user bob) exported with inclusion proofs, then verified offline."""
    path = folder / "bob.jsonl"
    t0 = time.perf_counter()
    with path.open("wb") as f:
        for line in export_jsonl(store.iter_audit(), store.list_checkpoints(), ExportFilter(user="bob"), time.time()):
            f.write(line)
    out = {"filtered_export_s": time.perf_counter() - t0, "filtered_mb": path.stat().st_size / 1e6}
    t0 = time.perf_counter()
    with path.open("rb") as f:
        exported = read_export(f)
    report = verify_export(exported, key.public_key())
    out["filtered_verify_s"] = time.perf_counter() - t0
    assert report.ok and report.membership is not None, report.breaks
    assert report.membership.proven == len(exported.records) == len(exported.proofs) > 0
    out["filtered_records"] = len(exported.records)
    out["proof_path_avg"] = sum(len(p.path) for p in exported.proofs) / len(exported.proofs)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=20_000, help="records per writer run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--verify", type=int, default=100_000, help="records in the chain to verify")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    print(f"record size: {len(record(0).canonical)} bytes (canonical JSON)")
    with tempfile.TemporaryDirectory(prefix="egress-audit-bench-") as tmp:
        folder = Path(tmp)
        rates = throughput(folder, args.records, args.rounds)
        print(
            f"\n| writer, {args.records} records, SQLite, group commit | records/s (median) | runs "
            "| submit µs/record (request path) | checkpoints |"
        )
        print("|---|---:|---|---:|---:|")
        for mode, r in rates.items():
            print(f"| {mode} | {r['records_per_s']:,.0f} | {r['all']} | {r['submit_us']:.2f} | {r['checkpoints']} |")
        cost = checkpoint_cost(folder)
        print(
            f"\none checkpoint: sign {cost['sign_us']:.0f} µs; head + sign + store {cost['head_sign_store_us']:.0f} µs; "
            f"v2 with the root of a 1,000-record span read from the store {cost['span_checkpoint_us']:.0f} µs "
            f"(max {cost['span_checkpoint_max_us']:.0f} µs; the root alone {cost['span_root_only_us']:.0f} µs)"
        )
        ver = verification(folder, args.verify)
    print(
        f"\nverify {ver['records']:,} records ({ver['db_mb']:.0f} MB database), {ver['records'] // 1000} checkpoints: "
        f"{ver['verify_s']:.2f} s (of which reading rows {ver['read_rows_s']:.2f} s, "
        f"recomputing the span roots {ver['span_roots_s']:.2f} s); "
        f"export {ver['export_s']:.2f} s ({ver['export_mb']:.0f} MB), offline verify of it {ver['verify_export_s']:.2f} s"
        f"\nfiltered export of {ver['filtered_records']:,} records with inclusion proofs "
        f"(path {ver['proof_path_avg']:.1f} hashes on average): {ver['filtered_export_s']:.2f} s "
        f"({ver['filtered_mb']:.0f} MB), offline verify of it {ver['filtered_verify_s']:.2f} s"
    )
    if args.json:
        args.json.write_text(json.dumps({"throughput": rates, "checkpoint": cost, "verify": ver}, indent=2))


if __name__ == "__main__":
    main()
