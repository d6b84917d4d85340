"""`egress audit verify|export|public-key` on a real SQLite store tampered with directly, and
exports checked offline with only the public key."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from egress.app import open_configured_store
from egress.audit.anchor import FileAnchor
from egress.audit.checkpoint import Signer, load_or_create_signing_key, public_pem
from egress.audit.record import AuditDraft
from egress.audit.settings import AuditSettings
from egress.audit.writer import AuditWriter
from egress.cli.main import main
from egress.config import load_config

USERS = ("alice", "bob", "carol")


def record(i: int) -> AuditDraft:
    """Record i: users, teams, endpoints, finding kinds and decisions vary with i; ts = 1000 + i."""
    user = USERS[i % 3]
    return AuditDraft(
        {
            "request_id": f"req_{i}",
            "ts": 1_700_000_000.0 + i,
            "user": user,
            "team": "payments" if user == "bob" else "platform",
            "api": "anthropic.messages",
            "endpoint": "mistral-eu" if i % 4 == 0 else "anthropic",
            "jurisdiction": "FR" if i % 4 == 0 else "US",
            "outcome": "forwarded",
            "status": 200,
            "findings": {"total": 1, "kinds": {"secret": 1}} if i % 5 == 0 else {"total": 0, "kinds": {}},
            "decision": {"action": "mask" if i % 5 == 0 else "allow"},
        },
        None,
    )


@dataclass
class Audit:
    env: dict[str, str]
    db: Path
    data: Path

    def run(self, *args: str) -> Result:
        return CliRunner().invoke(main, ["audit", *args], env=self.env, catch_exceptions=False)

    def sql(self, statement: str, params: tuple = ()) -> None:
        db = sqlite3.connect(self.db)
        db.execute(statement, params)
        db.commit()
        db.close()


@pytest.fixture
def audit(tmp_path: Path) -> Iterator[Audit]:
    """60 records with checkpoints every 10, written by the gateway's writer with its own key."""
    env = {"EGRESS_DATA_DIR": str(tmp_path / "data"), "EGRESS_CONFIG": ""}
    config = load_config(None, env=env)
    store = open_configured_store(config)
    settings = AuditSettings(flush_interval_ms=1, max_batch=10, checkpoint_every=10)
    signer = Signer(load_or_create_signing_key(config.audit_signing_key_file))
    writer = AuditWriter(store, settings, signer, anchors=[FileAnchor(config.audit_checkpoint_log)])
    writer.start()
    for i in range(1, 61):
        writer.submit(record(i))
    writer.close()
    store.close()
    yield Audit(env, tmp_path / "data" / "egress.db", tmp_path / "data")


def test_clean_audit_verifies(audit):
    result = audit.run("verify")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("OK: 60 records verified") and "(records 1..60 signed)" in result.output
    assert "; uncovered tail: 0 records" in result.output


def test_records_after_the_last_checkpoint_are_named(audit):
    config = load_config(None, env=audit.env)
    store = open_configured_store(config)
    writer = AuditWriter(store, AuditSettings(flush_interval_ms=1))  # no signer: no checkpoint
    writer.start()
    for i in range(61, 66):
        writer.submit(record(i))
    writer.close()
    store.close()
    result = audit.run("verify")
    assert result.exit_code == 0
    assert "(records 1..60 signed; records 61..65 not covered by a checkpoint yet)" in result.output
    assert "; uncovered tail: 5 records" in result.output


SWAP = (
    "UPDATE audit_log SET seq = -1 WHERE seq = 31; UPDATE audit_log SET seq = 31 WHERE seq = 32;"
    " UPDATE audit_log SET seq = 32 WHERE seq = -1"
)


@pytest.mark.parametrize(
    ("tamper", "named"),
    [
        ("UPDATE audit_log SET record = replace(record, 'alice', 'mallory') WHERE seq = 6", "record 6 (request req_6)"),
        ("DELETE FROM audit_log WHERE seq = 20", "record 21 (request req_21): records 20..20 are missing"),
        (
            "INSERT INTO audit_log SELECT 61, request_id, ts, user_name, team, api, endpoint, jurisdiction,"
            " outcome, status, record, hash, hash FROM audit_log WHERE seq = 60",
            "record 61",
        ),
        (SWAP, "record 31 (request req_32): previous-hash link"),
        ("DELETE FROM audit_log WHERE seq > 45", "records 46..60 are missing"),
        (
            "UPDATE audit_checkpoints SET hash = (SELECT hash FROM audit_log WHERE seq = 29) WHERE seq = 30",
            "checkpoint at record 30",
        ),
        ("UPDATE audit_checkpoints SET ts = ts + 1 WHERE seq = 50", "signature does not verify"),
    ],
    ids=["edit", "delete", "insert", "reorder", "truncate", "forge-hash", "forge-time"],
)
def test_tampering_fails_verify_and_names_it(audit, tamper, named):
    for statement in tamper.split(";"):
        audit.sql(statement)
    result = audit.run("verify")
    assert result.exit_code == 1
    assert f"BROKEN at {named}" in result.output or named in result.output, result.output
    assert "FAILED:" in result.output


def test_checkpoint_by_another_key_fails_verify(audit):
    other = Signer(Ed25519PrivateKey.generate())
    head = sqlite3.connect(audit.db).execute("SELECT hash FROM audit_log WHERE seq = 55").fetchone()[0]
    cp = other.sign(55, head, 1.0)
    audit.sql(
        "INSERT INTO audit_checkpoints (seq, key_id, hash, count, ts, signature) VALUES (?, ?, ?, ?, ?, ?)",
        (cp.seq, cp.key_id, cp.hash, cp.count, cp.ts, cp.signature),
    )
    result = audit.run("verify")
    assert result.exit_code == 1 and f"signed by key '{other.key_id}'" in result.output


def export(audit: Audit, path: Path, *filters: str) -> Path:
    result = audit.run("export", "-o", str(path), *filters)
    assert result.exit_code == 0, result.output
    return path


def public_key(audit: Audit, path: Path) -> Path:
    result = audit.run("public-key", "-o", str(path))
    assert result.exit_code == 0
    assert path.read_bytes().startswith(b"-----BEGIN PUBLIC KEY-----")
    assert audit.run("public-key").output == path.read_text()
    return path


def test_complete_export_verifies_offline_and_tampering_fails(audit, tmp_path):
    key = public_key(audit, tmp_path / "egress-audit.pem")
    file = export(audit, tmp_path / "all.jsonl")
    lines = file.read_bytes().splitlines()
    assert json.loads(lines[0])["export"]["complete"] is True
    assert sum(b'"checkpoint"' in line for line in lines) == 6
    audit.db.unlink()  # offline: no database needed
    ok = audit.run("verify", "--export", str(file), "--public-key", str(key))
    assert ok.exit_code == 0 and ok.output.startswith("OK: 60 records (complete export) verified"), ok.output

    edited = tmp_path / "edited.jsonl"
    edited.write_bytes(file.read_bytes().replace(b'"user":"alice"', b'"user":"eve"', 1))
    bad = audit.run("verify", "--export", str(edited), "--public-key", str(key))
    assert bad.exit_code == 1 and "BROKEN at record 3 (request req_3): record content was altered" in bad.output

    truncated = tmp_path / "truncated.jsonl"
    truncated.write_bytes(b"\n".join(line for line in lines if b'"seq":60}' not in line) + b"\n")
    cut = audit.run("verify", "--export", str(truncated), "--public-key", str(key))
    assert cut.exit_code == 1 and "records 60..60 are missing" in cut.output

    wrong = tmp_path / "wrong.pem"
    wrong.write_bytes(public_pem(Ed25519PrivateKey.generate()))
    refused = audit.run("verify", "--export", str(file), "--public-key", str(wrong))
    assert refused.exit_code == 1 and "not by the given public key" in refused.output


def test_filtered_export_selects_and_verifies_what_it_can(audit, tmp_path):
    key = public_key(audit, tmp_path / "k.pem")
    file = export(
        audit,
        tmp_path / "bob-secrets.jsonl",
        "--user",
        "bob",
        "--kind",
        "secret",
        "--decision",
        "mask",
        "--since",
        "2023-11-14T22:13:30Z",
    )
    lines = [json.loads(line) for line in file.read_bytes().splitlines()]
    header, rows = lines[0]["export"], [x for x in lines if "record" in x]
    assert header["complete"] is False and header["filters"]["user"] == "bob"
    # bob: i % 3 == 1; a secret finding: i % 5 == 0; since 1700000010 (i >= 10)
    assert [x["seq"] for x in rows] == [10, 25, 40, 55]
    # Each record is proven against the checkpoint whose span holds it; only those are exported.
    assert {x["proof"]["seq"]: x["proof"]["checkpoint_seq"] for x in lines if "proof" in x} == {
        10: 10,
        25: 30,
        40: 40,
        55: 60,
    }
    assert {x["checkpoint"]["seq"] for x in lines if "checkpoint" in x} == {10, 30, 40, 60}
    ok = audit.run("verify", "--export", str(file), "--public-key", str(key))
    assert ok.exit_code == 0 and "filtered export" in ok.output, ok.output
    assert "4 proven members of the signed log" in ok.output, ok.output

    edited = tmp_path / "edited.jsonl"
    edited.write_bytes(file.read_bytes().replace(b'"jurisdiction":"US"', b'"jurisdiction":"DE"', 1))
    bad = audit.run("verify", "--export", str(edited), "--public-key", str(key))
    assert bad.exit_code == 1 and "BROKEN at record 10" in bad.output

    fr = export(audit, tmp_path / "fr.jsonl", "--jurisdiction", "FR", "--until", "2023-11-14T22:13:41")
    seqs = [json.loads(x)["seq"] for x in fr.read_bytes().splitlines()[1:] if b'"record"' in x]
    assert seqs == [4, 8, 12, 16, 20]
    as_csv = audit.run("export", "--format", "csv", "--endpoint", "mistral-eu", "--team", "payments")
    assert [row.split(",")[0] for row in as_csv.output.splitlines()[1:]] == ["4", "16", "28", "40", "52"]
