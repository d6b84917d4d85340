"""An audit export from a real gateway that saw planted secrets: it holds none of them (nor the
signing key), carries its signed checkpoint, and verifies offline with the public key alone."""

from __future__ import annotations

import json

import httpx
from click.testing import CliRunner

from egress.cli.main import main
from tests.integration.test_masking import canaries
from tests.support.gateway import SIM_ENV


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
    assert [x["checkpoint"]["seq"] for x in lines if "checkpoint" in x] == [1]
    private_pem = (tmp_path / "data" / "audit-signing.key").read_text()
    for value in (*secrets.values(), gateway.key, *SIM_ENV.values(), private_pem.splitlines()[1]):
        assert value not in text

    verified = runner.invoke(main, ["audit", "verify", "--export", str(out), "--public-key", str(key)])
    assert verified.exit_code == 0 and "1 checkpoints verified (records 1..1 signed)" in verified.output, (
        verified.output
    )
