"""`egress serve` and the other commands, as separate processes on real sockets."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import anthropic
import httpx
import openai
import pytest

from egress.config import default_cache_dir
from tests.support.gateway import SIM_ENV, free_port, write_config

EGRESS = [sys.executable, "-m", "egress"]


def run(args: list[str], env: dict, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([*EGRESS, *args], env=env, capture_output=True, text=True, timeout=60, **kw)


def wait_ready(url: str, proc: subprocess.Popen, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"egress serve exited: {proc.stdout.read() if proc.stdout else ''}")
        try:
            if httpx.get(url + "/readyz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError("egress serve did not become ready")


def start_serve(env: dict, *args: str) -> tuple[subprocess.Popen, str]:
    """`egress serve` on a free port, once it reports ready."""
    port = free_port()
    proc = subprocess.Popen(
        [*EGRESS, "serve", *args, "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    wait_ready(url, proc)
    return proc, url


@pytest.fixture
def env(tmp_path: Path) -> dict:
    # The compiled rule prefilter is cached outside the temporary HOME, so each test does not
    # recompile it (seconds) on start.
    cache = default_cache_dir(os.environ).parent
    return {
        **os.environ,
        **SIM_ENV,
        "HOME": str(tmp_path),
        "EGRESS_DATA_DIR": str(tmp_path / "data"),
        "XDG_CACHE_HOME": str(cache),
    }


def test_serve_on_embedded_defaults_prints_agent_setup_and_first_key(env, tmp_path):
    port = free_port()
    proc = subprocess.Popen(
        [*EGRESS, "serve", "--port", str(port)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        wait_ready(f"http://127.0.0.1:{port}", proc)
        assert httpx.head(f"http://127.0.0.1:{port}/api/hello").status_code == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode in (0, -signal.SIGTERM)  # uvicorn re-raises the signal after a clean shutdown
    assert f"export ANTHROPIC_BASE_URL=http://127.0.0.1:{port}" in out
    assert f'base_url = "http://127.0.0.1:{port}/v1"' in out and 'wire_api = "responses"' in out
    assert f"export OPENAI_BASE_URL=http://127.0.0.1:{port}/v1" in out
    key = out.split("store it now): ", 1)[1].split()[0]
    assert key.startswith("egk_") and f'ANTHROPIC_CUSTOM_HEADERS="x-egress-key: {key}"' in out
    # Only the key's hash is stored.
    db = sqlite3.connect(tmp_path / "data" / "egress.db")
    assert key not in str(db.execute("SELECT * FROM gateway_keys").fetchall())
    # A second start does not mint another key.
    listed = run(["keys", "list"], env)
    assert listed.returncode == 0 and listed.stdout.count("active") == 1


def test_keys_sdk_traffic_sigterm_flush_and_audit_commands(env, tmp_path, upstream):
    config = write_config(tmp_path, upstream.url, audit={"flush_interval_ms": 2000})  # records wait in memory
    created = run(["keys", "create", "--user", "carol", "--team", "payments", "--config", str(config)], env)
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip()
    assert key.startswith("egk_") and "created key_" in created.stderr
    proc, url = start_serve(env, "--config", str(config))
    try:
        client = anthropic.Anthropic(base_url=url, api_key="sk-ant-own", default_headers={"x-egress-key": key})
        for _ in range(5):
            message = client.messages.create(
                model="claude-sonnet-4-5", max_tokens=10, messages=[{"role": "user", "content": "hi"}]
            )
            assert message.content[0].text == "Hello there!"
        oai = openai.OpenAI(base_url=url + "/v1", api_key=key)
        text = "".join(
            c.choices[0].delta.content or ""
            for c in oai.chat.completions.create(
                model="gpt-4o", messages=[{"role": "user", "content": "hi"}], stream=True
            )
            if c.choices
        )
        assert text.startswith("I'm unable to provide real-time weather")
    finally:
        proc.send_signal(signal.SIGTERM)  # records are still queued (2 s group commit): none may be lost
        proc.communicate(timeout=30)
    assert proc.returncode in (0, -signal.SIGTERM)  # uvicorn re-raises the signal after a clean shutdown

    verified = run(["audit", "verify", "--config", str(config)], env)
    # Each forwarded request: its write-ahead egress record (committed before upstream got a byte),
    # then its own record with the outcome.
    assert verified.returncode == 0 and verified.stdout.startswith("OK: 12 records verified")
    assert "1 checkpoints verified (records 1..12 signed)" in verified.stdout

    tail = run(["audit", "tail", "-n", "3", "--json", "--config", str(config)], env)
    records = [json.loads(line) for line in tail.stdout.splitlines()]
    assert len(records) == 3 and records[-1]["api"] == "openai.chat_completions"
    assert records[-2]["type"] == "egress" and records[-2]["request_id"] == records[-1]["request_id"]
    assert {r["user"] for r in records} == {"carol"} and {r["team"] for r in records} == {"payments"}

    exported = run(["audit", "export", "--format", "jsonl", "--config", str(config)], env)
    lines = [json.loads(x) for x in exported.stdout.splitlines()]
    assert lines[0]["export"]["complete"] is True and lines[-1]["checkpoint"]["seq"] == 12  # signed at shutdown
    lines = [x for x in lines if "record" in x]
    assert [x["seq"] for x in lines] == list(range(1, 13))
    assert [x["record"].get("type") == "egress" for x in lines] == [True, False] * 6
    assert all(x["record"]["outcome"] == "forwarded" for x in lines[1::2])
    as_csv = run(["audit", "export", "--format", "csv", "--config", str(config)], env)
    rows = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert len(rows) == 12 and rows[0]["endpoint"] == "sim-anthropic" and rows[0]["jurisdiction"] == "US"

    # No secret anywhere: not in the database, the export, or the server's output.
    db_bytes = (tmp_path / "data" / "egress.db").read_bytes()
    for secret in (key, "sk-ant-own", SIM_ENV["SIM_ANTHROPIC_KEY"], SIM_ENV["SIM_OPENAI_KEY"]):
        assert secret.encode() not in db_bytes and secret not in exported.stdout

    # Tampering is caught by the command, which names the record.
    db = sqlite3.connect(tmp_path / "data" / "egress.db")
    db.execute("UPDATE audit_log SET record = replace(record, 'carol', 'mallory') WHERE seq = 3")
    db.commit()
    broken = run(["audit", "verify", "--config", str(config)], env)
    assert broken.returncode == 1 and "BROKEN at record 3" in broken.stdout

    revoke_id = run(["keys", "list", "--config", str(config)], env).stdout.split("key_", 1)[1].split()[0]
    assert run(["keys", "revoke", f"key_{revoke_id}", "--config", str(config)], env).returncode == 0
    assert run(["keys", "revoke", f"key_{revoke_id}", "--config", str(config)], env).returncode == 1


def test_serve_with_several_workers_shares_one_chain(env, tmp_path, upstream):
    config = write_config(tmp_path, upstream.url)
    key = run(["keys", "create", "--user", "dan", "--config", str(config)], env).stdout.strip()
    proc, url = start_serve(env, "--config", str(config), "--workers", "2")
    try:
        with httpx.Client() as client:
            for _ in range(30):
                r = client.post(
                    url + "/v1/messages",
                    json={"model": "claude-x", "max_tokens": 5, "messages": []},
                    headers={"x-egress-key": key},
                    timeout=10,
                )
                assert r.status_code == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
    verified = run(["audit", "verify", "--config", str(config)], env)
    # 30 requests, each with its write-ahead egress record: 60 records on one chain.
    assert verified.stdout.startswith("OK: 60 records verified"), verified.stdout
