"""The real Gemini CLI (npm, pinned) through egress to Google AI Studio (the Gemini simulator):
it reads a file full of secrets with its own read_file tool, and egress keeps every secret from
the provider while the user still gets the real values back.

    gemini -p (scratch HOME, env -i) --> egress (real detection, default policy) --> gemini_sim

The simulated model can only quote what it was sent: turn 1 asks the CLI to read
config/deploy.env (Gemini CLI 0.61.0 itself refuses to read any path with a `.env` segment with
its file tools, "Path not in workspace"; a dotenv file of another name is read) (a functionCall with a thought signature, which the CLI must send back untouched: the simulator
refuses the next turn otherwise); the CLI runs the tool and sends the file back as a
functionResponse; the model answers by quoting the lines it saw, that is, egress's placeholders,
streamed in small pieces. Checked: no secret reached the upstream in any request; the CLI's
output carries the real values and no placeholder; the gateway key never left; the audit chain
verifies and holds no secret; the CLI exits 0.
"""

from __future__ import annotations

import json
import random
import re
import secrets
import socket
import string
import threading
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from egress.app import open_configured_store
from egress.config import load_config
from egress.gateway.auth import new_key
from tests.conftest import Running
from tests.support import agents
from tests.support.gateway import ThreadedGateway, write_config
from tests.support.gemini_sim import API_KEY, GeminiSimulator
from tests.support.simulator import Received, Reply, UpstreamSimulator, split_random

pytestmark = pytest.mark.agents

PLACEHOLDER = re.compile(r"EGX_[A-Z0-9_]+_[a-z]{13}")
MODEL = "gemini-2.5-pro"
CHAT_MODEL = "local-coder"  # served by the Chat simulator, through translation
_ALNUM = string.ascii_letters + string.digits
_BASE62 = string.digits + string.ascii_uppercase + string.ascii_lowercase


def _random(alphabet: str, n: int) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(n))


def _github_pat() -> str:
    body = _random(_ALNUM, 30)
    crc, check = zlib.crc32(body.encode()), ""
    while crc:
        crc, digit = divmod(crc, 62)
        check = _BASE62[digit] + check
    return "ghp_" + body + check.rjust(6, "0")


def fresh_secrets() -> dict[str, str]:
    return {
        "AWS_ACCESS_KEY_ID": "AKIA" + _random("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16),
        "STRIPE_SECRET_KEY": "sk_live_" + _random(_ALNUM, 24),
        "GITHUB_TOKEN": _github_pat(),
    }


@dataclass
class Model:
    """The scripted model's notes (asserted after the run: an assertion inside the simulator
    would reach the CLI as an error, not as a readable failure)."""

    turns: list[str] = field(default_factory=list)
    tool_output: list[str] = field(default_factory=list)
    answered: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def strings_in(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in strings_in(v)]
    if isinstance(value, list):
        return [s for v in value for s in strings_in(v)]
    return []


@pytest.fixture(scope="module")
def gemini() -> Path:
    binary = agents.npm_prefix() / "node_modules" / ".bin" / "gemini"
    manifest = agents.npm_prefix() / "node_modules" / "@google" / "gemini-cli" / "package.json"
    version = json.loads(manifest.read_text())["version"] if manifest.exists() else None
    if not binary.exists() or version != agents.GEMINI_VERSION:
        pytest.fail(
            f"Gemini CLI {agents.GEMINI_VERSION} is not installed at {binary} (found {version}); {agents.INSTALL_HINT}",
            pytrace=False,
        )
    return binary


class ProxyRecorder:
    """An HTTP proxy that forwards nothing and notes every request line (CONNECT host:443): with
    the agent's proxy set to it and loopback exempt, it sees whatever the agent would send
    anywhere but egress (usage statistics, update checks)."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self._socket = socket.socket()
        self._socket.bind(("127.0.0.1", 0))
        self._socket.listen(16)
        self.url = f"http://127.0.0.1:{self._socket.getsockname()[1]}"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._socket.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(2)
                try:
                    self.lines.append(conn.recv(4096).split(b"\r\n")[0].decode("latin-1"))
                except OSError:
                    pass

    def env(self) -> dict[str, str]:
        proxies = {name: self.url for name in ("HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy")}
        return proxies | {"NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}

    def close(self) -> None:
        self._socket.close()


@pytest.fixture
def elsewhere() -> Iterator[ProxyRecorder]:
    recorder = ProxyRecorder()
    yield recorder
    recorder.close()


@pytest.fixture
def sim() -> Iterator[GeminiSimulator]:
    simulator = GeminiSimulator(seed=secrets.randbits(32)).start()
    yield simulator
    simulator.stop()


@pytest.fixture
def chat_sim() -> Iterator[UpstreamSimulator]:
    simulator = UpstreamSimulator(seed=secrets.randbits(32)).start()
    yield simulator
    simulator.stop()


@pytest.fixture
def gateway(sim: GeminiSimulator, chat_sim: UpstreamSimulator, tmp_path: Path) -> Iterator[Running]:
    providers = [
        {
            "name": "sim-gemini",
            "api": "gemini",
            "base_url": sim.url,
            "models": ["gemini-*"],
            "credentials": {"env": "SIM_GEMINI_KEY"},
            "operator": "Simulated Google",
            "jurisdiction": "US",
            "region": "us",
            "retention_days": 30,
            "trains_on_api_data": False,
            "dpa": True,
        },
        {  # a self-hosted Chat Completions server: Gemini requests reach it through translation
            "name": "sim-chat",
            "api": "openai-chat",
            "base_url": chat_sim.url + "/v1",
            "models": [CHAT_MODEL],
            "upstream_model": "qwen-coder",
            "credentials": "none",
            "operator": "Self-hosted",
            "jurisdiction": "self",
            "region": "local",
            "retention_days": 0,
            "trains_on_api_data": False,
            "dpa": True,
        },
    ]
    path = write_config(tmp_path, sim.url, providers=providers)
    config = load_config(path, env={"SIM_GEMINI_KEY": API_KEY})
    store = open_configured_store(config)
    secret, key = new_key("alice", "platform")
    store.create_key(key)
    running = Running(ThreadedGateway(config).start(), secret, store)
    yield running
    running.stop()


def test_gemini_cli_reads_secrets_the_provider_never_sees(
    gemini: Path, sim: GeminiSimulator, gateway: Running, tmp_path: Path, elsewhere: ProxyRecorder
) -> None:
    project = tmp_path / "project"
    (project / "config").mkdir(parents=True)
    values = fresh_secrets()
    lines = ["# billing service", "APP_NAME=billing", *[f"{k}={v}" for k, v in values.items()], "LOG_LEVEL=info"]
    env_file = project / "config" / "deploy.env"
    env_file.write_text("\n".join(lines) + "\n")
    model = Model()

    def respond(doc: dict[str, Any]) -> list[dict[str, Any]]:
        responses = [
            part["functionResponse"]
            for content in doc.get("contents", [])
            for part in content.get("parts", [])
            if "functionResponse" in part and part["functionResponse"].get("name") == "read_file"
        ]
        tools = {f["name"] for t in doc.get("tools", []) for f in t.get("functionDeclarations", [])}
        with model.lock:
            if responses:
                output = "\n".join(strings_in(responses[-1].get("response")))
                quoted = [line.strip() for line in output.splitlines() if PLACEHOLDER.search(line)]
                text = "config/deploy.env holds these credentials:\n" + "\n".join(f"- {line}" for line in quoted)
                model.turns.append("answer")
                model.tool_output.append(output)
                model.answered.append(text)
                return [{"text": text}]
            if "read_file" in tools and "read" not in model.turns:
                model.turns.append("read")
                return [sim.function_call("read_file", {"file_path": "config/deploy.env"})]
            model.turns.append("side")
            return [{"text": "ok"}]

    sim.model = respond
    env = agents.gemini_env(tmp_path / "home", gateway.url, gateway.key) | elsewhere.env()

    result = agents.run_agent(
        [str(gemini), "-p", "Which credentials does config/deploy.env hold?", "-m", MODEL], env, project
    )

    assert result.returncode == 0, result.describe()
    # Nothing went anywhere but egress (with the settings of agents.gemini_env; without them the
    # CLI posts usage statistics to play.googleapis.com).
    assert elsewhere.lines == [], elsewhere.lines
    assert model.turns.count("read") == 1 and model.turns.count("answer") == 1, (model.turns, result.describe())
    [seen] = model.tool_output
    for name, value in values.items():
        assert value not in seen, f"{name} reached the model in the tool result"
    quoted = [line for line in seen.splitlines() if PLACEHOLDER.search(line)]
    assert [line.strip().split("=", 1)[0] for line in quoted] == list(values), seen
    assert "APP_NAME=billing" in seen and "LOG_LEVEL=info" in seen

    # Nothing secret, and never the gateway key, reached the upstream.
    assert sim.received, "the CLI sent nothing upstream"
    for got in sim.received:
        text = got.body.decode("utf-8", "replace") + "\n".join(f"{k}: {v}" for k, v in got.headers) + got.query
        for name, value in values.items():
            assert value not in text, f"{name} reached the upstream ({got.path})"
        assert gateway.key not in text, "the gateway key reached the upstream"
        assert got.header("x-goog-api-key") == API_KEY

    # The user reads the real values where the model quoted placeholders.
    for name, value in values.items():
        assert f"- {name}={value}" in result.stdout, (name, result.describe())
    assert not PLACEHOLDER.search(result.stdout), result.stdout

    # The audit (its chain verified by `audit`) says what was masked and holds no secret.
    records = gateway.audit(len(sim.received))
    assert all(r["api"].startswith("gemini.") for r in records), [r["api"] for r in records]
    assert {r["client"] for r in records} == {"gemini-cli"}
    masked = [r for r in records if r.get("masked") and r["masked"]["count"]]
    assert masked and max(r["masked"]["count"] for r in masked) >= len(values)
    stored = json.dumps(records)
    for value in values.values():
        assert value not in stored
    assert not PLACEHOLDER.search(stored), "a placeholder reached the audit records"


def chat_sse(delta: dict[str, Any], finish: str | None = None, usage: bool = False) -> bytes:
    doc: dict[str, Any] = {"id": "chatcmpl-g", "object": "chat.completion.chunk", "created": 1, "model": "qwen-coder"}
    doc["choices"] = [{"index": 0, "delta": delta, "finish_reason": finish}]
    if usage:
        doc["choices"], doc["usage"] = [], {"prompt_tokens": 50, "completion_tokens": 20, "total_tokens": 70}
    return b"data: " + json.dumps(doc).encode() + b"\n\n"


def test_gemini_cli_through_translation_to_a_self_hosted_chat_server(
    gemini: Path, chat_sim: UpstreamSimulator, gateway: Running, tmp_path: Path
) -> None:
    """The same, answered by a Chat Completions server: Gemini CLI's functionCall / functionResponse
    turns become Chat tool calls and tool messages, the answer streams back as Gemini chunks."""
    project = tmp_path / "project"
    (project / "config").mkdir(parents=True)
    values = fresh_secrets()
    lines = ["APP_NAME=billing", *[f"{k}={v}" for k, v in values.items()], "LOG_LEVEL=info"]
    (project / "config" / "deploy.env").write_text("\n".join(lines) + "\n")
    model = Model()

    def build(received: Received) -> list[bytes]:
        doc = received.json()
        tool_results = [m for m in doc.get("messages", []) if m.get("role") == "tool"]
        tools = {t["function"]["name"] for t in doc.get("tools", [])}
        with model.lock:
            if tool_results:
                output = tool_results[-1]["content"]
                # The tool message is the function response as JSON text: its lines are escaped.
                unescaped = output.replace("\\n", "\n").splitlines()
                quoted = [line.strip().strip('"{} ') for line in unescaped if PLACEHOLDER.search(line)]
                text = "deploy.env holds:\n" + "\n".join(f"- {line}" for line in quoted)
                model.turns.append("answer")
                model.tool_output.append(output)
                model.answered.append(text)
                pieces = [text[i : i + 7] for i in range(0, len(text), 7)]
                events = [chat_sse({"role": "assistant", "content": ""})]
                events += [chat_sse({"content": p}) for p in pieces]
            elif "read_file" in tools and "read" not in model.turns:
                model.turns.append("read")
                call = {"index": 0, "id": "call_g1", "type": "function"}
                call["function"] = {"name": "read_file", "arguments": '{"file_path": "config/deploy.env"}'}
                events = [chat_sse({"role": "assistant", "content": None, "tool_calls": [call]})]
            else:
                model.turns.append("side")
                events = [chat_sse({"role": "assistant", "content": "ok"})]
        events += [chat_sse({}, "tool_calls" if model.turns[-1] == "read" else "stop"), chat_sse({}, usage=True)]
        wire = b"".join(events) + b"data: [DONE]\n\n"
        return split_random(wire, random.Random(len(received.body)), max_pieces=40)

    for _ in range(6):
        chat_sim.enqueue(Reply(headers={"content-type": "text/event-stream"}, build=build))
    env = agents.gemini_env(tmp_path / "home", gateway.url, gateway.key)

    result = agents.run_agent(
        [str(gemini), "-p", "Which credentials does config/deploy.env hold?", "-m", CHAT_MODEL], env, project
    )

    assert result.returncode == 0, result.describe()
    assert model.turns.count("read") == 1 and model.turns.count("answer") == 1, (model.turns, result.describe())
    [seen] = model.tool_output
    for name, value in values.items():
        assert value not in seen, f"{name} reached the model in the tool result"
    assert chat_sim.received
    for got in chat_sim.received:
        assert got.path == "/v1/chat/completions" and got.json()["model"] == "qwen-coder"
        text = got.body.decode("utf-8", "replace") + "\n".join(f"{k}: {v}" for k, v in got.headers)
        for name, value in values.items():
            assert value not in text, f"{name} reached the Chat server"
        assert gateway.key not in text and "thoughtSignature" not in text
    for name, value in values.items():
        assert f"- {name}={value}" in result.stdout, (name, result.describe())
    assert not PLACEHOLDER.search(result.stdout), result.stdout
    records = gateway.audit(len(chat_sim.received))
    assert any(r.get("translated_from") == "gemini.stream_generate_content" for r in records), records[-1]
