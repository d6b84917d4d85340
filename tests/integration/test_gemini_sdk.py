"""The official google-genai SDK through egress, to Google AI Studio (the Gemini simulator) and,
by translation, to a Chat Completions endpoint: a secret is masked upstream and restored in the
answer, streamed and not; the gateway key is taken where Gemini clients send theirs
(x-goog-api-key, ?key=) and never forwarded; egress's own errors are Gemini's shape.

    google-genai --> egress (ThreadedGateway: the app `egress serve` runs) --> gemini_sim / Chat sim
"""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from google import genai
from google.genai import errors as genai_errors
from google.genai import types

from egress.app import open_configured_store
from egress.config import load_config
from egress.gateway.auth import new_key
from tests.conftest import Running
from tests.support.gateway import ThreadedGateway, write_config
from tests.support.gemini_sim import API_KEY, Answer, GeminiSimulator, SimError, user_text
from tests.support.simulator import Received, Reply, UpstreamSimulator

GEMINI_MODEL = "gemini-2.5-pro"
CHAT_MODEL = "gemma-chat"  # served by the Chat simulator through translation
UPSTREAM_CHAT_KEY = "sk-upstream-chat-0009"


def aws_key() -> str:
    return "AKIA" + "".join(secrets.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567") for _ in range(16))


@pytest.fixture(scope="module")
def gemini_sim() -> Iterator[GeminiSimulator]:
    sim = GeminiSimulator(seed=secrets.randbits(32)).start()
    yield sim
    sim.stop()


@pytest.fixture(scope="module")
def chat_sim() -> Iterator[UpstreamSimulator]:
    sim = UpstreamSimulator(seed=secrets.randbits(32)).start()
    yield sim
    sim.stop()


@pytest.fixture(scope="module")
def running(
    gemini_sim: GeminiSimulator,
    chat_sim: UpstreamSimulator,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Running]:
    facts = {
        "jurisdiction": "US",
        "region": "us",
        "retention_days": 30,
        "trains_on_api_data": False,
        "dpa": True,
    }
    providers = [
        {
            "name": "sim-gemini",
            "api": "gemini",
            "base_url": gemini_sim.url,
            "models": ["gemini-*"],
            "credentials": {"env": "SIM_GEMINI_KEY"},
            "operator": "Simulated Google",
            **facts,
        },
        {
            "name": "sim-chat",
            "api": "openai-chat",
            "base_url": chat_sim.url + "/v1",
            "models": [CHAT_MODEL],
            "upstream_model": "gemma-3-270m",
            "credentials": {"env": "SIM_CHAT_KEY"},
            "operator": "Self-hosted",
            **facts,
        },
    ]
    path = write_config(tmp_path_factory.mktemp("gemini"), chat_sim.url, providers=providers)
    env = {"SIM_GEMINI_KEY": API_KEY, "SIM_CHAT_KEY": UPSTREAM_CHAT_KEY}
    config = load_config(path, env=env)
    store = open_configured_store(config)
    secret, key = new_key("alice", "platform")
    store.create_key(key)
    gw = Running(ThreadedGateway(config).start(), secret, store)
    yield gw
    gw.stop()


@pytest.fixture
def sims(gemini_sim: GeminiSimulator, chat_sim: UpstreamSimulator) -> tuple[GeminiSimulator, UpstreamSimulator]:
    gemini_sim.reset()
    chat_sim.reset()
    return gemini_sim, chat_sim


def client(running: Running, api_version: str = "v1beta") -> genai.Client:
    return genai.Client(
        api_key=running.key,
        http_options=types.HttpOptions(
            base_url=running.url, api_version=api_version, retry_options=types.HttpRetryOptions(attempts=1)
        ),
    )


def assert_never_upstream(value: str, received: list[Received]) -> None:
    for r in received:
        assert value.encode() not in r.body, f"the secret reached the upstream at {r.path}"
        assert all(value not in v for _, v in r.headers)
        assert value not in r.query


def assert_gateway_key_not_forwarded(running: Running, received: list[Received]) -> None:
    for r in received:
        assert running.key not in r.query, "the gateway key left in the query"
        assert all(running.key not in v for _, v in r.headers), "the gateway key left in a header"


# --- native: Google AI Studio ------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_secret_masked_upstream_and_restored(running: Running, sims: Any, stream: bool) -> None:
    gemini_sim, _ = sims
    before = len(running.audit(0))
    secret = aws_key()
    prompt = f"deploy with aws_access_key_id = {secret} please"
    c = client(running)
    config = types.GenerateContentConfig(system_instruction="You are terse.")
    if stream:
        text = "".join(
            chunk.text or ""
            for chunk in c.models.generate_content_stream(model=GEMINI_MODEL, contents=prompt, config=config)
        )
    else:
        text = c.models.generate_content(model=GEMINI_MODEL, contents=prompt, config=config).text or ""
    assert text == "echo: " + prompt  # restored: the client sees its own value
    [got] = gemini_sim.received
    method = "streamGenerateContent" if stream else "generateContent"
    assert got.path == f"/v1beta/models/{GEMINI_MODEL}:{method}"
    assert ("alt=sse" in got.query) is stream
    assert got.header("x-goog-api-key") == API_KEY  # the endpoint's key, not the client's
    assert_never_upstream(secret, gemini_sim.received)
    assert_gateway_key_not_forwarded(running, gemini_sim.received)
    assert "EGX_" in user_text(got.json())  # the upstream saw a placeholder
    record = running.audit(before + 1)[-1]
    assert record["api"] == ("gemini.stream_generate_content" if stream else "gemini.generate_content")
    assert record["model"] == GEMINI_MODEL
    assert record["client"] == "google-genai"
    assert secret not in json.dumps(record)


def test_function_call_args_masked_and_restored_signature_untouched(running: Running, sims: Any) -> None:
    """A function call's args are restored in the answer; its thoughtSignature comes back to the
    upstream byte for byte on the next turn (the simulator refuses it otherwise), and the
    function response's secret is masked."""
    gemini_sim, _ = sims
    secret = aws_key()
    gemini_sim.script(lambda doc: [gemini_sim.function_call("read_file", {"path": user_text(doc).split()[-1]})])
    c = client(running)
    tool = types.Tool(
        function_declarations=[
            types.FunctionDeclaration(
                name="read_file",
                description="Read a file",
                parameters_json_schema={"type": "object", "properties": {"path": {"type": "string"}}},
            )
        ]
    )
    config = types.GenerateContentConfig(tools=[tool], automatic_function_calling={"disable": True})
    first = c.models.generate_content(model=GEMINI_MODEL, contents=f"read /tmp/{secret}", config=config)
    call = first.candidates[0].content.parts[0]
    assert call.function_call.args == {"path": f"/tmp/{secret}"}  # restored in the args
    assert call.thought_signature
    history = [
        types.Content(role="user", parts=[types.Part(text=f"read /tmp/{secret}")]),
        first.candidates[0].content,
        types.Content(
            role="user",
            parts=[types.Part.from_function_response(name="read_file", response={"content": f"key={secret}"})],
        ),
    ]
    second = "".join(
        chunk.text or ""
        for chunk in c.models.generate_content_stream(model=GEMINI_MODEL, contents=history, config=config)
    )
    assert second == "echo: " + json.dumps({"content": f"key={secret}"})
    assert len(gemini_sim.received) == 2, [r.body for r in gemini_sim.received]
    assert_never_upstream(secret, gemini_sim.received)
    sent = gemini_sim.received[1].json()["contents"][1]["parts"][0]
    # The same bytes (the SDK writes them back URL-safe; the simulator checks them too).
    assert base64.urlsafe_b64decode(sent["thoughtSignature"]) == call.thought_signature


def test_count_tokens(running: Running, sims: Any) -> None:
    gemini_sim, _ = sims
    secret = aws_key()
    c = client(running)  # held: a Client closes its connections when collected
    result = c.models.count_tokens(model=GEMINI_MODEL, contents=f"count {secret}")
    assert result.total_tokens and result.total_tokens > 0
    [got] = gemini_sim.received
    assert got.path == f"/v1beta/models/{GEMINI_MODEL}:countTokens"
    assert_never_upstream(secret, gemini_sim.received)


def test_v1_paths_and_key_in_query(running: Running, sims: Any) -> None:
    """`/v1/models/...` routes like `/v1beta`; a gateway key in `?key=` authenticates, and neither
    the upstream nor the kept query sees it; other parameters (alt=sse) pass."""
    gemini_sim, _ = sims
    before = len(running.audit(0, egress=True))
    body = {"contents": [{"role": "user", "parts": [{"text": "hello"}]}]}
    r = httpx.post(f"{running.url}/v1/models/{GEMINI_MODEL}:streamGenerateContent?alt=sse&key={running.key}", json=body)
    assert r.status_code == 200, r.text
    assert "echo: hello" in "".join(
        json.loads(line[5:])["candidates"][0]["content"]["parts"][0]["text"]
        for line in r.text.splitlines()
        if line.startswith("data:")
    )
    [got] = gemini_sim.received
    assert got.query == "alt=sse"
    assert got.header("x-goog-api-key") == API_KEY
    assert_gateway_key_not_forwarded(running, gemini_sim.received)
    records = running.audit(before + 2, egress=True)  # the write-ahead egress record and its request's
    assert records[-1]["api"] == "gemini.stream_generate_content" and records[-1]["auth"] == "gateway_key"
    assert running.key not in json.dumps(records), "the gateway key reached the audit"


def test_json_array_stream_refused_precisely(running: Running, sims: Any) -> None:
    gemini_sim, _ = sims
    body = {"contents": [{"role": "user", "parts": [{"text": "hello"}]}]}
    r = httpx.post(
        f"{running.url}/v1beta/models/{GEMINI_MODEL}:streamGenerateContent",
        json=body,
        headers={"x-goog-api-key": running.key},
    )
    assert r.status_code == 400
    error = r.json()["error"]
    assert error["status"] == "INVALID_ARGUMENT" and error["code"] == 400
    assert "alt=sse" in error["message"]
    assert gemini_sim.received == []


def test_egress_errors_in_gemini_shape(running: Running, sims: Any) -> None:
    """A wrong gateway key and an unknown model are refused in Gemini's error shape, which the
    SDK raises as its own errors."""
    bad = genai.Client(
        api_key="egk_" + "x" * 43,
        http_options=types.HttpOptions(base_url=running.url, retry_options=types.HttpRetryOptions(attempts=1)),
    )
    with pytest.raises(genai_errors.ClientError) as caught:
        bad.models.generate_content(model=GEMINI_MODEL, contents="hi")
    assert caught.value.code == 401 and caught.value.status == "UNAUTHENTICATED"
    c = client(running)
    with pytest.raises(genai_errors.ClientError) as caught:
        c.models.generate_content(model="unknown-model", contents="hi")
    assert caught.value.code == 400 and caught.value.status == "INVALID_ARGUMENT"
    assert caught.value.details["error"]["details"][0]["reason"] == "NO_ROUTE"
    assert sims[0].received == []


# --- translation: a Chat Completions endpoint ----------------------------------------------------


def chat_echo(stream: bool) -> Reply:
    """A Chat model that echoes the last user message it was sent (placeholders and all)."""

    def build(received: Received) -> list[bytes]:
        doc = received.json()
        text = "echo: " + next(m["content"] for m in reversed(doc["messages"]) if m["role"] == "user")
        if not stream:
            answer = {
                "id": "chatcmpl-1",
                "object": "chat.completion",
                "created": 1,
                "model": doc["model"],
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 7, "completion_tokens": 5, "total_tokens": 12},
            }
            return [json.dumps(answer).encode()]
        base = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": doc["model"]}
        third = len(text) // 3
        pieces = [text[:third], text[third : 2 * third], text[2 * third :]]
        chunks = [{**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]}]
        chunks += [{**base, "choices": [{"index": 0, "delta": {"content": p}}]} for p in pieces]
        chunks.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
        chunks.append({**base, "choices": [], "usage": {"prompt_tokens": 7, "completion_tokens": 5}})
        return [b"data: " + json.dumps(c).encode() + b"\n\n" for c in chunks] + [b"data: [DONE]\n\n"]

    headers = {"content-type": "text/event-stream" if stream else "application/json"}
    return Reply(headers=headers, build=build)


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_translated_to_chat(running: Running, sims: Any, stream: bool) -> None:
    _, chat_sim = sims
    secret = aws_key()
    chat_sim.enqueue(chat_echo(stream))
    prompt = f"token {secret} here"
    c = client(running)
    config = types.GenerateContentConfig(system_instruction="Be brief.")
    if stream:
        chunks = list(c.models.generate_content_stream(model=CHAT_MODEL, contents=prompt, config=config))
        text = "".join(chunk.text or "" for chunk in chunks)
        assert chunks[-1].candidates[0].finish_reason == types.FinishReason.STOP
    else:
        answer = c.models.generate_content(model=CHAT_MODEL, contents=prompt, config=config)
        text = answer.text or ""
        assert answer.usage_metadata.prompt_token_count == 7
    assert text == "echo: " + prompt
    [got] = chat_sim.received
    assert got.path == "/v1/chat/completions"
    sent = got.json()
    assert sent["model"] == "gemma-3-270m"
    assert sent["messages"][0] == {"role": "system", "content": "Be brief."}
    assert sent.get("stream", False) is stream
    assert got.header("authorization") == f"Bearer {UPSTREAM_CHAT_KEY}"
    assert_never_upstream(secret, chat_sim.received)
    assert_gateway_key_not_forwarded(running, chat_sim.received)


def test_model_list_in_gemini_s_shape(running: Running, sims: Any) -> None:
    """google-genai's models.list(): the models endpoints spell out in full (a glob such as
    gemini-* routes but cannot be listed), of the endpoints that answer the Gemini API."""
    c = client(running)
    names = [m.name for m in c.models.list()]
    assert names == [f"models/{CHAT_MODEL}"]
    r = httpx.get(f"{running.url}/v1/models", headers={"x-goog-api-key": running.key})
    assert r.json() == {
        "models": [
            {
                "name": f"models/{CHAT_MODEL}",
                "displayName": CHAT_MODEL,
                "supportedGenerationMethods": ["generateContent", "streamGenerateContent", "countTokens"],
            }
        ]
    }


def test_a_stream_cut_short_ends_with_gemini_s_error(running: Running, sims: Any) -> None:
    """The upstream ends the stream before any finishReason: the client gets the text so far, its
    placeholder restored, then Gemini's in-stream error (the SDK raises it), never a silent end."""
    gemini_sim, _ = sims
    secret = aws_key()
    gemini_sim.script(lambda doc: Answer([{"text": "partial " + user_text(doc)}], finish_reason=None))
    c = client(running)
    seen: list[str] = []
    with pytest.raises(genai_errors.APIError) as caught:
        for chunk in c.models.generate_content_stream(model=GEMINI_MODEL, contents=f"key {secret}"):
            seen.append(chunk.text or "")
    assert caught.value.code == 502 and "before the answer was complete" in str(caught.value.message)
    shown = "".join(seen)
    assert ("partial key " + secret).startswith(shown), shown  # restored, or cut before it: never a fragment
    assert "EGX_" not in shown


def test_a_stream_with_nothing_to_restore_is_relayed_byte_for_byte(running: Running, sims: Any) -> None:
    """Protocol fidelity: without a placeholder to restore, the client reads the upstream's SSE as
    Google wrote it (CRLF line ends, every chunk's fields), whatever the network's cuts."""
    gemini_sim, _ = sims
    body = {"contents": [{"role": "user", "parts": [{"text": "nothing secret here, " * 20}]}]}
    with httpx.stream(
        "POST",
        f"{running.url}/v1beta/models/{GEMINI_MODEL}:streamGenerateContent?alt=sse",
        json=body,
        headers={"x-goog-api-key": running.key},
    ) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        relayed = b"".join(r.iter_raw())
    [sent] = gemini_sim.sent
    assert relayed == sent and sent.count(b"\r\n\r\n") > 1


def test_the_provider_s_own_errors_pass_unmodified(running: Running, sims: Any) -> None:
    """Google's quota error reaches the SDK as Google wrote it (status, status name, message)."""
    gemini_sim, _ = sims

    def quota(doc: dict[str, Any]) -> list[dict[str, Any]]:
        raise SimError(429, "RESOURCE_EXHAUSTED", "Quota exceeded for quota metric 'Generate Content API requests'")

    gemini_sim.script(quota)
    c = client(running)
    with pytest.raises(genai_errors.ClientError) as caught:
        c.models.generate_content(model=GEMINI_MODEL, contents="hi")
    assert caught.value.code == 429 and caught.value.status == "RESOURCE_EXHAUSTED"
    assert caught.value.message.startswith("Quota exceeded for quota metric")
