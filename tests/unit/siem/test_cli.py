"""`egress siem verify` offline: a SIEM copy (HEC events or bare documents, duplicates, any order)
against the checkpoints of an `egress audit export` file and the public key."""

from __future__ import annotations

from pathlib import Path

import orjson
from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from egress.audit.checkpoint import Signer, public_pem
from egress.audit.export import ExportFilter, export_jsonl
from egress.cli.siem import siem_command
from egress.siem.document import chain_document
from tests.unit.siem.test_formats import chain

KEY = Ed25519PrivateKey.generate()


def files(tmp_path: Path, n: int = 30) -> tuple[Path, Path, Path, list[bytes]]:
    stored = chain([{"i": i, "user": "alice"} for i in range(n)])
    signer = Signer(KEY)
    checkpoints = [signer.sign(10, stored[9].hash, 1.0), signer.sign(n, stored[-1].hash, 2.0)]
    export = tmp_path / "export.jsonl"
    export.write_bytes(b"".join(export_jsonl(stored, checkpoints, ExportFilter(), 3.0)))
    key = tmp_path / "audit-public.pem"
    key.write_bytes(public_pem(KEY))
    docs = [chain_document(s) for s in stored]
    return export, key, tmp_path / "copy.jsonl", docs


def run(*args: str):
    return CliRunner().invoke(siem_command, ["verify", *args])


def test_copy_verifies_against_exported_checkpoints(tmp_path: Path) -> None:
    export, key, copy, docs = files(tmp_path)
    events = [b'{"time":1.0,"event":%s}' % d for d in docs]
    copy.write_bytes(b"\n".join([*reversed(events), *docs[3:6]]))  # HEC events, duplicates as documents
    result = run(str(copy), "--public-key", str(key), "--checkpoints", str(export))
    assert result.exit_code == 0, result.output
    assert "30 records (SIEM copy) verified" in result.output and "2 checkpoints verified" in result.output


def test_partial_copy_is_checked_up_to_its_last_record(tmp_path: Path) -> None:
    export, key, copy, docs = files(tmp_path)
    copy.write_bytes(b"\n".join(docs[:12]))  # still being delivered: the checkpoint at 30 is ahead
    result = run(str(copy), "--public-key", str(key), "--checkpoints", str(export))
    assert result.exit_code == 0, result.output
    assert "12 records (SIEM copy) verified" in result.output and "records 1..10 signed" in result.output


def test_edited_and_missing_records_fail(tmp_path: Path) -> None:
    export, key, copy, docs = files(tmp_path)
    edited = orjson.loads(docs[4])
    edited["record"]["user"] = "mallory"
    copy.write_bytes(b"\n".join([*docs[:4], orjson.dumps(edited), *docs[5:]]))
    result = run(str(copy), "--public-key", str(key), "--checkpoints", str(export))
    assert result.exit_code == 1 and "BROKEN at record 5" in result.output
    copy.write_bytes(b"\n".join([*docs[:7], *docs[8:]]))
    result = run(str(copy), "--public-key", str(key), "--checkpoints", str(export))
    assert result.exit_code == 1 and "BROKEN at record 9" in result.output and "8..8 are missing" in result.output


def test_a_line_that_is_no_record_is_named(tmp_path: Path) -> None:
    export, key, copy, docs = files(tmp_path)
    copy.write_bytes(b"\n".join([docs[0], b'{"seq": 2}']))
    result = run(str(copy), "--public-key", str(key), "--checkpoints", str(export))
    assert result.exit_code == 1 and "2: not a delivered audit record (KeyError" in " ".join(result.output.split())
