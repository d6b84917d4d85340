"""Run `egress serve` with one or more pieces of its request path switched off, to measure what
each piece costs end to end (an ablation). For measurement only: it monkeypatches egress inside
this process; nothing in egress/ is changed, and a gateway run this way is NOT fit for use
(it may skip the audit, for one).

    python bench/ablate.py audit-off,watch-off serve --config egress.yaml --port 8080

Switches:
  audit-off     no audit record is built or queued (no build_entry, no SQLite writes)
  audit-nodb    records are built and queued, the writer thread runs, but nothing is written
  audit-sync-normal  SQLite with synchronous=NORMAL instead of FULL (WAL still on)
  audit-sleep   the audit writer thread sleeps one flush interval, then drains the queue without
                blocking on it, so submitting a record never wakes it (one wake-up per batch
                instead of one per record); records are still built, queued and written
  watch-off     no DisconnectWatch task per request
  write-ahead-off  no write-ahead egress record before forwarding (as audit.durability: after_response)
  sha-off       no SHA-256 of the forwarded body or of a recorded answer on the audit writer thread
                (upstream_body_sha256 and response_sha256 are constants)
  timeout-off   no asyncio.timeout() around the body read
  switch-1ms    sys.setswitchinterval(0.001) (the GIL is handed over sooner)
  gc-freeze     changes nothing: `egress serve` freezes what start-up built (egress.app.freeze_after_start)
                since that measurement; kept so older result files' switch lists still run
  gc-off        gc.disable() once the app is built and frozen (measurement only: no cyclic garbage
                collection at all)
  mask-off      the built-in policy instead of Rego, masking nothing (findings are still made and recorded)
  policy-builtin  the built-in policy (allow, mask masking.kinds) instead of the bundled Rego policy
  gc-stats      changes nothing; counts garbage collections by generation and their time, and
                prints one line `gc-stats {json}` to stderr at exit
  gc-garbage    keeps what the collector frees (gc.DEBUG_SAVEALL) and prints, at exit, one line
                `gc-garbage {json}`: the most common types of cyclic garbage (memory grows: short runs)
"""

from __future__ import annotations

import sys
from typing import Any

SWITCHES = (
    "audit-off",
    "audit-nodb",
    "audit-sync-normal",
    "audit-sleep",
    "watch-off",
    "write-ahead-off",
    "sha-off",
    "timeout-off",
    "switch-1ms",
    "gc-freeze",
    "gc-off",
    "gc-stats",
    "gc-garbage",
    "mask-off",
    "policy-builtin",
)


def apply(names: set[str]) -> None:
    unknown = names - set(SWITCHES)
    if unknown:
        sys.exit(f"unknown switches: {', '.join(sorted(unknown))} (known: {', '.join(SWITCHES)})")
    import egress.gateway.body as body_stage
    import egress.gateway.pipeline as pipeline
    import egress.gateway.write_ahead as write_ahead

    if "mask-off" in names or "policy-builtin" in names:
        import egress.app as app
        from egress.policy.decide import AllowServingEndpoints

        masks = "mask-off" not in names
        app.load_policy_engine = lambda config: AllowServingEndpoints(config.masking.kinds if masks else ())  # type: ignore[assignment]
    if "write-ahead-off" in names:

        async def _no_write_ahead(self: Any, x: Any, body: bytes) -> None:
            return None

        write_ahead.WriteAhead.commit = _no_write_ahead  # type: ignore[method-assign]
    if "audit-off" in names:
        from egress.audit.writer import AuditWriter

        pipeline.build_entry = lambda x: None  # type: ignore[assignment]
        AuditWriter.submit = lambda self, entry: None  # type: ignore[method-assign]
    if "audit-nodb" in names:
        from egress.store.base import SqlStore

        SqlStore.append_audit = lambda self, entries, link: None  # type: ignore[method-assign]
    if "audit-sync-normal" in names:
        from egress.store import sqlite as sqlite_store

        original = sqlite_store.SqliteStore._connect

        def _connect(self: Any) -> Any:
            conn = original(self)
            conn._conn.execute("PRAGMA synchronous=NORMAL")
            return conn

        sqlite_store.SqliteStore._connect = _connect  # type: ignore[method-assign]
    if "audit-sleep" in names:
        import queue
        import time

        from egress.audit import writer as writer_mod

        def _run(self: Any) -> None:
            settings = self._settings
            stopping = False
            while not stopping:
                time.sleep(settings.flush_interval_s)  # bounded: exits once _STOP is drained
                while True:
                    batch = []
                    while len(batch) < settings.max_batch:
                        try:
                            item = self._queue.get_nowait()
                        except queue.Empty:
                            break
                        if item is writer_mod.STOP:
                            stopping = True
                            break
                        batch.append(item)
                    if batch:
                        self._write(batch, final=stopping)
                    if stopping or len(batch) < settings.max_batch:
                        break

        writer_mod.AuditWriter._run = _run  # type: ignore[method-assign]
    if "watch-off" in names:

        class NoWatch:
            disconnected = False

            def __init__(self, receive: Any, task: Any, responder: Any) -> None:
                pass

            def disarm(self) -> None:
                pass

        pipeline.DisconnectWatch = NoWatch  # type: ignore[assignment,misc]
    if "sha-off" in names:
        import types

        import egress.audit.record as audit_record

        class _Digest:
            def update(self, data: bytes) -> None:
                pass

            def hexdigest(self) -> str:
                return "0" * 64

        audit_record.hashlib = types.SimpleNamespace(sha256=lambda data=b"": _Digest())  # type: ignore[assignment]
    if "timeout-off" in names:
        import asyncio
        import contextlib
        import types

        body_stage.asyncio = types.SimpleNamespace(  # type: ignore[assignment]
            **{k: getattr(asyncio, k) for k in dir(asyncio) if not k.startswith("__")},
        )
        body_stage.asyncio.timeout = lambda delay: contextlib.nullcontext()  # type: ignore[attr-defined]
    if "switch-1ms" in names:
        sys.setswitchinterval(0.001)
    if "gc-stats" in names:
        import atexit
        import gc
        import json
        import time

        stats = {"collections": [0, 0, 0], "seconds": [0.0, 0.0, 0.0], "max_ms": [0.0, 0.0, 0.0]}
        started: list[float] = [0.0]

        def on_gc(phase: str, info: dict[str, int]) -> None:
            if phase == "start":
                started[0] = time.perf_counter()
                return
            gen = info["generation"]
            took = time.perf_counter() - started[0]
            stats["collections"][gen] += 1
            stats["seconds"][gen] += took
            stats["max_ms"][gen] = max(stats["max_ms"][gen], took * 1000)

        gc.callbacks.append(on_gc)

        def report() -> None:
            stats["tracked_objects"] = len(gc.get_objects())
            stats["threshold"] = gc.get_threshold()
            print("gc-stats " + json.dumps(stats), file=sys.stderr, flush=True)

        atexit.register(report)
    if "gc-garbage" in names:
        import atexit
        import collections
        import gc
        import json

        gc.set_debug(gc.DEBUG_SAVEALL)

        def garbage_report() -> None:
            gc.collect()
            kinds = collections.Counter(type(o).__qualname__ for o in gc.garbage)
            print(
                "gc-garbage " + json.dumps({"objects": len(gc.garbage), "top": kinds.most_common(25)}),
                file=sys.stderr,
                flush=True,
            )

        atexit.register(garbage_report)
    if "gc-off" in names:
        import gc

        import egress.app
        import egress.cli.serve

        freeze = egress.app.freeze_after_start

        def freeze_then_disable(app: Any) -> Any:
            frozen = freeze(app)
            gc.disable()
            return frozen

        # `egress serve` (one worker) and its worker processes (create_app_from_env) both call it.
        egress.cli.serve.freeze_after_start = freeze_then_disable  # type: ignore[assignment]
        egress.app.freeze_after_start = freeze_then_disable  # type: ignore[assignment]


def main() -> None:
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    names = {n for n in sys.argv[1].split(",") if n}
    apply(names)
    from egress.cli.main import main as egress_main

    sys.argv = ["egress", *sys.argv[2:]]
    sys.exit(egress_main())


if __name__ == "__main__":
    main()
