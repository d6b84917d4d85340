"""A real gateway anchors its checkpoints: the file is created 0600 at start, holds every
checkpoint the gateway stored (the one signed at shutdown included), and `egress audit verify`
catches the newest checkpoint deleted with the records it covered."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import httpx
from click.testing import CliRunner, Result

from egress.audit.anchor import read_anchor
from egress.cli.main import main
from tests.support.gateway import SIM_ENV


def verify(config: Path) -> Result:
    return CliRunner().invoke(main, ["audit", "verify", "--config", str(config)], env=SIM_ENV)


def test_a_gateway_anchors_its_checkpoints_and_verify_uses_them(gateway, tmp_path):
    anchor = tmp_path / "data" / "audit-checkpoints.jsonl"
    assert anchor.exists() and stat.S_IMODE(os.stat(anchor).st_mode) == 0o600  # created at start
    body = {"model": "claude-sonnet-4-5", "max_tokens": 10, "messages": [{"role": "user", "content": "hello"}]}
    for _ in range(3):
        r = httpx.post(gateway.url + "/v1/messages", json=body, headers={"x-egress-key": gateway.key}, timeout=10)
        assert r.status_code == 200, r.text
    gateway.audit(expect=3)
    gateway.gateway.stop()  # the checkpoint at shutdown is stored, then anchored

    stored = gateway.store.list_checkpoints()
    lines = read_anchor(anchor).lines
    assert [line.checkpoint for line in lines] == stored and stored
    newest = stored[-1]
    head = gateway.store.audit_head()
    assert head is not None and newest.seq == head[0]
    config = tmp_path / "egress.yaml"
    ok = verify(config)
    assert ok.exit_code == 0 and ok.output.startswith(f"OK: {head[0]} records verified"), ok.output
    assert f"the newest vouches for records 1..{head[0]} (head {head[1]})." in ok.output

    with gateway.store._connection() as conn:  # around the store's API, as an attacker would
        cur = conn.cursor()
        cur.execute(f"DELETE FROM audit_checkpoints WHERE seq = {newest.seq}")
        cur.execute(f"DELETE FROM audit_log WHERE seq = {newest.seq}")
        conn.commit()
    cut = verify(config)
    assert cut.exit_code == 1
    assert (
        f"line {len(lines)}: the checkpoint at record {newest.seq} (key {newest.key_id}) with head {newest.hash} "
        "is missing from the database." in cut.output
    )
