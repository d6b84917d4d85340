"""The self-hosted path with a real model: the policy re-routes a Claude-Code-shaped request (and a
Codex-shaped one) to llama.cpp's OpenAI-compatible server, which only speaks Chat Completions;
egress translates both ways and the official SDKs consume the streams without error."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path

import anthropic
import httpx
import openai
import pytest

from egress.core.exchange import Api
from egress.wire.apis import translator_for
from tests.conftest import Running
from tests.integration.test_sovereign_routing import AWS_KEY, _endpoint, start
from tests.support.selfhosted import SelfHostedServer
from tests.support.simulator import UpstreamSimulator

CLAUDE_CODE_SYSTEM = [
    {"type": "text", "text": "You are Claude Code, Anthropic's official CLI for Claude."},
    {
        "type": "text",
        "text": "You are an interactive CLI tool that helps users with software engineering tasks. Be brief.",
        "cache_control": {"type": "ephemeral"},
    },
]
READ_TOOL = {
    "name": "Read",
    "description": "Reads a file from the local filesystem.",
    "input_schema": {
        "type": "object",
        "properties": {"file_path": {"type": "string", "description": "The absolute path to the file to read"}},
        "required": ["file_path"],
    },
}


@pytest.fixture
def gw(selfhosted_model: SelfHostedServer, tmp_path: Path) -> Iterator[tuple[Running, UpstreamSimulator]]:
    cloud = UpstreamSimulator(seed=secrets.randbits(32)).start()
    providers = [
        _endpoint("us-cloud", "anthropic", cloud.url, "US", models=["claude-*"]),
        _endpoint("us-openai", "openai", cloud.url + "/v1", "US", models=["gpt-*"]),
        _endpoint(
            "own",
            "openai-chat",
            selfhosted_model.base_url,
            "self",
            models=["*"],
            dpa=False,
            upstream_model=selfhosted_model.model,
            # llama-cpp-python's gemma format drops system messages: fold them into the user turn.
            system_in_user=True,
        ),
    ]
    running = start(
        tmp_path,
        {"us": cloud.url},
        providers=providers,
        upstream={"connect_timeout_s": 5, "read_timeout_s": 120},
    )
    yield running, cloud
    running.gateway.stop()
    running.store.close()
    cloud.stop()


def test_claude_code_request_rerouted_to_the_real_model(gw):
    running, cloud = gw
    client = anthropic.Anthropic(
        base_url=running.url,
        api_key="sk-ant-client",
        default_headers={"x-egress-key": running.key, "x-egress-classification": "proprietary"},
        max_retries=0,
        timeout=120,
    )
    with client.messages.stream(
        model="claude-sonnet-4-5",
        max_tokens=24,
        system=CLAUDE_CODE_SYSTEM,
        tools=[READ_TOOL],
        metadata={"user_id": "user_abc_account_def_session_0f3c"},
        messages=[
            {"role": "user", "content": [{"type": "text", "text": f"Say hello. Our deploy key is {AWS_KEY}."}]},
        ],
    ) as stream:
        events = [event.type for event in stream]
        message = stream.get_final_message()
    assert events[0] == "message_start" and "message_stop" in events
    assert message.stop_reason in ("end_turn", "max_tokens", "tool_use")
    # llama.cpp's server sends no usage in a stream (tests/corpus/selfhosted): reported as 0.
    assert message.usage.output_tokens >= 0 and message.usage.input_tokens >= 0
    assert any(block.type in ("text", "tool_use") for block in message.content)
    assert cloud.received == []  # proprietary code never reached the cloud
    (record,) = running.audit(1)
    assert record["endpoint"] == "own" and record["jurisdiction"] == "self"
    assert record["translated_from"] == "anthropic.messages" and record["outcome"] == "forwarded"
    assert record["decision"]["action"] == "reroute" and record["masked"]["count"] == 1
    assert record["usage"]["output_tokens"] == message.usage.output_tokens


def test_codex_request_rerouted_to_the_real_model(gw):
    running, cloud = gw
    client = openai.OpenAI(
        base_url=running.url + "/v1",
        api_key=running.key,
        default_headers={"x-egress-classification": "proprietary"},
        max_retries=0,
        timeout=120,
    )
    stream = client.responses.create(
        model="gpt-5-codex",
        instructions="You are Codex, a coding agent. Be brief.",
        input=[{"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Say hello."}]}],
        max_output_tokens=16,
        store=False,
        stream=True,
    )
    kinds = [event.type for event in stream]
    assert kinds[0] == "response.created" and kinds[-1] in ("response.completed", "response.incomplete")
    assert "response.output_text.delta" in kinds
    assert cloud.received == []
    (record,) = running.audit(1)
    assert record["endpoint"] == "own" and record["translated_from"] == "openai.responses"


def test_the_folded_system_prompt_reaches_the_model(gw, selfhosted_model):
    """The gemma chat format drops system messages; with `system_in_user` the model reads them:
    the prompt is longer by the system text's tokens."""
    running, _ = gw
    request = {
        "model": "claude-sonnet-4-5",
        "max_tokens": 4,
        "system": [{"type": "text", "text": "You are Claude Code. " * 20}],
        "messages": [{"role": "user", "content": "Say hello."}],
    }
    client = anthropic.Anthropic(
        base_url=running.url,
        api_key="x",
        default_headers={"x-egress-key": running.key, "x-egress-classification": "proprietary"},
        max_retries=0,
        timeout=120,
    )
    folded = client.messages.create(**request).usage.input_tokens
    # The same request translated without folding, sent to the server directly.
    plain = translator_for(Api.ANTHROPIC_MESSAGES, Api.OPENAI_CHAT).request_body(
        json.dumps(request).encode(), selfhosted_model.model
    )
    direct = httpx.post(
        selfhosted_model.base_url + "/chat/completions",
        content=plain,
        headers={"content-type": "application/json"},
        timeout=120,
    ).json()
    assert "usage" in direct, direct
    dropped = direct["usage"]["prompt_tokens"]
    assert folded > dropped + 40  # "You are Claude Code. " x 20 is ~100 tokens
