"""`egress serve --workers 2` with metrics: each worker counts in its own files
(PROMETHEUS_MULTIPROC_DIR, made by `egress serve` for this run), and any scrape, whichever worker
or the supervisor's listener answers it, sums them: the counts equal the audit's, also after a
worker is killed and replaced (its counters stay, its live gauges go), and the directory is
removed when the server stops.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import orjson
from prometheus_client.mmap_dict import MmapedDict

from egress.app import open_configured_store
from egress.config import load_config
from tests.integration.test_metrics import TOKEN, expected, metrics_config, request_records, scrape, send_traffic
from tests.integration.test_serve_cli import env, run, start_serve  # noqa: F401 - the fixture
from tests.support.gateway import SIM_ENV, free_port
from tests.support.processes import worker_processes
from tests.support.simulator import UpstreamSimulator

__all__ = ["env"]


def audit_requests(config: Path, expect: int, timeout: float = 10.0) -> list[dict[str, Any]]:
    store = open_configured_store(load_config(config, env=SIM_ENV))
    try:
        deadline = time.monotonic() + timeout
        while True:
            records = request_records([orjson.loads(r.entry.canonical) for r in store.iter_audit()])
            if len(records) >= expect or time.monotonic() > deadline:
                return records
            time.sleep(0.05)
    finally:
        store.close()


def metrics_dir(data: Path) -> Path:
    found = list(data.glob("metrics-*"))
    assert len(found) == 1, found
    return found[0]


def file_pids(directory: Path, prefix: str) -> set[int]:
    return {int(p.stem.rsplit("_", 1)[1]) for p in directory.glob(f"{prefix}_*.db")}


def requests_counted_by(directory: Path) -> dict[int, float]:
    """egress_requests_total as each worker's own counter file holds it (by pid)."""
    counted: dict[int, float] = {}
    for path in directory.glob("counter_*.db"):
        mmap = MmapedDict(str(path), read_mode=True)
        try:
            total = sum(v for k, v, _ in mmap.read_all_values() if json.loads(k)[1] == "egress_requests_total")
        finally:
            mmap.close()
        counted[int(path.stem.rsplit("_", 1)[1])] = total
    return counted


def assert_counts_equal_audit(samples: dict[str, Counter[Any]], records: list[dict[str, Any]]) -> None:
    for name, counts in expected(records).items():
        got = {labels: value for labels, value in samples.get(name, Counter()).items() if value}
        assert got == dict(counts), name


def traffic(url: str, key: str, rounds: int) -> int:
    """Fresh SDK clients (fresh connections) each round, so both workers take requests."""
    return sum(send_traffic(url, key) for _ in range(rounds))


def wait_workers(pid: int, count: int, timeout: float = 60.0) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        workers = worker_processes(pid)
        if len(workers) == count:
            return workers
        time.sleep(0.1)
    raise AssertionError(f"expected {count} workers, found {worker_processes(pid)}")


def stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=30)


def test_two_workers_sum_on_the_gateway_port_and_survive_a_killed_worker(env, tmp_path, sim: UpstreamSimulator):  # noqa: F811
    env = {**env, "EGRESS_TEST_METRICS_TOKEN": TOKEN}
    config = metrics_config(tmp_path, sim.url)
    key = run(["keys", "create", "--user", "dan", "--team", "payments", "--config", str(config)], env).stdout.strip()
    proc, url = start_serve(env, "--config", str(config), "--workers", "2")
    try:
        workers = wait_workers(proc.pid, 2)
        directory = metrics_dir(tmp_path / "data")
        # Until both workers have counted requests, each in its own file (the kernel picks which
        # worker accepts a connection; fresh clients make fresh connections): bounded.
        sent = traffic(url, key, rounds=2)
        for _ in range(10):
            if all(requests_counted_by(directory).get(pid) for pid in workers):
                break
            sent += traffic(url, key, rounds=1)
        records = audit_requests(config, sent)
        assert len(records) == sent
        counted = requests_counted_by(directory)
        assert set(counted) == set(workers) and all(counted.values()), counted
        assert sum(counted.values()) == sent  # each request counted once, by the worker that served it
        for _ in range(4):  # whichever worker answers, the same sums
            assert_counts_equal_audit(scrape(url + "/metrics"), records)
        assert httpx.get(url + "/metrics", timeout=10).status_code == 401

        # A worker killed outright: replaced; its live gauges dropped, its counts kept.
        victim = workers[0]
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 60
        while victim in worker_processes(proc.pid) or len(worker_processes(proc.pid)) < 2:
            assert time.monotonic() < deadline, "the killed worker was not replaced"
            time.sleep(0.1)
        deadline = time.monotonic() + 10
        while victim in file_pids(directory, "gauge_livesum"):
            assert time.monotonic() < deadline, "the dead worker's live gauges were not dropped"
            time.sleep(0.1)
        assert victim in file_pids(directory, "counter")
        more = sent + traffic(url, key, rounds=1)
        records = audit_requests(config, more)
        assert len(records) == more
        assert_counts_equal_audit(scrape(url + "/metrics"), records)
    finally:
        stop(proc)
    assert not list((tmp_path / "data").glob("metrics-*")), "the multiprocess directory outlived the server"


def test_separate_listener_serves_every_worker_and_the_gateway_port_does_not(env, tmp_path, sim: UpstreamSimulator):  # noqa: F811
    env = {**env, "EGRESS_TEST_METRICS_TOKEN": TOKEN}
    port = free_port()
    config = metrics_config(tmp_path, sim.url, listen=f"127.0.0.1:{port}")
    key = run(["keys", "create", "--user", "dan", "--config", str(config)], env).stdout.strip()
    proc, url = start_serve(env, "--config", str(config), "--workers", "2")
    try:
        sent = traffic(url, key, rounds=2)
        records = audit_requests(config, sent)
        assert len(records) == sent
        assert_counts_equal_audit(scrape(f"http://127.0.0.1:{port}/metrics"), records)
        # With a token configured, the listener asks for it too.
        assert httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).status_code == 401
        assert httpx.get(url + "/metrics", headers={"authorization": f"Bearer {TOKEN}"}, timeout=10).status_code == 404
    finally:
        stop(proc)
