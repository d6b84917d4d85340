"""`kill -9` of a real `egress serve` while it delivers the audit to a SIEM, then a restart: the
delivery resumes from the persisted cursor. Nothing is lost; what comes twice is at most the
batch whose acknowledgement the killed process never recorded; the copy verifies against the
checkpoints."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import httpx
import orjson
from prometheus_client.parser import text_string_to_metric_families

from egress.audit.checkpoint import Signer, load_or_create_signing_key
from egress.audit.settings import AuditSettings
from egress.audit.writer import AuditWriter
from egress.config import default_cache_dir, load_config
from egress.siem.copy import verify_copy
from egress.store.open import open_migrated, open_store
from tests.support.gateway import SIM_ENV, free_port, write_config
from tests.support.siem_receivers import HttpReceiver, wait_until
from tests.unit.audit.test_chain import entry

N = 1000
BATCH = 50
METRICS_TOKEN = "siem-metrics-token"


def egress_cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **SIM_ENV, "HOME": str(tmp_path), "HEC_TOKEN": "crash-token"}
    return subprocess.run([sys.executable, "-m", "egress", *args], env=env, capture_output=True, text=True, timeout=60)


def serve(tmp_path: Path, config: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {
        **os.environ,
        **SIM_ENV,
        "HOME": str(tmp_path),
        "XDG_CACHE_HOME": str(default_cache_dir(os.environ).parent),
        "HEC_TOKEN": "crash-token",
        "METRICS_TOKEN": METRICS_TOKEN,
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "egress", "serve", "--config", str(config), "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert proc.poll() is None, "egress serve exited before it was ready"
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return proc, f"http://127.0.0.1:{port}"
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGKILL)
    raise AssertionError("egress serve did not become ready")


def test_kill_9_during_delivery_resumes_from_the_cursor(tmp_path: Path) -> None:
    receiver = HttpReceiver(hec_token="crash-token", delay_s=0.1).start()
    sink = {
        "name": "splunk",
        "type": "http",
        "format": "splunk_hec",
        "url": receiver.url,
        "token_env": "HEC_TOKEN",
        # A short lease: the restarted process takes over from the killed one within 2 s.
        "delivery": {"batch_size": BATCH, "poll_interval_s": 0.05, "timeout_s": 1, "lease_ttl_s": 2},
    }
    path = write_config(
        tmp_path,
        "http://127.0.0.1:9",
        siem={"sinks": [sink]},
        metrics={"enabled": True, "token_env": "METRICS_TOKEN"},
    )
    config = load_config(path, env=SIM_ENV)
    # The chain, written before the gateway starts, signed with the key the gateway will use.
    store = open_migrated(config.store_url, config.resolved_data_dir, config.store)
    writer = AuditWriter(
        store,
        AuditSettings(max_batch=100, checkpoint_every=100),
        Signer(load_or_create_signing_key(config.audit_signing_key_file)),
    )
    writer.start()
    for i in range(1, N + 1):
        writer.submit(entry(i))
    writer.close()
    store.close()

    proc, _ = serve(tmp_path, path)
    try:
        wait_until(lambda: len(receiver.hec) >= 300, 60, "delivery under way")
        os.killpg(proc.pid, signal.SIGKILL)  # mid-delivery: no shutdown, no lease release
        proc.wait(10)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    time.sleep(0.3)  # a batch in flight is answered (and lost to the killed process)
    store = open_store(config.store_url)
    try:
        cursor = store.siem_cursor("splunk")
        assert cursor is not None and cursor.owner is not None  # the killed process still names it
        received = {d.seq for d in receiver.hec}
        assert 0 < cursor.seq < N, "the kill came before the end of the delivery"
        assert received >= set(range(1, cursor.seq + 1))  # the cursor never passes an unacknowledged record
        assert max(received) - cursor.seq <= BATCH  # at most the batch in flight is ahead of it

        proc, url = serve(tmp_path, path)
        try:
            wait_until(lambda: {d.seq for d in receiver.hec} >= set(range(1, N + 1)), 60, "the rest delivered")
            wait_until(lambda: (store.siem_cursor("splunk") or cursor).seq == N, 10, "the cursor at the end")
            # The restarted process's own figures, on the gateway's /metrics.
            page = httpx.get(url + "/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}, timeout=5)
            assert page.status_code == 200
            families = {f.name: f for f in text_string_to_metric_families(page.text)}
            delivered = families["egress_siem_delivered_records"].samples
            assert [(s.labels, s.value) for s in delivered if s.name.endswith("_total")] == [
                ({"sink": "splunk"}, N - cursor.seq)
            ]
            lag = [s.value for s in families["egress_siem_lag_records"].samples]
            assert lag == [0]
        finally:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
        copy = list(receiver.hec)
        seqs = Counter(d.seq for d in copy)
        assert sorted(seqs) == list(range(1, N + 1))
        assert sum(c - 1 for c in seqs.values()) <= BATCH  # only the batch the kill interrupted
        checkpoints = [cp for cp in store.list_checkpoints() if cp.seq <= N]
        report = verify_copy(copy, checkpoints, load_or_create_signing_key(config.audit_signing_key_file).public_key())
        assert report.ok, report.breaks
        assert report.covered_seq == N

        # The operator's way: the SIEM's events as JSON lines, checked by `egress siem verify`.
        copy_file = tmp_path / "siem-copy.jsonl"
        copy_file.write_bytes(b"\n".join(orjson.dumps({"event": doc}) for doc in receiver.hec_documents))
        verified = egress_cli(tmp_path, "siem", "verify", "--config", str(path), str(copy_file))
        assert verified.returncode == 0, verified.stdout + verified.stderr
        assert f"{N} records (SIEM copy) verified" in verified.stdout
        edited = copy_file.read_bytes().replace(b'"req_17"', b'"req_71"', 1)
        copy_file.write_bytes(edited)
        broken = egress_cli(tmp_path, "siem", "verify", "--config", str(path), str(copy_file))
        assert broken.returncode != 0 and "BROKEN at record 17" in broken.stdout
        status = egress_cli(tmp_path, "siem", "status", "--config", str(path))
        assert f"splunk (http): acknowledged through record {N} of {N}, 0 behind" in status.stdout
    finally:
        store.close()
        receiver.close()
