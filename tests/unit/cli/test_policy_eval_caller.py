"""`egress policy eval --caller --credential`: the policy input a dry run builds carries the caller's
kind and the credential's plan as the gateway's does, and the bundled policy decides on them."""

from __future__ import annotations

import json
import os
from pathlib import Path

from click.testing import CliRunner

from egress.cli.main import main
from egress.config import default_cache_dir

BODY = {"model": "claude-sonnet-4-5", "max_tokens": 10, "messages": [{"role": "user", "content": "hello"}]}
SIGN_IN = "authorization: Bearer sk-ant-oat01-" + "Q" * 93 + "AA"


def evaluate(tmp_path: Path, *args: str):
    request = tmp_path / "req.json"
    request.write_text(json.dumps(BODY))
    env = {
        "HOME": str(tmp_path),
        "EGRESS_DATA_DIR": str(tmp_path / "data"),
        "XDG_CACHE_HOME": str(default_cache_dir(os.environ).parent),
    }
    result = CliRunner().invoke(main, ["policy", "eval", "--request", str(request), "--json", *args], env=env)
    return result, json.loads(result.stdout)


def test_a_consumer_sign_in_is_blocked_on_the_embedded_pass_through_endpoint(tmp_path: Path) -> None:
    result, doc = evaluate(tmp_path, "--credential", SIGN_IN)
    assert result.exit_code == 3, result.output  # blocked by the policy
    assert doc["input"]["credential"]["plan"] == "consumer"
    assert any("consumer-plan credential (anthropic_oauth)" in r for r in doc["decision"]["reasons"])
    assert "Q" * 93 not in result.stdout  # the credential is classified, never shown


def test_an_api_key_and_a_service_account(tmp_path: Path) -> None:
    result, doc = evaluate(
        tmp_path, "--credential", "x-api-key: sk-ant-api03-" + "Z" * 95, "--caller", "service_account"
    )
    assert result.exit_code == 0, result.output
    assert doc["input"]["credential"]["plan"] == "api"
    assert doc["input"]["caller"]["kind"] == "service_account"


def test_without_options_a_person_with_no_credential(tmp_path: Path) -> None:
    _, doc = evaluate(tmp_path)
    assert doc["input"]["caller"]["kind"] == "person"
    assert doc["input"]["credential"] == {"plan": "unknown", "type": "none", "provider": None,
                                          "trains_on_data": None, "retention_days": None, "dpa": None}  # fmt: skip
