"""Tamper tests of `egress audit verify` against the checkpoint anchor, on a real SQLite file and
on PostgreSQL: what an attacker who can write the database (but not the signing key, nor the
anchor kept elsewhere) does to hide records, and the message that names it."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from egress.app import open_configured_store
from egress.audit.anchor import FileAnchor, read_anchor
from egress.audit.chain import link
from egress.audit.checkpoint import Signer, load_or_create_signing_key
from egress.audit.settings import AuditSettings
from egress.audit.writer import AuditWriter
from egress.cli.main import main
from egress.config import Config, load_config
from egress.core.records import Checkpoint
from tests.integration.test_audit_cli import record
from tests.support.databases import throwaway_postgres


@dataclass
class Gateway:
    """A data dir written by the gateway's audit writer (60 records, checkpoints every 10,
    anchored), its store reachable by SQL as an attacker would reach it."""

    env: dict[str, str]
    config: Config

    @property
    def anchor(self) -> Path:
        return self.config.audit_checkpoint_log

    def verify(self, *args: str) -> Result:
        return CliRunner().invoke(main, ["audit", "verify", *args], env=self.env, catch_exceptions=False)

    def checkpoints(self) -> list[Checkpoint]:
        return [line.checkpoint for line in read_anchor(self.anchor).lines if line.checkpoint is not None]

    def sql(self, statement: str, params: tuple = ()) -> None:
        store = open_configured_store(self.config)
        try:
            with store._connection() as conn:  # around the store's API, as an attacker would
                conn.cursor().execute(statement.replace("?", store.param), params)
                conn.commit()
        finally:
            store.close()

    def write(self, first: int, last: int, signed: bool) -> None:
        """Records first..last; with `signed`, checkpoints every 10 records, anchored."""
        store = open_configured_store(self.config)
        settings = AuditSettings(flush_interval_ms=1, max_batch=10, checkpoint_every=10)
        if signed:
            signer = Signer(load_or_create_signing_key(self.config.audit_signing_key_file))
            writer = AuditWriter(store, settings, signer, anchors=[FileAnchor(self.anchor)])
        else:
            writer = AuditWriter(store, settings)  # a writer that signs nothing: an uncovered tail
        writer.start()
        for i in range(first, last + 1):
            writer.submit(record(i))
        writer.close()
        store.close()

    def rewrite_and_rechain(self, seq: int) -> None:
        """Edit record `seq` (user and its column) and recompute every later hash: no key needed."""
        store = open_configured_store(self.config)
        rows = list(store.iter_audit())
        store.close()
        prev = rows[seq - 2].hash
        for row in rows[seq - 1 :]:
            canonical = row.entry.canonical
            if row.seq == seq:
                canonical = canonical.replace(f'"user":"{row.entry.user}"'.encode(), b'"user":"mallory"')
                self.sql("UPDATE audit_log SET record = ?, user_name = 'mallory' WHERE seq = ?", (canonical, seq))
            digest = link(prev, canonical)
            self.sql("UPDATE audit_log SET prev_hash = ?, hash = ? WHERE seq = ?", (prev, digest, row.seq))
            prev = digest


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def gateway(request, tmp_path: Path) -> Iterator[Gateway]:
    env = {"EGRESS_DATA_DIR": str(tmp_path / "data"), "EGRESS_CONFIG": ""}
    if request.param == "sqlite":
        gw = Gateway(env, load_config(None, env=env))
        gw.write(1, 60, signed=True)
        yield gw
        return
    with throwaway_postgres() as url:
        config_file = tmp_path / "egress.yaml"
        config_file.write_text(f"store:\n  url: {url}\n")
        env["EGRESS_CONFIG"] = str(config_file)
        gw = Gateway(env, load_config(None, env=env))
        open_configured_store(gw.config).close()  # migrates
        gw.write(1, 60, signed=True)
        yield gw


def head_of(cp: Checkpoint) -> str:
    return f"the checkpoint at record {cp.seq} (key {cp.key_id}) with head {cp.hash}"


def test_a_clean_database_and_anchor_verify(gateway):
    cps = gateway.checkpoints()
    assert [cp.seq for cp in cps] == [10, 20, 30, 40, 50, 60]
    result = gateway.verify()
    assert result.exit_code == 0, result.output
    assert result.output.startswith("OK: 60 records verified")
    assert "6 checkpoints verified (records 1..60 signed)" in result.output
    assert "; uncovered tail: 0 records" in result.output
    assert (
        f"Anchor {gateway.anchor}: 6 checkpoints; the newest vouches for records 1..60 (head {cps[-1].hash})."
        in result.output
    )
    assert "BROKEN" not in result.output and "WARNING" not in result.output


def test_deleting_the_newest_checkpoint_and_the_tail_is_named(gateway):
    """(a) The measured attack: the newest checkpoint and the records after the previous one go."""
    newest = gateway.checkpoints()[-1]
    gateway.sql("DELETE FROM audit_checkpoints WHERE seq = 60")
    gateway.sql("DELETE FROM audit_log WHERE seq > 50")
    alone = gateway.verify("--no-anchor")
    assert alone.exit_code == 0 and alone.output.startswith("OK: 50 records verified")  # the database alone is fooled
    assert "WARNING: not compared against a checkpoint anchor (--no-anchor)." in alone.output

    result = gateway.verify()
    assert result.exit_code == 1
    assert (
        f"BROKEN anchor: anchor {gateway.anchor} line 6: {head_of(newest)} is missing from the database."
        in result.output
    )
    assert (
        "BROKEN anchor: the chain ends at record 50, before the newest anchored checkpoint at record 60 "
        f"(key {newest.key_id}) with head {newest.hash}: records 51..60 were cut off." in result.output
    )
    assert "BROKEN at record 51: records 51..60 are missing" in result.output
    assert "FAILED: 50 records verified" in result.output


def test_deleting_only_records_after_the_newest_checkpoint_reports_the_uncovered_tail(gateway):
    """(b) Records after the newest checkpoint are protected by the chain alone: deleting the last
    of them cannot be proven, but verify says how many records that window holds."""
    gateway.write(61, 65, signed=False)
    before = gateway.verify()
    assert before.exit_code == 0
    assert "(records 1..60 signed; records 61..65 not covered by a checkpoint yet)" in before.output
    assert "; uncovered tail: 5 records" in before.output
    gateway.sql("DELETE FROM audit_log WHERE seq > 63")
    after = gateway.verify()
    assert after.exit_code == 0 and after.output.startswith("OK: 63 records verified")
    assert "(records 1..60 signed; records 61..63 not covered by a checkpoint yet)" in after.output
    assert "; uncovered tail: 3 records" in after.output
    # One record more, and a signed (anchored) one is gone: named.
    gateway.sql("DELETE FROM audit_log WHERE seq > 59")
    cut = gateway.verify()
    assert cut.exit_code == 1
    assert "the chain ends at record 59, before the newest anchored checkpoint at record 60" in cut.output


@pytest.mark.parametrize("drop_checkpoints", [False, True], ids=["checkpoints-kept", "checkpoints-deleted"])
def test_a_rewritten_and_rechained_record_is_named(gateway, drop_checkpoints):
    """(c) Record 25 edited and every later hash recomputed (no signing key needed); the attacker
    may also delete the checkpoints that no longer match."""
    cps = gateway.checkpoints()
    gateway.rewrite_and_rechain(25)
    if drop_checkpoints:
        gateway.sql("DELETE FROM audit_checkpoints WHERE seq >= 30")
        alone = gateway.verify("--no-anchor")
        assert alone.exit_code == 0, alone.output  # the database alone is fooled
    result = gateway.verify()
    assert result.exit_code == 1
    at30 = cps[2]
    assert (
        f"BROKEN at record 30: checkpoint at record 30 (key {at30.key_id}): record 30 no longer has the "
        f"signed hash {at30.hash} (a record in 21..30 was rewritten and every later hash recomputed)."
    ) in result.output
    missing = [f"line {n}: {head_of(cps[n - 1])} is missing from the database" for n in (3, 4, 5, 6)]
    assert all((m in result.output) == drop_checkpoints for m in missing), result.output


def test_a_deleted_anchor_fails_unless_told_no_anchor(gateway):
    """(d)"""
    gateway.anchor.unlink()
    result = gateway.verify()
    assert result.exit_code == 1
    assert (
        f"BROKEN anchor: the checkpoint anchor {gateway.anchor} is missing (deleted, or never written here)."
        in result.output
    )
    assert "`egress audit verify --no-anchor` verifies the database alone" in result.output
    alone = gateway.verify("--no-anchor")
    assert alone.exit_code == 0 and alone.output.startswith("OK: 60 records verified")
    assert "WARNING: not compared against a checkpoint anchor (--no-anchor)." in alone.output


def test_an_edited_anchor_line_fails_its_signature(gateway):
    """(e)"""
    lines = gateway.anchor.read_bytes().splitlines(keepends=True)
    cp = gateway.checkpoints()[2]
    lines[2] = lines[2].replace(b'"ts":', b'"ts":1', 1)
    gateway.anchor.write_bytes(b"".join(lines))
    result = gateway.verify()
    assert result.exit_code == 1
    assert (
        f"BROKEN anchor: anchor {gateway.anchor} line 3: checkpoint at record 30 (key {cp.key_id}): "
        "signature does not verify (the checkpoint was forged or edited)." in result.output
    )
    lines[2] = b"garbage\n"
    gateway.anchor.write_bytes(b"".join(lines))
    garbled = gateway.verify()
    assert garbled.exit_code == 1 and f"BROKEN anchor: anchor {gateway.anchor} line 3 is not JSON." in garbled.output


def test_checkpoints_missing_from_the_anchor_are_a_warning(gateway):
    lines = gateway.anchor.read_bytes().splitlines(keepends=True)
    gateway.anchor.write_bytes(b"".join(lines[2:]))  # e.g. signed before the anchor existed
    result = gateway.verify()
    assert result.exit_code == 0, result.output
    assert "WARNING: 2 checkpoints in the database (records 10..20) are not in this anchor" in result.output


def test_a_copy_of_the_anchor_elsewhere_is_verified_with_anchor(gateway, tmp_path):
    copy = tmp_path / "worm" / "checkpoints.jsonl"
    copy.parent.mkdir()
    shutil.copy(gateway.anchor, copy)
    gateway.anchor.unlink()
    gateway.sql("DELETE FROM audit_checkpoints WHERE seq = 60")
    gateway.sql("DELETE FROM audit_log WHERE seq > 50")
    result = gateway.verify("--anchor", str(copy))
    assert result.exit_code == 1 and f"anchor {copy} line 6: the checkpoint at record 60" in result.output
    both = gateway.verify("--anchor", str(copy), "--no-anchor")
    assert both.exit_code == 2 and "--anchor and --no-anchor exclude each other" in both.output
