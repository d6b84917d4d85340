"""Crash test: `kill -9` of a real `egress serve` under load, then count.

A bounded load of requests carrying canary secrets runs against `egress serve` (SQLite; and
PostgreSQL with 2 worker processes); half-way the whole process group is killed with SIGKILL.
Then every request body the upstream simulator received (bytes left the gateway) must have its
durable write-ahead egress record in the store (0 missing), the chain must verify, and no canary
may be anywhere at rest. The counts are printed (docs/reliability.md reports them).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from egress.audit.chain import verify
from egress.config import default_cache_dir
from egress.gateway.auth import new_key
from egress.store.base import SqlStore
from egress.store.open import open_store
from tests.support.databases import throwaway_postgres
from tests.support.faults import egress_digests, outcomes, received_digests, records
from tests.support.gateway import SIM_ENV, free_port, write_config
from tests.support.simulator import UpstreamSimulator

EGRESS = [sys.executable, "-m", "egress"]
LOAD_S = 20.0  # the load's bound; the kill comes half-way
WORKERS = 8
# A canary secret: masked before it leaves, and never at rest in the audit.
CANARY_AWS = "AKIAQYLPMN5HHHFPZAM2"  # shaped like a real key (certain): masked


@dataclass
class Load:
    sent: int = 0
    completed: int = 0  # 200 answers fully read by the client
    refused: int = 0
    broken: int = 0  # connection errors (the kill)


def serve(tmp_path: Path, config: Path, workers: int) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {
        **os.environ,
        **SIM_ENV,
        "HOME": str(tmp_path),
        "XDG_CACHE_HOME": str(default_cache_dir(os.environ).parent),
    }
    proc = subprocess.Popen(
        [*EGRESS, "serve", "--config", str(config), "--port", str(port), "--workers", str(workers)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its own process group: the kill takes the workers too
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert proc.poll() is None, "egress serve exited before it was ready"
        try:
            if httpx.get(url + "/readyz", timeout=1).status_code == 200:
                return proc, url
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGKILL)
    raise AssertionError("egress serve did not become ready")


def run_load(url: str, key: str, stop: threading.Event) -> Load:
    load = Load()
    lock = threading.Lock()

    def worker(w: int) -> None:
        n = 0
        with httpx.Client(timeout=30) as client:
            while not stop.is_set():
                n += 1
                text = f"crash test {w}-{n}: deploy with {CANARY_AWS}"
                with lock:
                    load.sent += 1
                try:
                    r = client.post(
                        url + "/v1/messages",
                        json={"model": "claude-sonnet-4-5", "max_tokens": 10, "messages": [{"role": "user", "content": text}]},
                        headers={"x-egress-key": key, "anthropic-version": "2023-06-01"},
                    )
                except httpx.TransportError:
                    with lock:
                        load.broken += 1
                    time.sleep(0.05)
                    continue
                with lock:
                    if r.status_code == 200:
                        load.completed += 1
                    else:
                        load.refused += 1

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(WORKERS)]
    for t in threads:
        t.start()
    stop.wait(LOAD_S)
    stop.set()
    for t in threads:
        t.join(60)
    return load


def crash_and_count(tmp_path: Path, sim: UpstreamSimulator, store_url: str, workers: int) -> None:
    config = write_config(
        tmp_path,
        sim.url,
        store={"url": store_url},
        server={"workers": workers},
        auth={"key_refresh_s": 1},
        audit={"durability": "before_forward"},
    )
    seed: SqlStore = open_store(store_url)
    seed.migrate()
    secret, key = new_key("crash", None)
    seed.create_key(key)
    seed.close()

    proc, url = serve(tmp_path, config, workers)
    stop = threading.Event()
    outcome: list[Load] = []
    loader = threading.Thread(target=lambda: outcome.append(run_load(url, secret, stop)))
    try:
        loader.start()
        time.sleep(LOAD_S / 2)
        os.killpg(proc.pid, signal.SIGKILL)  # mid-load: no shutdown, no flush
        proc.wait(10)
        stop.set()
        loader.join(90)
    finally:
        stop.set()
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    (load,) = outcome
    time.sleep(0.5)  # let the simulator finish recording what was in flight

    store = open_store(store_url)
    try:
        stored = list(store.iter_audit())
        rows = records(store)
    finally:
        store.close()
    received = received_digests(sim)
    written = egress_digests(rows)
    missing = [d for d in received if d not in written]
    by_id = outcomes(rows)
    intents = {r["request_id"] for r in rows if r.get("type") == "egress"}
    no_outcome = intents - set(by_id)
    report = verify(stored)
    print(
        f"\ncrash test ({store_url.split(':', 1)[0]}, {workers} worker(s)): sent {load.sent}, completed {load.completed}, "
        f"refused {load.refused}, broken by the kill {load.broken}; upstream received {len(received)}; "
        f"egress records {len(written)}, missing {len(missing)}; outcome records {len(by_id)}; "
        f"egress records without an outcome (in flight at the kill) {len(no_outcome)}; chain ok {report.ok}"
    )
    assert load.completed > 50 and len(received) >= load.completed
    assert missing == [], f"{len(missing)} of {len(received)} requests reached upstream with no egress record"
    assert report.ok, report.first_break
    # Masked before leaving; never at rest in the audit.
    for request in sim.received:
        assert CANARY_AWS.encode() not in request.body
    dump = b"".join(r.entry.canonical for r in stored)
    assert CANARY_AWS.encode() not in dump
    verified = subprocess.run(
        [*EGRESS, "audit", "verify", "--config", str(config)],
        env={**os.environ, **SIM_ENV, "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    print(f"egress audit verify: rc {verified.returncode}: {(verified.stdout + verified.stderr).strip()[-400:]}")
    assert verified.returncode == 0, verified.stdout + verified.stderr


@pytest.fixture
def pg_url() -> Iterator[str]:
    with throwaway_postgres() as url:
        yield url


def test_kill_9_under_load_sqlite(upstream, tmp_path):
    crash_and_count(tmp_path, upstream, f"sqlite:///{tmp_path / 'data' / 'egress.db'}", workers=1)
    db = tmp_path / "data" / "egress.db"
    for path in (db, db.with_name("egress.db-wal")):
        if path.exists():
            data = path.read_bytes()
            assert CANARY_AWS.encode() not in data


def test_kill_9_under_load_postgres_two_workers(upstream, tmp_path, pg_url):
    crash_and_count(tmp_path, upstream, pg_url, workers=2)
