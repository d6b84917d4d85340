"""Masking end to end with the real agents: Claude Code and Codex CLI read a file full of secrets
through their own tools, and egress keeps every secret from the provider while the user still
gets the real values back.

    agent --> egress (real detection, default policy: mask secrets) --> upstream simulator

The simulator plays a model that can only quote what it was sent: turn 1 asks the agent to read
`deploy.env` (Claude Code's `Read` tool, Codex's `exec_command` running `cat`); the agent runs the
tool and sends the file back in turn 2; the model answers by quoting the lines it saw, that is,
with egress's placeholders. Checked:
  * no secret reached the upstream in any request (bodies and headers), placeholders did;
  * the agent's final answer carries the real values, and no placeholder;
  * the audit says what was masked and holds neither the values nor the placeholders, nor does
    the database file on disk.

The agents are the pinned binaries (tests/support/agents.py); a missing install is a failure.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import secrets
import string
import threading
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.support import agents
from tests.support.masking import sse
from tests.support.simulator import Received, Reply, split_random

pytestmark = pytest.mark.agents

PLACEHOLDER = re.compile(r"EGX_[A-Z0-9_]+_[a-z]{13}")
CLIENT_PROVIDER_KEY = "sk-ant-client-fake-do-not-forward-7731"
CODEX_MODEL = "gpt-5.5-codex"  # served by the fixture config's sim-openai endpoint ("gpt-*")
SSE_HEADERS = {"content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache"}
# Every side request an agent may make takes a scripted reply off the queue (count_tokens too);
# each queued reply reads its request to decide what to answer.
QUEUED = 8

# --- the secrets -------------------------------------------------------------------------------

_ALNUM = string.ascii_letters + string.digits
_BASE62 = string.digits + string.ascii_uppercase + string.ascii_lowercase


def _random(alphabet: str, n: int) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(n))


def _github_pat() -> str:
    """A classic GitHub token whose checksum is right (egress drops look-alikes that fail it)."""
    body = _random(_ALNUM, 30)
    crc, check = zlib.crc32(body.encode()), ""
    while crc:
        crc, digit = divmod(crc, 62)
        check = _BASE62[digit] + check
    return "ghp_" + body + check.rjust(6, "0")


# variable name -> (a fresh value egress's real detectors find, the rule that finds it)
def fresh_secrets() -> dict[str, tuple[str, str]]:
    return {
        "AWS_ACCESS_KEY_ID": ("AKIA" + _random("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16), "aws-access-key-id"),
        "AWS_SECRET_ACCESS_KEY": (_random(_ALNUM + "/+", 40), "aws-secret-access-key"),
        "STRIPE_SECRET_KEY": ("sk_live_" + _random(_ALNUM, 24), "stripe-live-secret-key"),
        "GITHUB_TOKEN": (_github_pat(), "github-pat-classic"),
        "SLACK_BOT_TOKEN": (
            f"xoxb-{_random(string.digits, 11)}-{_random(string.digits, 12)}-{_random(_ALNUM, 24)}",
            "slack-bot-token",
        ),
    }


@dataclass
class SecretsFile:
    path: Path
    values: dict[str, str]  # variable -> secret value
    rules: set[str]

    @classmethod
    def write(cls, directory: Path) -> SecretsFile:
        found = fresh_secrets()
        lines = [
            "# deploy settings for the billing service",
            "APP_NAME=billing",
            "REGION=eu-west-1",
            *[f"{name}={value}" for name, (value, _) in found.items()],
            "LOG_LEVEL=info",
        ]
        path = directory / "deploy.env"
        path.write_text("\n".join(lines) + "\n")
        return cls(path, {name: value for name, (value, _) in found.items()}, {rule for _, rule in found.values()})

    def assert_absent(self, data: bytes | str, where: str) -> None:
        text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
        leaked = [name for name, value in self.values.items() if value in text]
        assert not leaked, f"{', '.join(leaked)} reached {where}"


def quoted_lines(tool_output: str) -> list[str]:
    """The lines of a tool's output that hold a placeholder, without the line numbers Claude's
    Read tool puts in front (`4` and a tab, or `   4→` in older versions)."""
    return [
        re.sub(r"^\s*\d+(?:\t|\u2192)", "", line).strip()
        for line in tool_output.splitlines()
        if PLACEHOLDER.search(line)
    ]


def answer_text(lines: list[str]) -> str:
    return "I read deploy.env; it holds these credentials:\n" + "\n".join(f"- {line}" for line in lines)


def text_of(content: Any) -> str:
    """A tool result's text: a string, or a list of text parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(part.get("text", "") for part in content if isinstance(part, dict))
    return ""


@dataclass
class Model:
    """The scripted model's notes: what each request was taken to be and what the tool returned.

    The model only takes notes; the test asserts on them after the run (an assertion raised in
    the simulator would reach the agent as a 500, not as a readable test failure)."""

    turns: list[str] = field(default_factory=list)  # "read" | "answer" | "side", in request order
    tool_output: list[str] = field(default_factory=list)  # the tool result the model saw in turn 2
    answered: list[str] = field(default_factory=list)  # the text it wrote back (with placeholders)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def note(self, turn: str) -> None:
        with self.lock:
            self.turns.append(turn)


def streamed(wire: bytes, received: Received) -> list[bytes]:
    """Cut at random offsets, so events (and placeholders) straddle network reads."""
    return split_random(wire, random.Random(len(received.body)), max_pieces=60)


def pieces(text: str, size: int = 5) -> list[str]:
    """Small deltas: every placeholder spans several of them."""
    return [text[i : i + size] for i in range(0, len(text), size)]


# --- Anthropic Messages answers ------------------------------------------------------------------


def _anthropic(blocks: list[bytes], stop_reason: str) -> bytes:
    start = {
        "type": "message_start",
        "message": {
            "id": "msg_e2e" + secrets.token_hex(8),
            "type": "message",
            "role": "assistant",
            "model": "claude-opus-5-5",
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": 100, "output_tokens": 1},
        },
    }
    end = {
        "type": "message_delta",
        "delta": {"stop_reason": stop_reason, "stop_sequence": None},
        "usage": {"output_tokens": 20},
    }
    return b"".join(
        [sse("message_start", start), *blocks, sse("message_delta", end), sse("message_stop", {"type": "message_stop"})]
    )


def anthropic_text(text: str) -> bytes:
    return _anthropic(
        [
            sse(
                "content_block_start",
                {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
            ),
            *[
                sse(
                    "content_block_delta",
                    {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": part}},
                )
                for part in pieces(text)
            ],
            sse("content_block_stop", {"type": "content_block_stop", "index": 0}),
        ],
        "end_turn",
    )


def anthropic_tool_use(tool_id: str, name: str, arguments: dict[str, Any]) -> bytes:
    args = json.dumps(arguments)
    block = {"type": "tool_use", "id": tool_id, "name": name, "input": {}}
    return _anthropic(
        [
            sse("content_block_start", {"type": "content_block_start", "index": 0, "content_block": block}),
            *[
                sse(
                    "content_block_delta",
                    {
                        "type": "content_block_delta",
                        "index": 0,
                        "delta": {"type": "input_json_delta", "partial_json": part},
                    },
                )
                for part in pieces(args, 7)
            ],
            sse("content_block_stop", {"type": "content_block_stop", "index": 0}),
        ],
        "tool_use",
    )


# --- OpenAI Responses answers --------------------------------------------------------------------


def _responses(
    item: dict[str, Any], deltas: list[tuple[str, dict[str, Any]]], done: tuple[str, dict[str, Any]]
) -> bytes:
    base = {
        "id": "resp_e2e" + secrets.token_hex(8),
        "object": "response",
        "created_at": 1764138000,
        "model": CODEX_MODEL,
    }
    usage = {
        "input_tokens": 100,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": 20,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": 120,
    }
    started = {**item, "status": "in_progress"}
    started.update({"content": []} if item["type"] == "message" else {"arguments": ""})
    events = [
        ("response.created", {"response": {**base, "status": "in_progress", "output": []}}),
        ("response.output_item.added", {"output_index": 0, "item": started}),
        *deltas,
        done,
        ("response.output_item.done", {"output_index": 0, "item": item}),
        ("response.completed", {"response": {**base, "status": "completed", "output": [item], "usage": usage}}),
    ]
    return b"".join(sse(name, {"type": name, "sequence_number": n, **data}) for n, (name, data) in enumerate(events))


def responses_text(text: str) -> bytes:
    item_id = "msg_e2e" + secrets.token_hex(8)
    item = {
        "id": item_id,
        "type": "message",
        "role": "assistant",
        "status": "completed",
        "content": [{"type": "output_text", "text": text, "annotations": []}],
    }
    where = {"item_id": item_id, "output_index": 0, "content_index": 0}
    deltas = [("response.output_text.delta", {**where, "delta": part}) for part in pieces(text)]
    return _responses(item, deltas, ("response.output_text.done", {**where, "text": text}))


def responses_function_call(call_id: str, name: str, arguments: dict[str, Any]) -> bytes:
    item_id = "fc_e2e" + secrets.token_hex(8)
    args = json.dumps(arguments)
    item = {
        "id": item_id,
        "type": "function_call",
        "status": "completed",
        "call_id": call_id,
        "name": name,
        "arguments": args,
    }
    where = {"item_id": item_id, "output_index": 0}
    deltas = [("response.function_call_arguments.delta", {**where, "delta": part}) for part in pieces(args, 6)]
    return _responses(item, deltas, ("response.function_call_arguments.done", {**where, "arguments": args}))


# --- fixtures -----------------------------------------------------------------------------------


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """The agent's working directory: a scratch project outside any git repository."""
    path = tmp_path / "project"
    path.mkdir()
    return path


# --- checks shared by both agents -----------------------------------------------------------------


def assert_masked_end_to_end(
    file: SecretsFile, model: Model, stdout: str, upstream: Any, gateway: Any, tmp_path: Path
) -> None:
    # The model saw the file, masked: every secret line came back as a placeholder.
    assert model.turns.count("read") == 1 and model.turns.count("answer") == 1, model.turns
    [seen] = model.tool_output
    file.assert_absent(seen, "the model, in the tool result")
    lines = quoted_lines(seen)
    assert [line.split("=", 1)[0] for line in lines] == list(file.values), seen
    placeholders = {line.split("=", 1)[1] for line in lines}
    assert all(PLACEHOLDER.fullmatch(p) for p in placeholders) and len(placeholders) == len(file.values), lines
    assert "APP_NAME=billing" in seen and "LOG_LEVEL=info" in seen  # ordinary lines pass unchanged
    [answered] = model.answered
    assert all(p in answered for p in placeholders), answered  # the model wrote placeholders only

    # Nothing secret reached the upstream, in any request.
    for got in upstream.received:
        file.assert_absent(got.body, f"the upstream in the body of {got.method} {got.path}")
        file.assert_absent("\n".join(f"{k}: {v}" for k, v in got.headers), f"the upstream in headers of {got.path}")

    # The user got the real values back where the model quoted the placeholders.
    for name, value in file.values.items():
        assert f"- {name}={value}" in stdout, (name, stdout)
    assert not PLACEHOLDER.search(stdout), stdout

    # The audit: the turn that carried the file says what was masked, and holds no secret.
    records = gateway.audit(len(upstream.received))
    by_digest = {r["upstream_body_sha256"]: r for r in records if r.get("upstream_body_sha256")}
    [turn2] = [got for got in upstream.received if PLACEHOLDER.search(got.body.decode("utf-8", "replace"))]
    record = by_digest[hashlib.sha256(turn2.body).hexdigest()]
    assert record["outcome"] == "forwarded" and record["status"] == 200, record
    masked = record["masked"]
    assert masked["count"] >= len(file.values), masked
    assert {m["rule"] for m in masked["values"]} == file.rules, masked
    assert all(m["kind"] == "secret" and m["hash"].startswith("blake2b:") for m in masked["values"]), masked
    stored = json.dumps(records)
    file.assert_absent(stored, "the audit records")
    assert not PLACEHOLDER.search(stored), "a placeholder reached the audit records"
    db = b"".join(p.read_bytes() for p in (tmp_path / "data").glob("egress.db*"))
    assert db, "no database file under the data dir"
    file.assert_absent(db, "the database file")


# --- Claude Code ---------------------------------------------------------------------------------


def test_claude_code_reads_secrets_the_provider_never_sees(
    claude: Path, upstream: Any, gateway: Any, tmp_path: Path, project: Path
) -> None:
    file = SecretsFile.write(project)
    tool_id = "toolu_e2e" + secrets.token_hex(8)
    model = Model()

    def build(received: Received) -> list[bytes]:
        body = received.json()
        results = [
            block
            for message in body.get("messages", [])
            if message.get("role") == "user" and isinstance(message.get("content"), list)
            for block in message["content"]
            if isinstance(block, dict) and block.get("type") == "tool_result" and block.get("tool_use_id") == tool_id
        ]
        if results:  # turn 2: the file as the model is allowed to see it
            output = text_of(results[0].get("content"))
            text = answer_text(quoted_lines(output))
            with model.lock:
                model.tool_output.append(output)
                model.answered.append(text)
            model.note("answer")
            return streamed(anthropic_text(text), received)
        if any(t.get("name") == "Read" for t in body.get("tools", [])) and not model.turns.count("read"):
            model.note("read")  # turn 1: ask Claude Code to read the file
            return streamed(anthropic_tool_use(tool_id, "Read", {"file_path": str(file.path)}), received)
        model.note("side")
        return streamed(anthropic_text("ok"), received)

    for _ in range(QUEUED):
        upstream.enqueue(Reply(headers=SSE_HEADERS, build=build, delay_s=0.002))
    env = agents.claude_env(tmp_path / "home", gateway.url, gateway.key, CLIENT_PROVIDER_KEY)

    result = agents.run_agent([str(claude), "-p", "Which credentials does deploy.env hold?"], env, project)

    assert result.returncode == 0, result.describe()
    assert_masked_end_to_end(file, model, result.stdout, upstream, gateway, tmp_path)


# --- Codex CLI ------------------------------------------------------------------------------------


def test_codex_cats_secrets_the_provider_never_sees(
    codex: Path, upstream: Any, gateway: Any, tmp_path: Path, project: Path
) -> None:
    file = SecretsFile.write(project)
    call_id = "call_e2e" + secrets.token_hex(8)
    model = Model()

    def build(received: Received) -> list[bytes]:
        body = received.json()
        items = body.get("input") if isinstance(body.get("input"), list) else []
        outputs = [i for i in items if i.get("type") == "function_call_output" and i.get("call_id") == call_id]
        if outputs:  # turn 2: what `cat` printed, as the model is allowed to see it
            output = text_of(outputs[0].get("output"))
            text = answer_text(quoted_lines(output))
            with model.lock:
                model.tool_output.append(output)
                model.answered.append(text)
            model.note("answer")
            return streamed(responses_text(text), received)
        if any(t.get("name") == "exec_command" for t in body.get("tools", [])) and not model.turns.count("read"):
            model.note("read")  # turn 1: ask Codex to cat the file (its unified exec tool)
            return streamed(responses_function_call(call_id, "exec_command", {"cmd": "cat deploy.env"}), received)
        model.note("side")
        return streamed(responses_text("ok"), received)

    for _ in range(QUEUED):
        upstream.enqueue(Reply(headers=SSE_HEADERS, build=build, delay_s=0.002))
    codex_home = agents.write_codex_home(tmp_path / "codex-home", gateway.url, CODEX_MODEL)
    env = agents.codex_env(tmp_path / "home", codex_home, gateway.key)

    result = agents.run_agent(agents.codex_exec_argv(codex, "Which credentials does deploy.env hold?"), env, project)

    assert result.returncode == 0, result.describe()
    assert [r.path for r in upstream.received] == ["/v1/responses"] * 2, [r.path for r in upstream.received]
    assert_masked_end_to_end(file, model, result.stdout, upstream, gateway, tmp_path)
