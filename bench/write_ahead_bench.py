"""CPU per write-ahead egress record, in process: the working tree beside a git ref, alternating.

What a request pays for its write-ahead egress record (`audit.durability: before_forward`):
`WriteAhead.commit` builds the record, queues it, and awaits the commit of the batch holding it;
the audit writer thread finishes the record (SHA-256 of the 32 KB body, canonical JSON), extends
the chain and commits (SQLite, WAL, synchronous=FULL: one fsync per batch), then wakes the
requests' event loop. N producers (coroutines on one event loop, like one gateway worker) each
commit K records back to back, so with N=1 every batch holds one record and with N=8 up to 8.

CPU time, not wall time (the machine is shared): the event loop's thread (`time.thread_time`),
the writer thread (its pthread CPU clock) and the whole process (`time.process_time`, which also
counts the kernel's side of the fsync and the wake-ups), each per record. Commits per second and
the commit wait's p50 are wall time and so depend on the machine's load; they are reported, not
relied on.

Each variant runs in its own subprocess with its tree first on sys.path: the working tree ("A")
and `--compare REF` ("B", exported with git archive; the repository is untouched). Rounds
alternate A/B (odd rounds B first); medians of rounds are reported.

    .venv/bin/python bench/write_ahead_bench.py [--compare HEAD] [--producers 1,8] [--records 2000]
        [--rounds 5] [--sync-normal] [--breakdown] [--json FILE]

`--sync-normal` adds a variant: the working tree on SQLite with synchronous=NORMAL (no fsync at
commit: durable against a process kill, not against a power loss).

`--breakdown` also times the writer's pieces one by one in the working tree (record building,
the body's SHA-256, canonical JSON, the chain hash, the SQL insert and the commit with and
without the fsync) for batches of 1 and 8.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent


def _tree_from_argv(argv: Sequence[str]) -> Path:
    """The tree to import egress from (`--tree PATH`, a child's argument), default this one."""
    for i, arg in enumerate(argv):
        if arg == "--tree" and i + 1 < len(argv):
            return Path(argv[i + 1]).resolve()
    return REPO


TREE = _tree_from_argv(sys.argv)
sys.path.insert(0, str(TREE))  # before the editable install's finder

from egress.audit.chain import link  # noqa: E402
from egress.audit.record import AuditDraft, build_egress, finalize  # noqa: E402
from egress.audit.settings import AuditSettings  # noqa: E402
from egress.audit.writer import AuditWriter  # noqa: E402
from egress.core.exchange import (  # noqa: E402
    Action,
    Api,
    ClientInfo,
    Decision,
    Exchange,
    Outcome,
    ParsedRequest,
    Principal,
    Prompt,
)
from egress.core.records import AuditEntry  # noqa: E402
from egress.gateway.write_ahead import WriteAhead  # noqa: E402
from egress.store.sqlite import SqliteStore  # noqa: E402

BODY = b'{"model":"claude-sonnet-4-5","messages":[' + b"x" * 32700 + b"]}"


class CountingStore(SqliteStore):
    """The real SQLite store, counting its audit commits."""

    commits = 0

    def append_audit(self, entries: Sequence[AuditEntry], link: Callable[[str, bytes], str]) -> None:
        super().append_audit(entries, link)
        self.commits += 1


class NormalSyncStore(CountingStore):
    """SQLite with synchronous=NORMAL (WAL: no fsync at commit; durable against a process kill,
    not a power loss), set on the connection after the store's own pragmas."""

    def _connect(self) -> Any:
        conn = super()._connect()
        conn.cursor().execute("PRAGMA synchronous=NORMAL")
        return conn


class NoSyncStore(SqliteStore):
    """SQLite with synchronous=OFF (no fsync): the breakdown's commit without the disk wait."""

    def _connect(self) -> Any:
        conn = super()._connect()
        conn.cursor().execute("PRAGMA synchronous=OFF")
        return conn


def exchange(i: int) -> Exchange:
    """An attempt about to be forwarded, as the router has it when it writes the egress record."""
    x = Exchange(
        request_id=f"egr_{i:024x}",
        method="POST",
        path="/v1/messages",
        query="",
        headers=[],
        api=Api.ANTHROPIC_MESSAGES,
        started_ns=1_000_000,
        started_at=1_700_000_000.25 + i,
    )
    x.body = BODY
    x.principal = Principal(user="alice", team="platform", key_id="key_0123456789ab", method="gateway_key")
    x.client = ClientInfo(name="claude-code", user_agent="claude-cli/2.0.14 (external, cli)", session_id="5f0c3f0e")
    x.parsed = ParsedRequest(
        api=Api.ANTHROPIC_MESSAGES, model="claude-sonnet-4-5", stream=True, document={}, prompt=Prompt(())
    )
    x.decision = Decision(
        action=Action.ALLOW,
        endpoints=("anthropic",),
        mask_kinds=(),
        reasons=("team platform may use US endpoints",),
        decision_id="dec_0123456789ab",
        policy_revision="r1",
    )
    x.endpoint_name = "anthropic"
    x.endpoint_jurisdiction = "US"
    x.endpoint_region = "us-east-1"
    x.outcome = Outcome.FORWARDED
    return x


def thread_cpu(ident: int | None) -> float:
    assert ident is not None
    return time.clock_gettime(time.pthread_getcpuclockid(ident))


# --- one measured run (a child process) -----------------------------------------------------------


async def _produce(wa: WriteAhead, xs: list[Exchange], waits: list[float]) -> None:
    for x in xs:
        t = time.perf_counter()
        await wa.commit(x, BODY)
        waits.append(time.perf_counter() - t)


async def _run(wa: WriteAhead, producers: int, records: int, offset: int) -> list[float]:
    waits: list[float] = []
    per = records // producers
    await asyncio.gather(
        *(_produce(wa, [exchange(offset + p * per + k) for k in range(per)], waits) for p in range(producers))
    )
    return waits


def measure(producers: int, records: int, sync_normal: bool) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="wa-bench-") as tmp:
        store = (NormalSyncStore if sync_normal else CountingStore)(Path(tmp) / "egress.db")
        store.migrate()
        writer = AuditWriter(store, AuditSettings())
        writer.start()
        wa = WriteAhead(writer, 2.0)
        loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(_run(wa, producers, 200, 10_000_000))  # warm up
            writer_thread = writer._thread  # noqa: SLF001 - its CPU clock
            commits0 = store.commits
            w0, l0, p0, t0 = (
                thread_cpu(writer_thread.ident),
                time.thread_time(),
                time.process_time(),
                time.perf_counter(),
            )
            waits = loop.run_until_complete(_run(wa, producers, records, 0))
            t1, p1, l1, w1 = (
                time.perf_counter(),
                time.process_time(),
                time.thread_time(),
                thread_cpu(writer_thread.ident),
            )
            commits = store.commits - commits0
        finally:
            loop.close()
            writer.close()
            store.close()
    n = len(waits)
    waits.sort()
    return {
        "records": n,
        "loop_us": (l1 - l0) / n * 1e6,
        "writer_us": (w1 - w0) / n * 1e6,
        "process_us": (p1 - p0) / n * 1e6,
        "commits_per_s": commits / (t1 - t0),
        "records_per_commit": n / commits,
        "records_per_s": n / (t1 - t0),
        "wait_p50_ms": waits[n // 2] * 1e3,
        "wait_p99_ms": waits[int(n * 0.99)] * 1e3,
        "egress_from": str(Path(sys.modules["egress"].__file__ or "").parent.parent),
    }


# --- the breakdown (working tree) -----------------------------------------------------------------


def _per_op_us(fn: Callable[[], object], ops: int, clock: Callable[[], float] = time.thread_time) -> float:
    t = clock()
    for _ in range(ops):
        fn()
    return (clock() - t) / ops * 1e6


def breakdown(ops: int) -> dict[str, float]:
    x = exchange(1)
    draft = build_egress(x, BODY)
    entry = finalize(build_egress(x, BODY))
    digest = hashlib.sha256(BODY).hexdigest()
    out: dict[str, float] = {
        "build_egress (loop)": _per_op_us(lambda: build_egress(x, BODY), ops),
        "sha256 of 32 KB body": _per_op_us(lambda: hashlib.sha256(BODY).hexdigest(), ops),
        "canonical JSON": _per_op_us(lambda: draft.record.canonical(digest), ops),  # type: ignore[union-attr]
        "finalize (sha256 + canonical)": _per_op_us(lambda: finalize(AuditDraft(draft.record, BODY)), ops),
        "chain link (sha256)": _per_op_us(lambda: link("0" * 64, entry.canonical), ops),
    }
    with tempfile.TemporaryDirectory(prefix="wa-bench-") as tmp:
        for name, store in (
            ("fsync", SqliteStore(Path(tmp) / "full.db")),
            ("no fsync", NoSyncStore(Path(tmp) / "off.db")),
        ):
            store.migrate()
            for size in (1, 8):
                batch = [entry] * size
                n = max(ops // 10, 50)
                append = functools.partial(store.append_audit, batch, link)
                cpu = _per_op_us(append, n)
                wall = _per_op_us(append, n, time.perf_counter)
                out[f"append_audit batch {size}, {name}: CPU per batch"] = cpu
                out[f"append_audit batch {size}, {name}: wall per batch"] = wall
            store.close()
    return out


def loop_handoff(ops: int) -> dict[str, float]:
    """The event loop's side of one hand-off, in isolation: a future settled from another thread
    by call_soon_threadsafe (one per record, or one per batch of 8), awaited under wait_for."""
    out: dict[str, float] = {}

    async def per_record(n: int) -> None:
        loop = asyncio.get_running_loop()
        for _ in range(n // 8):
            futures = [loop.create_future() for _ in range(8)]

            def settle(fs: list[asyncio.Future[None]] = futures) -> None:
                for f in fs:
                    loop.call_soon_threadsafe(f.set_result, None)

            threading.Thread(target=settle).start()
            await asyncio.gather(*(asyncio.wait_for(f, 2.0) for f in futures))

    loop = asyncio.new_event_loop()
    try:
        t = time.thread_time()
        loop.run_until_complete(per_record(ops))
        out["8 futures, 8 call_soon_threadsafe, wait_for (per record, incl. thread start/8)"] = (
            (time.thread_time() - t) / ops * 1e6
        )
    finally:
        loop.close()
    return out


# --- the parent: A/B in alternating rounds --------------------------------------------------------


def export_ref(ref: str, tmp: Path) -> tuple[Path, str]:
    sha = subprocess.run(
        ["git", "rev-parse", "--short", ref], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.strip()
    src = tmp / f"ref-{sha}"
    archive = subprocess.run(["git", "archive", "--format=tar", sha], cwd=REPO, capture_output=True, check=True).stdout
    src.mkdir()
    subprocess.run(["tar", "-x", "-C", str(src)], input=archive, check=True)
    return src, sha


def child_run(tree: Path, producers: int, records: int, sync_normal: bool) -> dict[str, Any]:
    normal = ["--sync-normal"] if sync_normal else []
    proc = subprocess.run(
        [sys.executable, __file__, "--tree", str(tree), "--child", str(producers), "--records", str(records), *normal],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "PYTHONPATH": str(tree)},
    )
    if proc.returncode != 0:
        raise SystemExit(f"child failed ({tree}):\n{proc.stderr}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--compare", default="HEAD", help="git ref for B (default HEAD); 'none' runs A only")
    ap.add_argument("--producers", default="1,8", help="comma list of concurrent producers")
    ap.add_argument("--records", type=int, default=2000, help="records per run")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--breakdown", action="store_true")
    ap.add_argument(
        "--sync-normal", action="store_true", help="add a variant: the working tree with SQLite synchronous=NORMAL"
    )
    ap.add_argument("--json", type=Path)
    ap.add_argument("--tree", help=argparse.SUPPRESS)
    ap.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(measure(args.child, args.records, args.sync_normal)))
        return
    if not 1 <= args.rounds <= 21 or not 100 <= args.records <= 100_000:
        ap.error("keep it bounded: --rounds 1..21, --records 100..100000")
    report: dict[str, Any] = {"load": os.getloadavg(), "records": args.records, "rounds": args.rounds}
    if args.breakdown:
        report["breakdown_us"] = {**breakdown(2000), **loop_handoff(2000)}
        for name, us in report["breakdown_us"].items():
            print(f"{name:70s} {us:9.1f} µs")
    producers = [int(p) for p in args.producers.split(",")]
    with tempfile.TemporaryDirectory(prefix="wa-bench-ref-") as tmp:
        variants: list[tuple[str, Path, bool]] = [("A (working tree)", REPO, False)]
        if args.sync_normal:
            variants.append(("A, synchronous=NORMAL", REPO, True))
        if args.compare != "none":
            src, sha = export_ref(args.compare, Path(tmp))
            variants.append((f"B ({sha})", src, False))
        runs: dict[str, dict[int, list[dict[str, Any]]]] = {name: {p: [] for p in producers} for name, *_ in variants}
        for r in range(args.rounds):
            order = variants if r % 2 == 0 else variants[::-1]
            for p in producers:
                for name, tree, normal in order:
                    runs[name][p].append(child_run(tree, p, args.records, normal))
    keys = ("loop_us", "writer_us", "process_us", "records_per_commit", "commits_per_s", "records_per_s", "wait_p50_ms")
    print(f"load average at start: {report['load']}")
    print(f"{'variant':22s} {'N':>3s} " + " ".join(f"{k:>18s}" for k in keys))
    medians: dict[str, dict[str, dict[str, float]]] = {}
    for name, by_p in runs.items():
        medians[name] = {}
        for p, rs in by_p.items():
            med = {k: statistics.median(r[k] for r in rs) for k in keys}
            medians[name][str(p)] = med
            print(f"{name:22s} {p:3d} " + " ".join(f"{med[k]:18.1f}" for k in keys))
    report["medians"] = medians
    report["runs"] = {name: {str(p): rs for p, rs in by_p.items()} for name, by_p in runs.items()}
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
