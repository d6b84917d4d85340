"""Every other coding agent, for real: aider, Mistral Vibe, Continue's CLI, Cline and OpenCode read
a project's `config/.env` through egress, and the provider never sees its secrets.

    agent (scratch HOME, env -i, headless) --> egress (default policy: mask secrets) --> simulator

The simulator plays the model (tests/support/agent_sim.py): it asks the agent to read
`config/.env` with the agent's own file tool, then answers by quoting the lines it was sent, so it
can only quote egress's placeholders. aider has no such tool; the file goes in as a chat file on
its command line, as aider's users do. For each agent:
  * it exits 0;
  * no request that reached the upstream carries the AWS key pair, the Stripe live key or the
    database password (bodies and headers), nor the gateway key; the endpoint's own key did;
  * the agent's output shows the real values, restored, and no placeholder;
  * `egress audit verify` passes (chain, signed checkpoints, anchor), the record of the turn that
    carried the file says what was masked, and no record holds a secret.
  * the agent tried to reach nothing but egress: its proxy is a trap that forwards nothing and
    records every host asked for (telemetry, update checks, catalogues; the README's agent table
    names the one exception, Cline's feature flags).

The agents are pinned (tools/agents/): a missing or broken install FAILS with the install command.
One gateway serves the module; each test reads only the audit records its own run added.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from egress.app import open_configured_store
from egress.cli.main import main
from egress.config import load_config
from egress.gateway.auth import new_key
from tests.conftest import Running
from tests.support import agents
from tests.support.agent_sim import PLACEHOLDER, ChatModel, EnvFile, OutboundTrap, quoted_assignments, unwrapped
from tests.support.gateway import SIM_ENV, ThreadedGateway, write_config
from tests.support.simulator import Received, UpstreamSimulator

pytestmark = pytest.mark.agents

OPENAI_MODEL = "gpt-4.1"  # the fixture config's sim-openai endpoint serves gpt-*
MISTRAL_MODEL = "devstral-medium-latest"  # this module's sim-mistral endpoint (api: mistral)
MISTRAL_KEY = "sim-mistral-upstream-key-0003"
GATEWAY_ENV = {**SIM_ENV, "SIM_MISTRAL_KEY": MISTRAL_KEY}
UPSTREAM_KEYS = {"sim-openai": SIM_ENV["SIM_OPENAI_KEY"], "sim-mistral": MISTRAL_KEY}
PROMPT = "Which credentials does config/.env hold?"
# The rules that find the file's secrets, one per secret (egress/detect/rules).
RULES = {"aws-access-key-id", "aws-secret-access-key", "stripe-live-secret-key", "postgres-connection-url"}


# --- fixtures ------------------------------------------------------------------------------------


class AgentsGateway(Running):
    def __init__(self, gateway: ThreadedGateway, key: str, store: Any, config_path: Path) -> None:
        super().__init__(gateway, key, store)
        self.config_path = config_path
        self.trap = OutboundTrap()  # what the agents try to reach besides egress

    def stop(self) -> None:
        super().stop()
        self.trap.close()

    def audit_verify(self) -> str:
        """`egress audit verify` on the gateway's store: the chain, the signed checkpoints and
        their anchor. Returns its report; fails the test unless it says OK."""
        result = CliRunner().invoke(
            main, ["audit", "verify", "--config", str(self.config_path)], env=GATEWAY_ENV, catch_exceptions=False
        )
        assert result.exit_code == 0 and result.output.startswith("OK: "), result.output
        return result.output


@pytest.fixture(scope="module")
def agents_gateway(sim: UpstreamSimulator, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AgentsGateway]:
    """One gateway for the module: the fixture config plus a Mistral endpoint on the simulator."""
    tmp = tmp_path_factory.mktemp("agents-gateway")
    path = write_config(tmp, sim.url)
    doc = yaml.safe_load(path.read_text())
    doc["providers"].append(
        {
            "name": "sim-mistral",
            "api": "mistral",
            "base_url": sim.url + "/v1",
            "models": ["devstral-*", "mistral-*"],
            "credentials": {"env": "SIM_MISTRAL_KEY"},
            "operator": "Simulated Mistral",
            "jurisdiction": "EU",
            "region": "eu-west",
            "retention_days": 30,
            "trains_on_api_data": False,
            "dpa": True,
        }
    )
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    config = load_config(path, env=GATEWAY_ENV)
    gateway = ThreadedGateway(config)
    store = open_configured_store(config)
    secret, key = new_key("alice", "platform")
    store.create_key(key)
    gateway.start()
    running = AgentsGateway(gateway, secret, store, path)
    yield running
    running.stop()


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """The agent's working directory: a scratch project outside any git repository."""
    path = tmp_path / "project"
    path.mkdir()
    return path


@pytest.fixture
def env_file(project: Path) -> EnvFile:
    return EnvFile.write(project)


@pytest.fixture(scope="module")
def aider() -> Path:
    return agents.check_python_agent("aider", "aider")


@pytest.fixture(scope="module")
def vibe() -> Path:
    return agents.check_python_agent("vibe", "vibe")


@pytest.fixture(scope="module")
def continue_cli() -> Path:
    agents.check_npm_package("@continuedev/cli", agents.CONTINUE_VERSION)
    return agents.npm_binary("cn")


@pytest.fixture(scope="module")
def cline() -> Path:
    agents.check_npm_package("cline", agents.CLINE_VERSION)
    return agents.npm_binary("cline")


@pytest.fixture(scope="module")
def opencode() -> Path:
    agents.check_npm_package("opencode-ai", agents.OPENCODE_VERSION)
    return agents.npm_binary("opencode")


# --- the checks every agent passes ---------------------------------------------------------------


class Run:
    """One agent run against the module's gateway: the audit records it added, and the checks."""

    def __init__(self, gateway: AgentsGateway, upstream: UpstreamSimulator) -> None:
        self.gateway = gateway
        self.upstream = upstream
        self.audit_before = len(gateway.audit(0))
        gateway.trap.taken()  # forget what an earlier run tried

    def env(self, env: dict[str, str]) -> dict[str, str]:
        """The agent's environment with the outbound trap as its proxy (loopback goes direct)."""
        return {**env, **self.gateway.trap.env()}

    def records(self) -> list[dict[str, Any]]:
        # Running.audit verifies the whole chain (egress.audit.chain.verify) before it returns.
        return self.gateway.audit(self.audit_before + len(self.upstream.received))[self.audit_before :]

    def check(
        self,
        result: agents.Result,
        model: ChatModel,
        file: EnvFile,
        endpoint: str,
        tool_turn: bool = True,
        known_outbound: frozenset[str] = frozenset(),
    ) -> list[Received]:
        assert result.returncode == 0, result.describe()
        # Telemetry, update checks and catalogue downloads are off: nothing tried to go anywhere
        # but egress, except what the README's agent table names (`known_outbound`, host:port).
        attempts = self.gateway.trap.taken()
        assert {a.split(" ")[1] if a.startswith("CONNECT ") else a for a in attempts} <= known_outbound, (
            attempts,
            result.describe(),
        )
        received = list(self.upstream.received)
        assert received, f"nothing reached the upstream\n{result.describe()}"

        # The model saw the file masked, and wrote placeholders back.
        assert model.turns.count("answer") == 1, (model.turns, result.describe())
        assert model.turns.count("read") == (1 if tool_turn else 0), model.turns
        [seen] = model.tool_output
        assert not file.leaked(seen), f"{file.leaked(seen)} reached the model, in what it was sent"
        quoted = quoted_assignments(unwrapped(seen))
        assert [q.split("=", 1)[0] for q in quoted] == list(file.lines), seen
        assert "APP_NAME=billing" in seen and "LOG_LEVEL=info" in seen  # ordinary lines pass unchanged
        [answered] = model.answered
        assert len(set(PLACEHOLDER.findall(answered))) == len(file.secrets), answered

        # Nothing secret left egress, in any request; the gateway key never did either, and the
        # provider got the endpoint's own credential.
        for got in received:
            headers = "\n".join(f"{k}: {v}" for k, v in got.headers)
            for where, data in (("body", got.body.decode("utf-8", "replace")), ("headers", headers)):
                leaked = file.leaked(data)
                assert not leaked, f"{', '.join(leaked)} reached the upstream in the {where} of {got.path}"
                assert self.gateway.key not in data, f"the gateway key reached the upstream ({where})"
            assert got.header("authorization") == f"Bearer {UPSTREAM_KEYS[endpoint]}", got.headers

        # The user got the real values back where the model quoted placeholders.
        for line in file.lines.values():
            assert f"- {line}" in result.stdout, (line, result.describe())
        assert not PLACEHOLDER.search(result.stdout + result.stderr), result.describe()

        # The audit: the chain verifies; the turn that carried the file says what was masked;
        # no record holds a secret or a placeholder.
        records = self.records()
        assert all(r["endpoint"] == endpoint and r["outcome"] == "forwarded" for r in records), records
        by_digest = {r["upstream_body_sha256"]: r for r in records if r.get("upstream_body_sha256")}
        placeholders = set(PLACEHOLDER.findall(seen))
        carried = [got for got in received if all(p.encode() in got.body for p in placeholders)]
        assert carried, "no request carried the masked file"
        record = by_digest[hashlib.sha256(carried[0].body).hexdigest()]
        assert record["status"] == 200 and record["user"] == "alice", record
        masked = record["masked"]
        assert {m["rule"] for m in masked["values"]} >= RULES, masked
        assert masked["count"] >= len(file.secrets), masked
        stored = json.dumps(records)
        assert not file.leaked(stored), f"{file.leaked(stored)} reached the audit records"
        assert not PLACEHOLDER.search(stored), "a placeholder reached the audit records"
        self.gateway.audit_verify()
        return received


# --- aider (Chat Completions; the .env as a chat file) -------------------------------------------


def test_aider_with_env_as_chat_file(
    aider: Path,
    upstream: UpstreamSimulator,
    agents_gateway: AgentsGateway,
    tmp_path: Path,
    project: Path,
    env_file: EnvFile,
) -> None:
    model = ChatModel(read_tool=None, read_args={})
    model.serve(upstream)
    run = Run(agents_gateway, upstream)
    env = run.env(agents.aider_env(tmp_path / "home", agents_gateway.url, agents_gateway.key, f"openai/{OPENAI_MODEL}"))

    result = agents.run_agent(agents.aider_argv(aider, f"openai/{OPENAI_MODEL}", PROMPT, ["config/.env"]), env, project)

    received = run.check(result, model, env_file, "sim-openai", tool_turn=False)
    assert [(r.method, r.path) for r in received] == [("POST", "/v1/chat/completions")]
    assert received[0].json()["model"] == OPENAI_MODEL


# --- Mistral Vibe (Mistral's chat API, through the mistralai SDK) --------------------------------


def test_vibe_reads_env_with_read_file(
    vibe: Path,
    upstream: UpstreamSimulator,
    agents_gateway: AgentsGateway,
    tmp_path: Path,
    project: Path,
    env_file: EnvFile,
) -> None:
    model = ChatModel(read_tool="read_file", read_args={"path": "config/.env"}, mistral=True)
    model.serve(upstream)
    run = Run(agents_gateway, upstream)
    vibe_home = agents.write_vibe_home(tmp_path / "vibe-home", agents_gateway.url, MISTRAL_MODEL)
    env = run.env(agents.vibe_env(tmp_path / "home", vibe_home, agents_gateway.key))

    result = agents.run_agent([str(vibe), "--trust", "--auto-approve", "-p", PROMPT], env, project)

    received = run.check(result, model, env_file, "sim-mistral")
    assert {(r.method, r.path) for r in received} == {("POST", "/v1/chat/completions")}
    assert all(r.json()["model"] == MISTRAL_MODEL for r in received)
    # The mistralai SDK's own client, not an OpenAI one; the audit names it.
    assert (received[0].header("user-agent") or "").startswith("mistral-client-python/"), received[0].headers
    assert {r["client"] for r in run.records()} == {"mistral-python"}


# --- Continue's CLI (Chat Completions) -----------------------------------------------------------


@pytest.mark.parametrize(
    ("model_name", "path"),
    [(OPENAI_MODEL, "/v1/chat/completions"), ("gpt-5.5", "/v1/responses")],
    ids=["chat-completions", "responses"],
)
def test_continue_cli_reads_env_with_bash(
    continue_cli: Path,
    upstream: UpstreamSimulator,
    agents_gateway: AgentsGateway,
    tmp_path: Path,
    project: Path,
    env_file: EnvFile,
    model_name: str,
    path: str,
) -> None:
    """Continue's Read tool refuses any .env file ("a security concern"), so the model reads it
    with Continue's Bash tool, as a model refused by Read would. `provider: openai` speaks Chat
    Completions, and Responses for the gpt-5 models."""
    model = ChatModel(read_tool="Bash", read_args={"command": "cat config/.env"})
    model.serve(upstream)
    run = Run(agents_gateway, upstream)
    home = tmp_path / "home"
    config = agents.write_continue_config(home / "continue.yaml", agents_gateway.url, agents_gateway.key, model_name)

    result = agents.run_agent(
        [str(continue_cli), "-p", "--config", str(config), "--auto", PROMPT],
        run.env(agents.continue_env(home)),
        project,
    )

    received = run.check(result, model, env_file, "sim-openai")
    assert {(r.method, r.path) for r in received} == {("POST", path)}
    assert all(r.json()["model"] == model_name for r in received)


# --- Cline's CLI (Chat Completions, OpenAI-compatible provider) -----------------------------------


def test_cline_reads_env_with_read_files(
    cline: Path,
    upstream: UpstreamSimulator,
    agents_gateway: AgentsGateway,
    tmp_path: Path,
    project: Path,
    env_file: EnvFile,
) -> None:
    model = ChatModel(read_tool="read_files", read_args={"files": [{"path": str(env_file.path)}]})
    model.serve(upstream)
    run = Run(agents_gateway, upstream)
    env = run.env(agents.cline_env(tmp_path / "home"))
    config = tmp_path / "cline-config"
    agents.configure_cline(cline, config, env, project, agents_gateway.url, agents_gateway.key, OPENAI_MODEL)

    result = agents.run_agent([str(cline), "--config", str(config), PROMPT], env, project)

    # Cline 3.0.65 fetches its feature flags from PostHog (data.cline.bot) whatever
    # telemetryOptOut says: the one destination besides egress (README, agent table).
    received = run.check(result, model, env_file, "sim-openai", known_outbound=frozenset({"data.cline.bot:443"}))
    assert {(r.method, r.path) for r in received} == {("POST", "/v1/chat/completions")}


# --- OpenCode (Chat Completions, the AI SDK's OpenAI-compatible provider) --------------------------


def test_opencode_reads_env_with_read(
    opencode: Path,
    upstream: UpstreamSimulator,
    agents_gateway: AgentsGateway,
    tmp_path: Path,
    project: Path,
    env_file: EnvFile,
) -> None:
    model = ChatModel(read_tool="read", read_args={"filePath": str(env_file.path)})
    model.serve(upstream)
    run = Run(agents_gateway, upstream)
    env = run.env(agents.opencode_env(tmp_path / "home", agents_gateway.url, agents_gateway.key, OPENAI_MODEL))

    result = agents.run_agent([str(opencode), "run", PROMPT], env, project)

    received = run.check(result, model, env_file, "sim-openai")
    assert {(r.method, r.path) for r in received} == {("POST", "/v1/chat/completions")}
    # OpenCode also asks the model for a title for the session: a side request, answered plainly.
    assert model.turns.count("side") == len(received) - 2, model.turns
    # The audit names the agent (its User-Agent) and its session (x-session-id).
    records = run.records()
    assert {r["client"] for r in records} == {"opencode"}, records
    sessions = {r.header("x-session-id") for r in received}
    assert len(sessions) == 1 and {r["session_id"] for r in records} == sessions, (sessions, records)
