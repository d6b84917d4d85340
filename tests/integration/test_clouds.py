"""Native cloud upstreams end to end: the official anthropic SDK -> `egress serve` -> a Bedrock or
Vertex AI simulator that checks what the real service checks.

    anthropic SDK (Messages) --> egress --SigV4 / API key--> Bedrock simulator (event-stream)
                                        --OAuth2 token----> Vertex simulator (token endpoint + rawPredict)

Each simulator answers by echoing the prompt it received, so a secret masked on the way up comes
back as its placeholder and the client must read it restored.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable, Iterator
from typing import Any

import anthropic
import httpx
import pytest

from egress.app import open_configured_store
from egress.config import load_config
from egress.gateway.auth import new_key
from tests.conftest import Running
from tests.support.bedrock_sim import ACCESS_KEY, SECRET_KEY, BedrockSimulator, CloudReply, anthropic_sse
from tests.support.gateway import SIM_ENV, ThreadedGateway, write_config
from tests.support.simulator import Received
from tests.support.vertex_sim import VertexSimulator, make_service_account

SECRET = "AKIAQYLPMN5HHHFPZAM2"  # shaped like an AWS access key id: masked upstream
BEDROCK_API_KEY = "ABSKQmVkcm9ja0FQSUtleS1zaW0tdGVzdA" + "x" * 20
EU_PROFILE = "eu.anthropic.claude-sonnet-4-5-20250929-v1:0"
HAIKU_ID = "anthropic.claude-haiku-4-5-20251001-v1:0"
VERTEX_MODEL = "claude-opus-4-1@20250805"


def prompt_text(received: Received) -> str:
    content = received.json()["messages"][-1]["content"]
    if isinstance(content, str):
        return content
    return "".join(block.get("text", "") for block in content)


def echo(received: Received) -> bytes:
    """An Anthropic stream that repeats the prompt it received (placeholders included)."""
    text = "echo: " + prompt_text(received)
    half = len(text) // 2
    return anthropic_sse(
        [
            {
                "type": "message_start",
                "message": {
                    "id": "msg_" + secrets.token_hex(6),
                    "type": "message",
                    "role": "assistant",
                    "model": "claude-sonnet-4-5-20250929",
                    "content": [],
                    "stop_reason": None,
                    "stop_sequence": None,
                    "usage": {"input_tokens": 11, "output_tokens": 1},
                },
            },
            {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text[:half]}},
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text[half:]}},
            {"type": "content_block_stop", "index": 0},
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": 9},
            },
            {"type": "message_stop"},
        ]
    )


def _endpoint(name: str, api: str, url: str, **facts: Any) -> dict[str, Any]:
    return {
        "name": name,
        "api": api,
        "base_url": url,
        "operator": f"Simulated {name}",
        "retention_days": 0,
        "trains_on_api_data": False,
        "dpa": True,
        **facts,
    }


@pytest.fixture(scope="module")
def clouds(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("clouds")
    bedrock = BedrockSimulator(region="eu-central-1", api_key=BEDROCK_API_KEY, seed=secrets.randbits(32)).start()
    vertex = VertexSimulator(seed=secrets.randbits(32)).start()
    vertex.account = make_service_account(tmp / "sa", vertex.token_uri)
    with pytest.MonkeyPatch.context() as env:
        # botocore's credential chain, from the environment only (no files, no instance metadata).
        env.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        env.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
        env.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp / "none"))
        env.setenv("AWS_CONFIG_FILE", str(tmp / "none"))
        env.setenv("AWS_EC2_METADATA_DISABLED", "true")
        env.delenv("AWS_SESSION_TOKEN", raising=False)
        env.delenv("AWS_PROFILE", raising=False)
        providers = [
            _endpoint(
                "bedrock-eu",
                "bedrock",
                bedrock.url,
                models=["claude-sonnet-4-5"],
                model_map={"claude-sonnet-4-5": EU_PROFILE},
                credentials={"chain": True},
                jurisdiction="EU",
                region="eu-central-1",
            ),
            _endpoint(
                "bedrock-key",
                "bedrock",
                bedrock.url,
                models=["claude-haiku-4-5"],
                upstream_model=HAIKU_ID,
                credentials={"env": "BEDROCK_API_KEY"},
                jurisdiction="DE",
                region="eu-central-1",
            ),
            _endpoint(
                "vertex-eu",
                "vertex",
                vertex.base_url,
                models=["claude-opus-4-1"],
                model_map={"claude-opus-*": VERTEX_MODEL},
                credentials={"key_file": str(vertex.account.path)},
                jurisdiction="BE",
                region="europe-west1",
            ),
        ]
        path = write_config(tmp, bedrock.url, providers=providers)
        config = load_config(path, env={**SIM_ENV, "BEDROCK_API_KEY": BEDROCK_API_KEY})
        gw = ThreadedGateway(config)
        store = open_configured_store(config)
        secret, key = new_key("dana", "payments")
        store.create_key(key)
        gw.start()
        yield {"gateway": Running(gw, secret, store), "bedrock": bedrock, "vertex": vertex}
        gw.stop()
        store.close()
    bedrock.stop()
    vertex.stop()


@pytest.fixture
def running(clouds: dict[str, Any]) -> Running:
    clouds["bedrock"].reset()
    clouds["vertex"].reset()
    return clouds["gateway"]


def sdk(gw: Running) -> anthropic.Anthropic:
    return anthropic.Anthropic(
        base_url=gw.url, api_key="sk-ant-client", default_headers={"x-egress-key": gw.key}, max_retries=0
    )


def ask(
    gw: Running, model: str, stream: bool, text: str = f"my key is {SECRET}, keep it safe"
) -> anthropic.types.Message:
    messages = [{"role": "user", "content": text}]
    client = sdk(gw)
    if stream:
        with client.messages.stream(model=model, max_tokens=64, messages=messages) as s:
            return s.get_final_message()
    return client.messages.create(model=model, max_tokens=64, messages=messages)


def record_where(running: Running, before: int, matches: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    """The first audit record after the first `before` that `matches`, waiting for it: the
    records of earlier requests in this module may still be arriving."""
    deadline = time.monotonic() + 5
    while True:
        found = [r for r in running.audit(before + 1)[before:] if matches(r)]
        if found:
            return found[0]
        assert time.monotonic() < deadline, "no such audit record"
        time.sleep(0.05)


def text_of(message: anthropic.types.Message) -> str:
    return "".join(b.text for b in message.content if b.type == "text")


# --- Bedrock --------------------------------------------------------------------------------------


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "whole"])
def test_bedrock_sigv4_masks_upstream_and_restores(running: Running, clouds: dict[str, Any], stream: bool):
    bedrock: BedrockSimulator = clouds["bedrock"]
    bedrock.enqueue(CloudReply(build=echo))
    before = len(running.audit(0))

    message = ask(running, "claude-sonnet-4-5", stream)

    assert text_of(message) == f"echo: my key is {SECRET}, keep it safe"
    assert message.model == "claude-sonnet-4-5"  # the client's own name, not the profile id
    [got] = bedrock.received
    assert SECRET.encode() not in got.body
    op = "invoke-with-response-stream" if stream else "invoke"
    assert got.path == f"/model/{EU_PROFILE.replace(':', '%3A')}/{op}"
    assert bedrock.models == [EU_PROFILE]
    assert (got.header("authorization") or "").startswith(f"AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/")
    assert got.header("x-egress-key") is None and got.header("x-api-key") is None
    body = got.json()
    assert body["anthropic_version"] == "bedrock-2023-05-31" and "model" not in body
    record = record_where(running, before, lambda r: r["stream"] is stream)
    assert record["endpoint"] == "bedrock-eu" and record["outcome"] == "forwarded"
    assert record["model"] == "claude-sonnet-4-5" and record["upstream_model"] == EU_PROFILE


def test_bedrock_stream_is_anthropic_sse_on_the_wire(running: Running, clouds: dict[str, Any]):
    """The recorded stream, framed as event-stream by the simulator, reaches the client as the
    recorded events (Bedrock's invocation metrics kept inside message_stop)."""
    body = {
        "model": "claude-sonnet-4-5",
        "max_tokens": 16,
        "stream": True,
        "messages": [{"role": "user", "content": "hi"}],
    }
    with httpx.stream(
        "POST", running.url + "/v1/messages", json=body, headers={"x-egress-key": running.key}, timeout=10
    ) as resp:
        raw = resp.read()
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/event-stream")
    assert raw.count(b"event: message_start\n") == 1 and raw.rstrip().endswith(b"}")
    assert b"amazon-bedrock-invocationMetrics" in raw and b'"p":' not in raw


def test_bedrock_api_key_is_a_bearer_token(running: Running, clouds: dict[str, Any]):
    bedrock: BedrockSimulator = clouds["bedrock"]
    bedrock.enqueue(CloudReply(build=echo))
    message = ask(running, "claude-haiku-4-5", True)
    assert text_of(message) == f"echo: my key is {SECRET}, keep it safe"
    [got] = bedrock.received
    assert got.header("authorization") == f"Bearer {BEDROCK_API_KEY}"
    assert bedrock.models == [HAIKU_ID]


def test_bedrock_throttling_is_a_429_the_sdk_retries(running: Running, clouds: dict[str, Any]):
    clouds["bedrock"].enqueue(CloudReply(status=429, error=("ThrottlingException", "Too many requests, please wait.")))
    with pytest.raises(anthropic.RateLimitError) as caught:
        ask(running, "claude-sonnet-4-5", False)
    assert caught.value.status_code == 429
    assert caught.value.body == {
        "type": "error",
        "error": {"type": "rate_limit_error", "message": "Too many requests, please wait."},
    }


def test_bedrock_unavailable_is_anthropics_529_overloaded(running: Running, clouds: dict[str, Any]):
    clouds["bedrock"].enqueue(CloudReply(status=503, error=("ServiceUnavailableException", "busy")))
    with pytest.raises(anthropic.APIStatusError) as caught:
        ask(running, "claude-sonnet-4-5", False)
    assert caught.value.status_code == 529
    assert caught.value.body["error"]["type"] == "overloaded_error"


def test_bedrock_exception_in_the_stream_is_anthropics_error_event(running: Running, clouds: dict[str, Any]):
    clouds["bedrock"].enqueue(
        CloudReply(exception=("throttlingException", "Too many tokens, please wait."), exception_after=3)
    )
    with pytest.raises(anthropic.APIStatusError, match="Too many tokens, please wait"):
        ask(running, "claude-sonnet-4-5", True, "hello")


def test_bedrock_frame_with_a_bad_crc_ends_the_stream_with_an_error(running: Running, clouds: dict[str, Any]):
    clouds["bedrock"].enqueue(CloudReply(corrupt_crc=True))
    before = len(running.audit(0))
    with pytest.raises(anthropic.APIStatusError, match="message CRC mismatch"):
        ask(running, "claude-sonnet-4-5", True, "crc")
    record_where(running, before, lambda r: r["error_code"] == "upstream_protocol_error")


def test_bedrock_refuses_a_wrong_signature(clouds: dict[str, Any]):
    """The simulator itself: a signature over other bytes is Bedrock's 403."""
    bedrock: BedrockSimulator = clouds["bedrock"]
    bad = (
        "AWS4-HMAC-SHA256 Credential=" + ACCESS_KEY + "/20260101/eu-central-1/bedrock/aws4_request, "
        "SignedHeaders=host;x-amz-date, Signature=" + "0" * 64
    )
    resp = httpx.post(
        bedrock.url + "/model/x/invoke",
        content=b'{"anthropic_version":"bedrock-2023-05-31"}',
        headers={"authorization": bad, "x-amz-date": "20260101T000000Z"},
    )
    assert resp.status_code == 403 and "x-amzn-errortype" in resp.headers
    assert "message" in resp.json()


# --- Vertex ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "whole"])
def test_vertex_token_masks_upstream_and_restores(running: Running, clouds: dict[str, Any], stream: bool):
    vertex: VertexSimulator = clouds["vertex"]
    vertex.enqueue(CloudReply(build=echo))

    message = ask(running, "claude-opus-4-1", stream)

    assert text_of(message) == f"echo: my key is {SECRET}, keep it safe"
    assert message.model == "claude-opus-4-1"
    [got] = vertex.received
    assert SECRET.encode() not in got.body
    method = "streamRawPredict" if stream else "rawPredict"
    assert got.path.endswith(f"/publishers/anthropic/models/{VERTEX_MODEL}:{method}")
    token = (got.header("authorization") or "").removeprefix("Bearer ")
    assert token in vertex.tokens
    body = got.json()
    assert body["anthropic_version"] == "vertex-2023-10-16" and "model" not in body


def test_vertex_token_is_reused_and_vertex_events_never_reach_the_client(running: Running, clouds: dict[str, Any]):
    vertex: VertexSimulator = clouds["vertex"]
    before = vertex.token_requests
    body = {
        "model": "claude-opus-4-1",
        "max_tokens": 16,
        "stream": True,
        "messages": [{"role": "user", "content": "hi"}],
    }
    for _ in range(3):
        with httpx.stream(
            "POST", running.url + "/v1/messages", json=body, headers={"x-egress-key": running.key}, timeout=10
        ) as resp:
            raw = resp.read()
        assert resp.status_code == 200 and b"event: message_stop" in raw
        assert b"vertex_event" not in raw
    assert len(vertex.received) == 3
    assert vertex.token_requests - before <= 1  # one token for all (none if an earlier test got it)


def test_vertex_quota_is_a_429_in_anthropics_shape(running: Running, clouds: dict[str, Any]):
    message = "Quota exceeded for aiplatform.googleapis.com/online_prediction_input_tokens_per_minute_per_base_model"
    clouds["vertex"].enqueue(CloudReply(status=429, error=("RESOURCE_EXHAUSTED", message)))
    with pytest.raises(anthropic.RateLimitError) as caught:
        ask(running, "claude-opus-4-1", True, "hello")
    assert caught.value.body == {"type": "error", "error": {"type": "rate_limit_error", "message": message}}


def test_vertex_refuses_a_token_it_did_not_issue(clouds: dict[str, Any]):
    vertex: VertexSimulator = clouds["vertex"]
    resp = httpx.post(
        vertex.base_url + "/publishers/anthropic/models/m:rawPredict",
        content=b"{}",
        headers={"authorization": "Bearer ya29.forged"},
    )
    assert resp.status_code == 401 and resp.json()["error"]["status"] == "UNAUTHENTICATED"
    assert json.dumps(resp.json())


@pytest.mark.parametrize(("cloud", "model"), [("bedrock", "claude-sonnet-4-5"), ("vertex", "claude-opus-4-1")])
def test_prompt_caching_thinking_and_tools_reach_the_cloud_unchanged(
    running: Running, clouds: dict[str, Any], cloud: str, model: str
):
    sim = clouds[cloud]
    system = [{"type": "text", "text": "You are terse.", "cache_control": {"type": "ephemeral", "ttl": "1h"}}]
    tools = [
        {
            "name": "read_file",
            "description": "Read a file",
            "input_schema": {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]},
            "cache_control": {"type": "ephemeral"},
        }
    ]
    messages = [
        {"role": "user", "content": "read a.txt"},
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "I should read it.", "signature": "c2lnbmF0dXJlLW9wYXF1ZQ=="},
                {"type": "tool_use", "id": "toolu_01", "name": "read_file", "input": {"path": "a.txt"}},
            ],
        },
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_01",
                    "content": "hello",
                    "cache_control": {"type": "ephemeral"},
                }
            ],
        },
    ]
    thinking = {"type": "enabled", "budget_tokens": 1024}
    with sdk(running).messages.stream(
        model=model,
        max_tokens=2048,
        system=system,
        tools=tools,
        tool_choice={"type": "auto"},
        thinking=thinking,
        messages=messages,
        extra_headers={"anthropic-beta": "interleaved-thinking-2025-05-14"},
    ) as s:
        s.get_final_message()
    [got] = sim.received
    body = got.json()
    assert body["system"] == system and body["tools"] == tools and body["messages"] == messages
    assert body["thinking"] == thinking and body["tool_choice"] == {"type": "auto"}
    if cloud == "bedrock":
        assert body["anthropic_beta"] == ["interleaved-thinking-2025-05-14"]
    else:
        assert "anthropic_beta" not in body and got.header("anthropic-beta") == "interleaved-thinking-2025-05-14"
