"""Faults of the embedded SQLite store, made for real: a full disk (a small tmpfs under the data
dir) and another process holding `BEGIN EXCLUSIVE`. Each case: the client's native refusal,
nothing upstream, the audit afterwards, readiness, and recovery once the fault ends."""

from __future__ import annotations

import errno
import os
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from egress.gateway.auth import new_key
from egress.store.sqlite import SqliteStore
from tests.conftest import Running, start_gateway
from tests.support.faults import egress_digests, outcomes, post, readyz, received_digests, records, wait_for
from tests.support.gateway import write_config
from tests.support.simulator import UpstreamSimulator


@contextmanager
def small_filesystem(path: Path, size: str) -> Iterator[Path]:
    """A tmpfs of `size` mounted at `path` (0700); unmounted after. Fails loudly if it cannot be."""
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(path)], capture_output=True, text=True
    )
    if done.returncode != 0:
        pytest.fail(f"cannot mount a tmpfs for the disk-full test (needs root): {done.stderr.strip()}", pytrace=False)
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def fill(folder: Path) -> Path:
    """Write a file until the filesystem is full (ENOSPC), to the last block; return it."""
    filler = folder / "filler"
    fd = os.open(filler, os.O_CREAT | os.O_WRONLY, 0o600)
    try:
        for size in (65536, 512, 1):
            try:
                while True:
                    os.write(fd, b"\0" * size)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC, exc
    finally:
        os.close(fd)
    return filler


def start(tmp_path: Path, sim: UpstreamSimulator, **extra) -> Running:
    # Write-ahead on (whatever the default), unless a test says otherwise.
    extra["audit"] = {"durability": "before_forward", **extra.get("audit", {})}
    return start_gateway(write_config(tmp_path, sim.url, **extra))


def test_disk_full_refuses_forwards_nothing_and_recovers(upstream, tmp_path):
    with small_filesystem(tmp_path / "data", "6m") as data:
        gw = start(tmp_path, upstream, data_dir=str(data))
        try:
            assert post(gw.url, gw.key, 0).status == 200
            assert readyz(gw.url)[0] == 200
            before = len(upstream.received)
            filler = fill(data)

            # The write-ahead record cannot be committed: refused, nothing sent.
            first = post(gw.url, gw.key, 1)
            assert first.native and first.status == 503 and first.code in ("audit_unavailable", "gateway_not_ready")
            status, report = readyz(gw.url)
            assert status == 503 and "audit" in report["failing"]
            assert "SQLITE_FULL" in (report["checks"]["audit"]["last_error"] or "")
            refused = [first] + [post(gw.url, gw.key, n) for n in range(2, 6)]
            assert all(a.status == 503 and a.code == "gateway_not_ready" and a.native for a in refused[1:])
            assert len(upstream.received) == before  # nothing left while the audit could not be written

            # Space comes back: the writer's retry succeeds, readiness returns by itself.
            filler.unlink()
            wait_for(lambda: readyz(gw.url)[0] == 200, 15, "readiness after the disk has space again")
            assert post(gw.url, gw.key, 6).status == 200

            rows = records(gw.store)
            by_id = outcomes(rows)
            for answer in refused:  # every refusal was recorded once the disk had room
                assert by_id[answer.request_id]["outcome"] == "refused"
                assert by_id[answer.request_id]["error_code"] == answer.code
                assert by_id[answer.request_id]["upstream_attempts"] == 0
            # Every request upstream received has its egress record.
            assert set(received_digests(upstream)) <= egress_digests(rows)
            assert len(egress_digests(rows)) == len(upstream.received)
        finally:
            gw.stop()


HOLD_LOCK = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
sys.stdin.read()
conn.execute("COMMIT")
"""


@contextmanager
def exclusive_lock(db: Path) -> Iterator[None]:
    """Another process holds `BEGIN EXCLUSIVE` on the database until the block ends."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(db)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
        yield
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait(10)


def test_write_locked_store_refuses_within_bound_and_recovers(upstream, tmp_path):
    gw = start(tmp_path, upstream, store={"busy_timeout_ms": 300}, audit={"write_ahead_timeout_ms": 2000})
    try:
        assert post(gw.url, gw.key, 0).status == 200
        before = len(upstream.received)
        with exclusive_lock(tmp_path / "data" / "egress.db"):
            t0 = time.monotonic()
            first = post(gw.url, gw.key, 1)
            waited = time.monotonic() - t0
            assert first.native and first.status == 503 and first.code == "audit_unavailable"
            assert waited < 2.5  # bounded by busy_timeout (and at worst the write-ahead timeout)
            status, report = readyz(gw.url)
            assert status == 503 and "audit" in report["failing"]
            assert "SQLITE_BUSY" in (report["checks"]["audit"]["last_error"] or "")
            second = post(gw.url, gw.key, 2)
            assert second.status == 503 and second.code == "gateway_not_ready"
            assert len(upstream.received) == before
        wait_for(lambda: readyz(gw.url)[0] == 200, 15, "readiness after the lock is released")
        assert post(gw.url, gw.key, 3).status == 200
        rows = records(gw.store)
        by_id = outcomes(rows)
        assert by_id[first.request_id]["error_code"] == "audit_unavailable"
        assert by_id[second.request_id]["error_code"] == "gateway_not_ready"
        assert set(received_digests(upstream)) <= egress_digests(rows)
    finally:
        gw.stop()


RESPONSES = {
    "model": "gpt-5-codex",
    "stream": True,
    "input": [{"role": "user", "content": "deploy with AKIAQYLPMN5HHHFPZAM2 please"}],
}


def test_locked_vault_does_not_hold_a_stateful_answer(upstream, tmp_path):
    """After-response durability (no write-ahead wait): a stateful Responses answer whose vault
    write meets a write-locked store finishes within the vault bound, not the lock's duration."""
    gw = start(
        tmp_path,
        upstream,
        store={"busy_timeout_ms": 10_000},
        audit={"durability": "after_response"},
        masking={"vault_timeout_ms": 500},
    )
    try:
        with exclusive_lock(tmp_path / "data" / "egress.db"):
            t0 = time.monotonic()
            r = httpx.post(
                gw.url + "/v1/responses",
                json=RESPONSES,
                headers={"x-egress-key": gw.key, "authorization": "Bearer sk-client"},
                timeout=30,
            )
            elapsed = time.monotonic() - t0
            assert r.status_code == 200 and "response.completed" in r.text
            assert b"AKIAQYLPMN5HHHFPZAM2" not in upstream.received[-1].body  # masked: a vault write was due
            assert elapsed < 3.0, f"the answer waited {elapsed:.1f} s on the locked vault"
    finally:
        gw.stop()


def test_database_files_are_private(tmp_path):
    store = SqliteStore(tmp_path / "fresh" / "egress.db")
    store.migrate()
    store.create_key(new_key("a", None)[1])
    try:
        assert stat.S_IMODE((tmp_path / "fresh").stat().st_mode) == 0o700
        for name in ("egress.db", "egress.db-wal", "egress.db-shm"):
            assert stat.S_IMODE((tmp_path / "fresh" / name).stat().st_mode) == 0o600, name
    finally:
        store.close()


def test_existing_world_readable_database_is_tightened(tmp_path):
    path = tmp_path / "egress.db"
    path.write_bytes(b"")
    os.chmod(path, 0o644)
    SqliteStore(path).close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
