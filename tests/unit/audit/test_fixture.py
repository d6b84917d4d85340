"""A chain recorded by the real gateway before the audit record became a typed structure
(tests/fixtures/audit_chain, made by its make_chain.py): forwarded requests with their
write-ahead egress records, masked and recorded payloads, refusals, approval steps, signed
checkpoints and their anchor. It must verify for ever, and every reader must show it as it did."""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from egress.admin.records import row_of
from egress.app import open_configured_store
from egress.cli.main import main
from egress.config import load_config

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "audit_chain"
PUBLIC = FIXTURE / "audit-public.pem"
RECORDS = 12


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    data = tmp_path / "data"
    shutil.copytree(FIXTURE / "data", data)
    return {"EGRESS_DATA_DIR": str(data), "EGRESS_CONFIG": "", "COLUMNS": "200"}


def run(env: dict[str, str], *args: str) -> Result:
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


def test_the_recorded_chain_verifies_against_its_anchor(env):
    result = run(env, "audit", "verify", "--public-key", str(PUBLIC))
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"OK: {RECORDS} records verified"), result.output
    assert f"(records 1..{RECORDS} signed)" in result.output
    assert "Anchor " in result.output and "WARNING" not in result.output


def test_an_edited_record_in_the_recorded_chain_fails(env):
    db = Path(env["EGRESS_DATA_DIR"]) / "egress.db"
    data = db.read_bytes()
    assert data.count(b'"user":"bob"') >= 1
    db.write_bytes(data.replace(b'"user":"bob"', b'"user":"eve"', 1))
    result = run(env, "audit", "verify", "--public-key", str(PUBLIC))
    assert result.exit_code == 1 and "record content was altered" in result.output, result.output


@pytest.mark.parametrize(
    ("name", "what"), [("export-complete.jsonl", "complete export"), ("export-secret.jsonl", "filtered export")]
)
def test_the_recorded_exports_verify_offline(env, name, what):
    result = run(env, "audit", "verify", "--export", str(FIXTURE / name), "--public-key", str(PUBLIC))
    assert result.exit_code == 0, result.output
    assert f"records ({what}" in result.output and "OK:" in result.output


def _without_created(lines: list[bytes]) -> list[object]:
    header, *rest = lines
    doc = json.loads(header)
    del doc["export"]["created"]
    return [doc, *rest]


@pytest.mark.parametrize(
    ("name", "filters"), [("export-complete.jsonl", ()), ("export-secret.jsonl", ("--kind", "secret"))]
)
def test_exporting_the_recorded_chain_again_gives_the_same_lines(env, tmp_path, name, filters):
    out = tmp_path / name
    assert run(env, "audit", "export", "-o", str(out), *filters).exit_code == 0
    again = out.read_bytes().splitlines()
    recorded = (FIXTURE / name).read_bytes().splitlines()
    assert _without_created(again) == _without_created(recorded)


def test_the_csv_export_and_the_tail_read_the_records_as_before(env, tmp_path):
    out = tmp_path / "export.csv"
    assert run(env, "audit", "export", "--format", "csv", "-o", str(out)).exit_code == 0
    assert out.read_bytes() == (FIXTURE / "export.csv").read_bytes()
    tail = run(env, "audit", "tail", "-n", "50", "--format", "plain")
    assert tail.exit_code == 0 and tail.output == (FIXTURE / "audit-tail.txt").read_text()


def test_the_console_rows_read_the_records_as_before(env):
    store = open_configured_store(load_config(None, env=env))
    try:
        rows = [asdict(row_of(s)) for s in store.iter_audit()]
    finally:
        store.close()
    assert rows == json.loads((FIXTURE / "console-rows.json").read_text())


def test_replay_reads_the_record_as_before(env):
    request_id = (FIXTURE / "replay-request-id.txt").read_text().strip()
    result = run(env, "audit", "replay", request_id, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == json.loads((FIXTURE / "replay.json").read_text())
