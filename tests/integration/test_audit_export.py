"""Audit exports from a real gateway: one that saw planted secrets holds none of them (nor the
signing key), carries its signed checkpoint, and verifies offline with the public key alone; a
filtered one proves each record's membership in the signed log, and any tampering with a record,
its proof or its checkpoint fails and names the record."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import anthropic
import httpx
import openai
from click.testing import CliRunner, Result
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from egress.audit.chain import link
from egress.audit.checkpoint import public_pem
from egress.cli.main import main
from tests.conftest import start_gateway
from tests.integration.test_masking import canaries
from tests.support.gateway import SIM_ENV, write_config


def test_export_of_a_request_with_secrets_holds_none_and_verifies_offline(gateway, tmp_path):
    secrets = canaries()
    body = {
        "model": "claude-sonnet-4-5",
        "max_tokens": 10,
        "messages": [{"role": "user", "content": f"deploy with {secrets['aws']} and {secrets['stripe']}"}],
    }
    r = httpx.post(gateway.url + "/v1/messages", json=body, headers={"x-egress-key": gateway.key}, timeout=10)
    assert r.status_code == 200, r.text
    assert gateway.audit(expect=1)[0]["findings"]["kinds"]["secret"] == 2
    gateway.gateway.stop()  # clean shutdown: the writer signs the chain's head

    config = str(tmp_path / "egress.yaml")
    runner = CliRunner()
    out, key = tmp_path / "secrets.jsonl", tmp_path / "audit.pem"
    exported = runner.invoke(
        main, ["audit", "export", "--config", config, "--kind", "secret", "-o", str(out)], env=SIM_ENV
    )
    assert exported.exit_code == 0, exported.output
    assert runner.invoke(main, ["audit", "public-key", "--config", config, "-o", str(key)], env=SIM_ENV).exit_code == 0

    text = out.read_text()
    lines = [json.loads(line) for line in text.splitlines()]
    assert [x["record"]["findings"]["kinds"] for x in lines if "record" in x] == [{"secret": 2}]
    # Records 1..2: the request's write-ahead egress record, then its own record.
    assert [x["checkpoint"]["seq"] for x in lines if "checkpoint" in x] == [2]
    private_pem = (tmp_path / "data" / "audit-signing.key").read_text()
    for value in (*secrets.values(), gateway.key, *SIM_ENV.values(), private_pem.splitlines()[1]):
        assert value not in text

    verified = runner.invoke(main, ["audit", "verify", "--export", str(out), "--public-key", str(key)])
    assert verified.exit_code == 0 and "1 checkpoints verified (records 1..2 signed)" in verified.output, (
        verified.output
    )


# --- a filtered export whose records prove their membership in the signed log -------------------


def send(gateway, n: int) -> list[str]:
    """n requests through the official SDKs: every third by OpenAI Chat Completions (endpoint
    sim-openai), the others by Anthropic Messages; every seventh carries a secret."""
    headers = {"x-egress-key": gateway.key}
    claude = anthropic.Anthropic(base_url=gateway.url, api_key="sk-ant-c", default_headers=headers, max_retries=0)
    oai = openai.OpenAI(base_url=gateway.url + "/v1", api_key="sk-c", default_headers=headers, max_retries=0)
    values = canaries()
    for i in range(1, n + 1):
        text = f"step {i}: deploy with {values['aws']}" if i % 7 == 0 else f"step {i}: refactor the parser"
        if i % 3 == 0:
            oai.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": text}])
        else:
            claude.messages.create(
                model="claude-sonnet-4-5", max_tokens=10, messages=[{"role": "user", "content": text}]
            )
    return list(values.values())


@dataclass
class Offline:
    """The auditor's side: an export file and the public key, nothing else."""

    key: Path
    folder: Path

    def verify(self, lines: list[bytes], name: str = "x.jsonl", key: Path | None = None) -> Result:
        path = self.folder / name
        path.write_bytes(b"\n".join(lines) + b"\n")
        return CliRunner().invoke(
            main, ["audit", "verify", "--export", str(path), "--public-key", str(key or self.key)]
        )


def export_lines(config: str, out: Path, *filters: str) -> list[bytes]:
    result = CliRunner().invoke(main, ["audit", "export", "--config", config, *filters, "-o", str(out)], env=SIM_ENV)
    assert result.exit_code == 0, result.output
    return out.read_bytes().splitlines()


def edit(lines: list[bytes], where: Callable[[dict], bool], change: Callable[[dict], None]) -> list[bytes]:
    """The lines with the first one `where` selects changed by `change` (re-serialised)."""
    out, done = [], False
    for line in lines:
        doc = json.loads(line)
        if not done and where(doc):
            change(doc)
            done = True
            line = json.dumps(doc, separators=(",", ":")).encode()
        out.append(line)
    assert done
    return out


def test_filtered_export_from_a_gateway_proves_membership_offline(upstream, tmp_path):
    path = write_config(tmp_path, upstream.url, audit={"flush_interval_ms": 5, "checkpoint_every": 50})
    gateway = start_gateway(path)
    config, runner = str(path), CliRunner()
    try:
        planted = send(gateway, 330)
        rows = gateway.audit(expect=330)
        assert len(rows) == 330
        key = tmp_path / "audit.pem"
        assert (
            runner.invoke(main, ["audit", "public-key", "--config", config, "-o", str(key)], env=SIM_ENV).exit_code == 0
        )
        offline = Offline(key, tmp_path)

        # While the gateway runs, the newest records are not yet covered by a signed checkpoint.
        signed_up_to = max(cp.seq for cp in gateway.store.list_checkpoints())
        early = export_lines(config, tmp_path / "early.jsonl", "--endpoint", "sim-openai")
        seqs = [json.loads(x)["seq"] for x in early if b'"record"' in x]
        # 110 requests to sim-openai: each its write-ahead egress record and its own record.
        assert len(seqs) == 220
        uncovered = sum(s > signed_up_to for s in seqs)
        assert 0 < uncovered < 60
        result = offline.verify(early, "early.jsonl")
        assert result.exit_code == 0, result.output
        assert f"Records checked: 220; {220 - uncovered} proven members of the signed log" in result.output
        assert f"WARNING: {uncovered} records are not yet covered by a signed checkpoint" in result.output
        assert "cannot prove that its filter selected every matching record" in result.output
    finally:
        gateway.stop()  # clean shutdown: the writer signs the rest

    lines = export_lines(config, tmp_path / "openai.jsonl", "--endpoint", "sim-openai")
    docs = [json.loads(x) for x in lines]
    records = [d for d in docs if "record" in d]
    proofs = {d["proof"]["seq"]: d["proof"] for d in docs if "proof" in d}
    checkpoints = {d["checkpoint"]["seq"]: d["checkpoint"] for d in docs if "checkpoint" in d}
    assert docs[0]["export"]["format"] == "egress.audit.export.v2" and not docs[0]["export"]["complete"]
    assert len(records) == 220 and set(proofs) == {r["seq"] for r in records}
    assert all(cp["first"] <= s <= cp["seq"] for s, p in proofs.items() for cp in [checkpoints[p["checkpoint_seq"]]])
    assert len(checkpoints) >= 12  # spans of about 50 records over 660
    text = b"\n".join(lines).decode()
    for value in (*planted, gateway.key, *SIM_ENV.values()):
        assert value not in text
    result = offline.verify(lines, "openai.jsonl")
    assert result.exit_code == 0, result.output
    assert result.output.startswith(
        f"Records checked: 220; 220 proven members of the signed log (inclusion proof to a signed checkpoint's "
        f"Merkle root); 0 not yet covered by a signed checkpoint; {len(checkpoints)} checkpoints verified."
    ), result.output
    assert "WARNING" not in result.output and result.output.splitlines()[-1].startswith("OK: 220 records")

    # A request's own record (its egress record just before it is exported too: the two link).
    target = next(r for r in records[40:] if r["record"].get("type") != "egress")
    seq, rid = target["seq"], target["record"]["request_id"]
    named = f"BROKEN at record {seq} (request {rid})"
    is_target = lambda d: d.get("seq") == seq and "record" in d  # noqa: E731
    is_proof = lambda d: d.get("proof", {}).get("seq") == seq  # noqa: E731

    # Any field of the record, its hash or its predecessor's hash edited: its content fails.
    for field_name, value in target["record"].items():
        changed = edit(lines, is_target, lambda d, f=field_name, v=value: d["record"].__setitem__(f, altered(v)))
        result = offline.verify(changed)
        shown = named if field_name != "request_id" else f"BROKEN at record {seq} (request {rid}x)"
        assert result.exit_code == 1 and f"{shown}: record content was altered" in result.output, (
            field_name,
            result.output,
        )
    for line_field in ("hash", "prev_hash"):
        changed = edit(lines, is_target, lambda d, f=line_field: d.__setitem__(f, "0" * 64))
        assert named in offline.verify(changed).output

    # Edited and re-hashed, so the record is self-consistent: its proof no longer leads to the root.
    def rehash(d: dict) -> None:
        d["record"]["jurisdiction"] = "DE"
        d["hash"] = link(d["prev_hash"], json.dumps(d["record"], sort_keys=True, separators=(",", ":")).encode())

    result = offline.verify(edit(lines, is_target, rehash))
    assert result.exit_code == 1 and f"{named}: not proven a member of the signed log" in result.output, result.output

    proof = proofs[seq]
    assert len(proof["path"]) >= 2
    others = sorted(s for s in checkpoints if s != proof["checkpoint_seq"])
    cases = {
        "a path element swapped": lambda d: d["proof"]["path"].reverse(),
        "a path element replaced": lambda d: d["proof"]["path"].__setitem__(0, "ab" * 32),
        "the index changed": lambda d: d["proof"].__setitem__("index", d["proof"]["index"] ^ 1),
        "the size changed": lambda d: d["proof"].__setitem__("size", d["proof"]["size"] + 1),
        "another checkpoint claimed": lambda d: d["proof"].__setitem__("checkpoint_seq", others[0]),
    }
    for case, change in cases.items():
        result = offline.verify(edit(lines, is_proof, change))
        assert result.exit_code == 1 and f"{named}: not proven a member of the signed log" in result.output, (
            case,
            result.output,
        )
    assert "spans records" in offline.verify(edit(lines, is_proof, cases["another checkpoint claimed"])).output

    # The checkpoint its proof names dropped from the file: the first record relying on it is named.
    dropped = [x for x in lines if json.loads(x).get("checkpoint", {}).get("seq") != proof["checkpoint_seq"]]
    first_relying = min(s for s, p in proofs.items() if p["checkpoint_seq"] == proof["checkpoint_seq"])
    result = offline.verify(dropped)
    assert result.exit_code == 1 and f"BROKEN at record {first_relying} " in result.output
    assert f"leads to the checkpoint at record {proof['checkpoint_seq']}, which is not in the export" in result.output

    # The record's proof dropped while its checkpoint stays: a gap inside the signed spans fails.
    result = offline.verify([x for x in lines if not is_proof(json.loads(x))])
    assert result.exit_code == 1 and f"{named}: no inclusion proof" in result.output

    # Another key: every checkpoint fails, and so the first record's membership.
    other = tmp_path / "other.pem"
    other.write_bytes(public_pem(Ed25519PrivateKey.generate()))
    result = offline.verify(lines, key=other)
    first = records[0]
    assert result.exit_code == 1 and "not by the given public key" in result.output
    assert f"BROKEN at record {first['seq']} (request {first['record']['request_id']})" in result.output


def altered(value: object) -> object:
    if isinstance(value, bool) or value is None:
        return "x"
    if isinstance(value, int | float):
        return value + 1
    if isinstance(value, str):
        return value + "x"
    return {"x": 1} if isinstance(value, dict) else ["x"]
