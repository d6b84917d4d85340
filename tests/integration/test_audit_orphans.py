"""`egress audit verify` reports orphan egress records: a process writes real audit records
through the gateway's writer (one request finished, one retried and finished, one with only its
write-ahead egress record committed) and is killed with SIGKILL before the last request's own
record. The chain still verifies; the report names that request, as information, and nothing
from its body."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from egress.cli.main import main

# A canary in the killed request's body: never in the audit, never in the report.
CANARY = "AKIAQYLPMN5HHHFPZAM2"

WRITER = f"""
import asyncio, os, signal
from egress.app import open_configured_store
from egress.audit.record import build_egress, build_entry
from egress.audit.settings import AuditSettings
from egress.audit.writer import AuditWriter
from egress.config import load_config
from egress.core.exchange import Api, Exchange, Outcome

config = load_config(None)
store = open_configured_store(config)
# No checkpoints: a kill while appending one to the anchor would be a (true) break of its own.
writer = AuditWriter(store, AuditSettings(flush_interval_ms=1))
writer.start()


def exchange(request_id):
    x = Exchange(request_id=request_id, method="POST", path="/v1/messages", query="", headers=[],
                 api=Api.ANTHROPIC_MESSAGES)
    x.body = b'{{"messages": [{{"role": "user", "content": "key {CANARY}"}}]}}'
    x.endpoint_name, x.endpoint_jurisdiction = "anthropic", "US"
    return x


def finished(request_id, attempts):
    x = exchange(request_id)
    for _ in range(attempts):
        writer.submit(build_egress(x, b"masked body"))
        x.upstream_attempts += 1
    x.status, x.outcome = 200, Outcome.FORWARDED
    writer.submit(build_entry(x))


async def killed_after_egress():
    await writer.submit_ahead(build_egress(exchange("req_killed"), b"masked body"))
    print("egress record committed", flush=True)
    os.kill(os.getpid(), signal.SIGKILL)  # before the outcome record: as kill -9 mid-request


finished("req_done", 1)
finished("req_retried", 2)
asyncio.run(killed_after_egress())
"""


def test_verify_names_the_request_killed_after_its_egress_record(tmp_path: Path):
    env = {"EGRESS_DATA_DIR": str(tmp_path / "data"), "EGRESS_CONFIG": ""}
    proc = subprocess.run(
        [sys.executable, "-c", WRITER],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert "egress record committed" in proc.stdout

    result = CliRunner().invoke(main, ["audit", "verify", "--no-anchor"], env=env, catch_exceptions=False)

    assert result.exit_code == 0, result.output
    assert result.output.startswith("OK: 6 records verified"), result.output
    assert "Orphan egress records: 1 requests (1 egress records)" in result.output
    assert "  request req_killed: 1 attempt, last egress record 6\n" in result.output
    assert "req_done" not in result.output and "req_retried" not in result.output
    assert CANARY not in result.output
    db = (tmp_path / "data" / "egress.db").read_bytes()
    assert CANARY.encode() not in db


def test_a_chain_whose_requests_all_ended_reports_no_orphans(tmp_path: Path):
    env = {"EGRESS_DATA_DIR": str(tmp_path / "data"), "EGRESS_CONFIG": ""}
    writer = WRITER.replace("asyncio.run(killed_after_egress())", 'writer.close(); print("closed")')
    proc = subprocess.run(
        [sys.executable, "-c", writer],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert proc.returncode == 0, proc.stderr

    result = CliRunner().invoke(main, ["audit", "verify", "--no-anchor"], env=env, catch_exceptions=False)

    assert result.exit_code == 0, result.output
    assert result.output.startswith("OK: 5 records verified"), result.output
    assert "Orphan" not in result.output
