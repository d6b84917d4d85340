"""The headline of #17: the real Claude Code, one model name, two jurisdictions.

    Claude Code (claude-sonnet-4-5) --> egress --personal data--> Bedrock simulator, eu-central-1,
                                                                 EU inference profile (SigV4)
                                              --otherwise-----> Anthropic simulator (US)

The bundled policy sends personal data only to EU/EEA jurisdictions, so a prompt that carries an
e-mail address goes to the Bedrock EU endpoint, with the mapped model id in the path; one that
carries none goes to the preferred Anthropic endpoint. Claude Code names `claude-sonnet-4-5`
and reads that same name back in both cases (Bedrock's answer names its own id).
"""

from __future__ import annotations

import json
import secrets
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from egress.app import open_configured_store
from egress.config import load_config
from egress.gateway.auth import new_key
from tests.conftest import Running
from tests.support import agents
from tests.support.bedrock_sim import ACCESS_KEY, SECRET_KEY, BedrockSimulator, CloudReply, anthropic_sse
from tests.support.gateway import SIM_ENV, ThreadedGateway, write_config
from tests.support.simulator import Received, Reply, UpstreamSimulator

pytestmark = pytest.mark.agents

MODEL = "claude-sonnet-4-5"
EU_PROFILE = "eu.anthropic.claude-sonnet-4-5-20250929-v1:0"
EMAIL = "jane.doe@customer-corp.example"


def answer(marker: str, model: str) -> bytes:
    """A streamed Messages answer carrying `marker`, naming `model` as its provider would."""
    return anthropic_sse(
        [
            {
                "type": "message_start",
                "message": {
                    "id": "msg_" + secrets.token_hex(8),
                    "type": "message",
                    "role": "assistant",
                    "model": model,
                    "content": [],
                    "stop_reason": None,
                    "stop_sequence": None,
                    "usage": {"input_tokens": 321, "output_tokens": 1},
                },
            },
            {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": marker}},
            {"type": "content_block_stop", "index": 0},
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": 7},
            },
            {"type": "message_stop"},
        ]
    )


@pytest.fixture(scope="module")
def routed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("clouds-agents")
    anthropic_sim = UpstreamSimulator(seed=secrets.randbits(32)).start()
    bedrock = BedrockSimulator(region="eu-central-1", seed=secrets.randbits(32)).start()
    common = {"retention_days": 0, "trains_on_api_data": False, "dpa": True}
    providers = [
        {
            "name": "anthropic-us",
            "api": "anthropic",
            "base_url": anthropic_sim.url,
            "models": ["claude-*"],
            "credentials": {"env": "SIM_ANTHROPIC_KEY"},
            "operator": "Simulated Anthropic",
            "jurisdiction": "US",
            "region": "us",
            **common,
        },
        {
            "name": "bedrock-eu",
            "api": "bedrock",
            "base_url": bedrock.url,
            "models": ["claude-*"],
            "model_map": {MODEL: EU_PROFILE},
            "credentials": {"chain": True},
            "operator": "Simulated Amazon Bedrock",
            "jurisdiction": "EU",
            "region": "eu-central-1",
            **common,
        },
    ]
    with pytest.MonkeyPatch.context() as env:
        env.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        env.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
        env.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp / "none"))
        env.setenv("AWS_CONFIG_FILE", str(tmp / "none"))
        env.setenv("AWS_EC2_METADATA_DISABLED", "true")
        env.delenv("AWS_SESSION_TOKEN", raising=False)
        env.delenv("AWS_PROFILE", raising=False)
        # Personal data in clear: the policy's jurisdiction rules decide where it goes.
        path = write_config(tmp, anthropic_sim.url, providers=providers, masking={"kinds": ["secret"]})
        config = load_config(path, env=SIM_ENV)
        gw = ThreadedGateway(config)
        store = open_configured_store(config)
        secret, key = new_key("dana", "payments")
        store.create_key(key)
        gw.start()
        yield {"gateway": Running(gw, secret, store), "anthropic": anthropic_sim, "bedrock": bedrock}
        gw.stop()
        store.close()
    anthropic_sim.stop()
    bedrock.stop()


def run_claude(claude: Path, gw: Running, prompt: str, tmp_path: Path) -> list[dict[str, Any]]:
    env = agents.claude_env(tmp_path / "home", gw.url, gw.key, "sk-ant-client-fake-7731")
    work = tmp_path / "work"
    work.mkdir()
    argv = [str(claude), "-p", prompt, "--model", MODEL, "--output-format", "stream-json", "--verbose"]
    result = agents.run_agent(argv, env, work)
    assert result.returncode == 0, result.describe()
    return [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]


def models_seen(lines: list[dict[str, Any]]) -> set[str]:
    """The model named by each answer Claude Code read (its assistant messages)."""
    return {line["message"]["model"] for line in lines if line.get("type") == "assistant"}


def text_seen(lines: list[dict[str, Any]]) -> str:
    return json.dumps([line for line in lines if line.get("type") in ("assistant", "result")])


def test_personal_data_is_served_by_bedrock_eu_with_the_mapped_model(
    claude: Path, routed: dict[str, Any], tmp_path: Path
):
    gw: Running = routed["gateway"]
    anthropic_sim: UpstreamSimulator = routed["anthropic"]
    bedrock: BedrockSimulator = routed["bedrock"]
    anthropic_sim.reset()
    bedrock.reset()
    marker = f"EU-{uuid.uuid4().hex}"
    # Bedrock names the model by its own id in the answer.
    bedrock.enqueue(CloudReply(sse=answer(marker, "claude-sonnet-4-5-20250929")))
    before = len(gw.audit(0))

    lines = run_claude(claude, gw, f"Draft a reply to {EMAIL} about the invoice.", tmp_path)

    assert marker in text_seen(lines)
    assert models_seen(lines) == {MODEL}
    assert anthropic_sim.received == []
    assert bedrock.models == [EU_PROFILE]
    [got] = bedrock.received
    assert got.path == f"/model/{EU_PROFILE.replace(':', '%3A')}/invoke-with-response-stream"
    assert EMAIL.encode() in got.body  # personal data went, in clear, only to the EU
    sent = got.json()
    assert sent["anthropic_version"] == "bedrock-2023-05-31" and "model" not in sent and "stream" not in sent
    # Claude Code's Anthropic-API-only betas stay out of the body (Bedrock refuses unknown flags).
    assert "claude-code-20250219" in (got.header("anthropic-beta") or "")
    assert "claude-code-20250219" not in sent.get("anthropic_beta", [])
    [record] = [r for r in gw.audit(before + 1)[before:] if r["endpoint"] == "bedrock-eu"]
    assert record["jurisdiction"] == "EU"
    assert record["model"] == MODEL and record["upstream_model"] == EU_PROFILE
    assert "anthropic-us: personal data may not go to US" in record["decision"]["reasons"]
    assert EMAIL not in json.dumps(record)


def test_without_personal_data_it_goes_to_anthropic(claude: Path, routed: dict[str, Any], tmp_path: Path):
    gw: Running = routed["gateway"]
    anthropic_sim: UpstreamSimulator = routed["anthropic"]
    bedrock: BedrockSimulator = routed["bedrock"]
    anthropic_sim.reset()
    bedrock.reset()
    marker = f"US-{uuid.uuid4().hex}"

    def reply(_: Received) -> list[bytes]:
        return [answer(marker, MODEL)]

    anthropic_sim.enqueue(Reply(headers={"content-type": "text/event-stream"}, build=reply))
    before = len(gw.audit(0))

    lines = run_claude(claude, gw, "Refactor: def f(x): return x + 1", tmp_path)

    assert marker in text_seen(lines)
    assert models_seen(lines) == {MODEL}
    assert bedrock.received == []
    [got] = anthropic_sim.received
    assert got.path == "/v1/messages" and got.json()["model"] == MODEL
    [record] = [r for r in gw.audit(before + 1)[before:] if r["endpoint"] == "anthropic-us"]
    assert record.get("upstream_model") is None
