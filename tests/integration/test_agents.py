"""End to end: the real Claude Code and Codex CLI binaries, headless, through egress, to the simulator.

    agent (scratch HOME, env -i) --HTTP--> egress (in-process, loopback) --HTTP--> upstream simulator

What is checked at each seam:
  * the agent's own result (exit status, the model's text on stdout);
  * what the agent sent to egress, captured at egress's door (its pipeline), against what the
    simulator received: the gateway credential is gone, the provider credential is the endpoint's,
    every other header passes unchanged;
  * the audit record egress wrote for each request.

The binaries are pinned in `.tools/npm/package.json`; if they are missing these tests FAIL with the
install command (see tests/support/agents.py).
"""

from __future__ import annotations

import hashlib
import json
import secrets
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from egress.gateway.auth import KEY_PREFIX
from tests.support import agents
from tests.support.gateway import SIM_ENV
from tests.support.simulator import Received, Reply, UpstreamSimulator

pytestmark = pytest.mark.agents

UPSTREAM_ANTHROPIC_KEY = SIM_ENV["SIM_ANTHROPIC_KEY"]  # sk-ant-upstream-secret-0001
UPSTREAM_OPENAI_KEY = SIM_ENV["SIM_OPENAI_KEY"]  # sk-upstream-openai-0002
CLIENT_PROVIDER_KEY = "sk-ant-client-fake-do-not-forward-7731"
CODEX_MODEL = "gpt-5.5-codex"  # served by the fixture config's sim-openai endpoint ("gpt-*")

# Headers egress legitimately does not pass through as the client sent them.
_NOT_RELAYED = {
    "host",
    "content-length",
    "connection",
    "accept-encoding",
    "x-egress-key",
    "x-api-key",
    "authorization",
    "transfer-encoding",
    "keep-alive",
    "te",
    "upgrade",
}


# --- fixtures ------------------------------------------------------------------------------------


class Door:
    """What reached egress from the client, captured as the pipeline receives it."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []

    def headers(self, i: int = 0) -> list[tuple[str, str]]:
        return self.requests[i]["headers"]

    def header(self, name: str, i: int = 0) -> str | None:
        return next((v for k, v in self.headers(i) if k == name.lower()), None)


@pytest.fixture
def door(gateway: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Door]:
    seen = Door()
    pipeline = gateway.gateway.app.pipeline

    def note(x: Any) -> None:
        seen.requests.append(
            {
                "method": x.method,
                "path": x.path,
                "query": x.query,
                "headers": [(k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in x.headers],
            }
        )

    original_handle, original_refuse = pipeline.handle, pipeline.refuse

    async def handle(x: Any, receive: Any, responder: Any) -> None:
        note(x)
        await original_handle(x, receive, responder)

    async def refuse(x: Any, responder: Any, err: Any) -> None:
        note(x)
        await original_refuse(x, responder, err)

    monkeypatch.setattr(pipeline, "handle", handle)
    monkeypatch.setattr(pipeline, "refuse", refuse)
    yield seen


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """The agents' working directory: empty and outside any git repository."""
    path = tmp_path / "work"
    path.mkdir()
    return path


# --- scripted streams ------------------------------------------------------------------------------


def sse(event: str, data: dict[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


def split_at(data: bytes, pieces: int) -> list[bytes]:
    """Cut a stream into `pieces` chunks at fixed odd offsets, so events straddle network reads."""
    step = max(len(data) // pieces, 1)
    cuts = [min(i * step + 7 * i, len(data)) for i in range(1, pieces)]
    cuts = sorted({c for c in cuts if 0 < c < len(data)})
    return [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]


def thirds(text: str) -> list[str]:
    n = len(text)
    return [text[: n // 3], text[n // 3 : 2 * n // 3], text[2 * n // 3 :]]


def anthropic_stream(marker: str, usage: dict[str, int]) -> list[bytes]:
    msg_id = "msg_e2e" + secrets.token_hex(8)
    events = [
        sse(
            "message_start",
            {
                "type": "message_start",
                "message": {
                    "id": msg_id,
                    "type": "message",
                    "role": "assistant",
                    "model": "claude-opus-5-5",
                    "content": [],
                    "stop_reason": None,
                    "stop_sequence": None,
                    "usage": {
                        "input_tokens": usage["input_tokens"],
                        "output_tokens": 1,
                        "cache_creation_input_tokens": usage["cache_creation_input_tokens"],
                        "cache_read_input_tokens": usage["cache_read_input_tokens"],
                    },
                },
            },
        ),
        sse(
            "content_block_start",
            {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        ),
        sse("ping", {"type": "ping"}),
        *[
            sse(
                "content_block_delta",
                {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": part}},
            )
            for part in thirds(marker)
        ],
        sse("content_block_stop", {"type": "content_block_stop", "index": 0}),
        sse(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": usage["output_tokens"]},
            },
        ),
        sse("message_stop", {"type": "message_stop"}),
    ]
    return split_at(b"".join(events), 6)


def responses_stream(marker: str, usage: dict[str, Any]) -> list[bytes]:
    resp_id = "resp_e2e" + secrets.token_hex(8)
    item_id = "msg_e2e" + secrets.token_hex(8)
    base = {"id": resp_id, "object": "response", "created_at": 1764138000, "model": CODEX_MODEL}
    message = {
        "id": item_id,
        "type": "message",
        "role": "assistant",
        "status": "completed",
        "content": [{"type": "output_text", "text": marker, "annotations": []}],
    }
    payloads = [
        ("response.created", {"response": {**base, "status": "in_progress", "output": []}}),
        (
            "response.output_item.added",
            {"output_index": 0, "item": {**message, "status": "in_progress", "content": []}},
        ),
        *[
            ("response.output_text.delta", {"item_id": item_id, "output_index": 0, "content_index": 0, "delta": part})
            for part in thirds(marker)
        ],
        ("response.output_text.done", {"item_id": item_id, "output_index": 0, "content_index": 0, "text": marker}),
        ("response.output_item.done", {"output_index": 0, "item": message}),
        ("response.completed", {"response": {**base, "status": "completed", "output": [message], "usage": usage}}),
    ]
    events = [sse(name, {"type": name, "sequence_number": seq, **data}) for seq, (name, data) in enumerate(payloads)]
    return split_at(b"".join(events), 6)


def sse_reply(chunks: list[bytes], delay_s: float = 0.0) -> Reply:
    return Reply(
        headers={"content-type": "text/event-stream", "cache-control": "no-cache", "request-id": "req_e2e"},
        chunks=chunks,
        delay_s=delay_s,
    )


# --- assertions shared by the forwarded cases -------------------------------------------------------


def assert_relayed_unchanged(door_headers: list[tuple[str, str]], got: Received) -> None:
    """Every client header egress has no reason to touch reached upstream with the same value(s)."""
    upstream: dict[str, list[str]] = {}
    for k, v in got.headers:
        upstream.setdefault(k.lower(), []).append(v)
    client: dict[str, list[str]] = {}
    for k, v in door_headers:
        client.setdefault(k, []).append(v)
    for name, values in client.items():
        if name in _NOT_RELAYED:
            continue
        assert upstream.get(name) == values, (
            f"header {name!r}: client sent {values!r}, upstream got {upstream.get(name)!r}"
        )


def only(received: list[Received]) -> Received:
    assert len(received) == 1, [(r.method, r.path, r.query) for r in received]
    return received[0]


# --- Claude Code ---------------------------------------------------------------------------------


def test_claude_code_through_egress(
    claude: Path, upstream: UpstreamSimulator, gateway: Any, door: Door, tmp_path: Path, workdir: Path
) -> None:
    marker = f"E2E-CLAUDE-{uuid.uuid4().hex}"
    usage = {"input_tokens": 4321, "output_tokens": 17, "cache_creation_input_tokens": 7, "cache_read_input_tokens": 5}
    # A few ms between chunks: events straddle network reads on both of egress's hops.
    upstream.enqueue(sse_reply(anthropic_stream(marker, usage), delay_s=0.005))
    env = agents.claude_env(tmp_path / "home", gateway.url, gateway.key, CLIENT_PROVIDER_KEY)

    result = agents.run_agent([str(claude), "-p", "Reply with the marker."], env, workdir)

    assert result.returncode == 0, result.describe()
    assert marker in result.stdout, result.describe()

    # What left egress: one streamed Messages call, the endpoint's credential, no gateway key.
    got = only(upstream.received)
    assert (got.method, got.path, got.query) == ("POST", "/v1/messages", "beta=true")
    assert got.json()["stream"] is True
    assert got.header("x-api-key") == UPSTREAM_ANTHROPIC_KEY
    assert got.header("x-egress-key") is None
    assert got.header("authorization") is None
    raw_headers = "\n".join(f"{k}: {v}" for k, v in got.headers)
    assert CLIENT_PROVIDER_KEY not in raw_headers and gateway.key not in raw_headers
    assert CLIENT_PROVIDER_KEY.encode() not in got.body and gateway.key.encode() not in got.body

    # What reached egress: Claude's own headers, relayed unchanged.
    assert len(door.requests) == 1, door.requests
    assert (door.requests[0]["path"], door.requests[0]["query"]) == ("/v1/messages", "beta=true")
    assert door.header("x-egress-key") == gateway.key
    assert door.header("x-api-key") == CLIENT_PROVIDER_KEY
    assert door.header("user-agent", 0).startswith(f"claude-cli/{agents.CLAUDE_VERSION}")
    assert got.header("anthropic-version") == door.header("anthropic-version") == "2023-06-01"
    beta = got.header("anthropic-beta")
    assert beta is not None and beta == door.header("anthropic-beta")
    assert "claude-code-20250219" in beta.split(",")
    session = got.header("x-claude-code-session-id")
    assert session and session == door.header("x-claude-code-session-id")
    assert_relayed_unchanged(door.headers(), got)

    # What egress recorded.
    [record] = gateway.audit(1)
    assert record["client"] == "claude-code"
    assert record["user"] == "alice" and record["team"] == "platform" and record["auth"] == "gateway_key"
    assert record["endpoint"] == "sim-anthropic"
    assert record["api"] == "anthropic.messages"
    assert record["outcome"] == "forwarded"
    assert record["status"] == 200 and record["upstream_status"] == 200
    assert record["error_code"] is None
    assert record["session_id"] == session
    assert record["stream"] is True
    assert record["upstream_attempts"] == 1
    assert record["upstream_body_sha256"] == hashlib.sha256(got.body).hexdigest()
    assert record["usage"] == {
        "input_tokens": 4321,
        "output_tokens": 17,
        "cache_read_tokens": 5,
        "cache_write_tokens": 7,
    }
    # The record holds no credential and no prompt text.
    canonical = json.dumps(record)
    assert (
        gateway.key not in canonical
        and CLIENT_PROVIDER_KEY not in canonical
        and UPSTREAM_ANTHROPIC_KEY not in canonical
    )
    assert marker not in canonical


@pytest.mark.parametrize("max_retries", ["0", None], ids=["max-retries-0", "default-retries"])
def test_claude_code_wrong_gateway_key_is_refused(
    claude: Path,
    upstream: UpstreamSimulator,
    gateway: Any,
    door: Door,
    tmp_path: Path,
    workdir: Path,
    max_retries: str | None,
) -> None:
    """A wrong gateway key ends the run at once and nothing reaches the provider.

    With Claude's default retry policy too: it retries a plain 401 with backoff for minutes, but
    egress marks its refusal final (`x-should-retry: false`), which Claude honours.
    """
    wrong_key = KEY_PREFIX + secrets.token_urlsafe(32)
    env = agents.claude_env(tmp_path / "home", gateway.url, wrong_key, CLIENT_PROVIDER_KEY)
    if max_retries is None:
        del env["CLAUDE_CODE_MAX_RETRIES"]
    else:
        env["CLAUDE_CODE_MAX_RETRIES"] = max_retries

    result = agents.run_agent([str(claude), "-p", "This must not leave the gateway."], env, workdir, timeout=30)

    assert result.returncode != 0, result.describe()
    assert result.wall_s < 15, f"a refusal should end the run quickly\n{result.describe()}"
    # The user is told why, in egress's words.
    assert "the gateway key is unknown or revoked" in result.stdout + result.stderr, result.describe()
    assert upstream.received == [], [(r.method, r.path) for r in upstream.received]

    # Claude reached egress once (with the wrong key) and was turned away at the door.
    assert [(r["method"], r["path"], r["query"]) for r in door.requests] == [("POST", "/v1/messages", "beta=true")]
    assert door.header("x-egress-key") == wrong_key
    [record] = gateway.audit(1)
    assert record["outcome"] == "refused"
    assert record["error_code"] == "unauthorized"
    assert record["status"] == 401
    assert record["upstream_attempts"] == 0 and record["endpoint"] is None
    assert record["user"] is None and record["key_id"] is None
    assert record["client"] == "claude-code"
    assert wrong_key not in json.dumps(record)


# --- Codex CLI ------------------------------------------------------------------------------------


def test_codex_through_egress(
    codex: Path, upstream: UpstreamSimulator, gateway: Any, door: Door, tmp_path: Path, workdir: Path
) -> None:
    marker = f"E2E-CODEX-{uuid.uuid4().hex}"
    usage = {
        "input_tokens": 2345,
        "input_tokens_details": {"cached_tokens": 1024},
        "output_tokens": 67,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": 2412,
    }
    # A pause after every chunk: Codex closes its connection as soon as it has read
    # response.completed, before the upstream's end of body. The answer was whole, so egress must
    # audit it as forwarded, not cancelled.
    upstream.enqueue(sse_reply(responses_stream(marker, usage), delay_s=0.05))
    codex_home = agents.write_codex_home(tmp_path / "codex-home", gateway.url, CODEX_MODEL)
    env = agents.codex_env(tmp_path / "home", codex_home, gateway.key)

    result = agents.run_agent(agents.codex_exec_argv(codex, "Reply with the marker."), env, workdir)

    assert result.returncode == 0, result.describe()
    assert marker in result.stdout, result.describe()

    got = only(upstream.received)
    assert (got.method, got.path, got.query) == ("POST", "/v1/responses", "")
    body = got.json()
    assert body["stream"] is True and body["model"] == CODEX_MODEL
    # The gateway key travelled as the Bearer token and was swapped for the endpoint's credential.
    assert door.header("authorization") == f"Bearer {gateway.key}"
    assert got.header("authorization") == f"Bearer {UPSTREAM_OPENAI_KEY}"
    raw_headers = "\n".join(f"{k}: {v}" for k, v in got.headers)
    assert gateway.key not in raw_headers and gateway.key.encode() not in got.body
    assert got.header("originator") == door.header("originator") == "codex_exec"
    assert door.header("user-agent").startswith("codex_exec/")
    assert_relayed_unchanged(door.headers(), got)

    [record] = gateway.audit(1)
    assert record["client"] == "codex"
    assert record["user"] == "alice" and record["auth"] == "gateway_key"
    assert record["endpoint"] == "sim-openai"
    assert record["outcome"] == "forwarded"
    assert record["status"] == 200 and record["upstream_status"] == 200
    assert record["api"] == "openai.responses"
    assert record["model"] == CODEX_MODEL and record["stream"] is True
    assert record["upstream_body_sha256"] == hashlib.sha256(got.body).hexdigest()
    assert record["usage"] == {
        "input_tokens": 2345,
        "output_tokens": 67,
        "cache_read_tokens": 1024,
        "cache_write_tokens": None,
    }
    assert record["session_id"] == door.header("session-id"), (record["session_id"], door.headers())
    canonical = json.dumps(record)
    assert gateway.key not in canonical and UPSTREAM_OPENAI_KEY not in canonical and marker not in canonical


def test_codex_with_recorded_fixture(
    codex: Path,
    upstream: UpstreamSimulator,
    gateway: Any,
    door: Door,
    tmp_path: Path,
    workdir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Codex against the shared recorded Responses fixture, chosen by the `x-sim-fixture` header
    that Codex itself sends (config `http_headers`) and egress relays. (The recorded file lacks
    its final blank line; the simulator terminates it, as a real provider would.)"""
    fixture = "openai-responses/codex_cli_responses_fixture.sse"
    codex_home = agents.write_codex_home(
        tmp_path / "codex-home", gateway.url, CODEX_MODEL, http_headers={"x-sim-fixture": fixture}
    )
    env = agents.codex_env(tmp_path / "home", codex_home, gateway.key)

    result = agents.run_agent(agents.codex_exec_argv(codex, "say hi"), env, workdir)

    assert result.returncode == 0, result.describe()
    assert "fixture hello" in result.stdout, result.describe()
    # One request: the answer was complete the first time (no "Reconnecting..." retry).
    got = only(upstream.received)
    assert (got.method, got.path) == ("POST", "/v1/responses")
    assert got.header("x-sim-fixture") == door.header("x-sim-fixture") == fixture
    assert got.header("authorization") == f"Bearer {UPSTREAM_OPENAI_KEY}"
    [record] = gateway.audit(1)
    assert record["outcome"] == "forwarded" and record["status"] == 200
    assert record["client"] == "codex" and record["endpoint"] == "sim-openai" and record["user"] == "alice"
