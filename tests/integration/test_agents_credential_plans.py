"""The real Claude Code and Codex CLI through egress with pass-through credentials: the terms of
the credential each one forwards decide what may leave.

- Claude Code with a Claude subscription sign-in (`ANTHROPIC_AUTH_TOKEN`, the `sk-ant-oat01-`
  shape, our own random value): the bundled policy refuses the unclassified request, Claude shows
  egress's reason, nothing reaches the provider, the audit records plan `consumer`;
- Claude Code with an API key (`sk-ant-api03-…`): forwarded as sent, plan `api`;
- Codex with an OpenAI project key (`sk-proj-…`) as its provider key and the gateway key in a
  header: forwarded as sent, plan `api`;
- Codex signed in with ChatGPT (`requires_openai_auth`, an auth.json holding tokens shaped like a
  ChatGPT sign-in's, our own values): Plus is refused (plan `consumer`), Team forwarded with its
  token and `chatgpt-account-id` (plan `enterprise`: business terms). An Enterprise workspace's
  Codex first loads its managed policies from chatgpt.com, which a test machine cannot reach;
  its token classifies like Team's (tests/unit/identity/test_plans.py).
"""

from __future__ import annotations

import base64
import json
import random
import string
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
import yaml

from tests.conftest import Running, start_gateway
from tests.integration.test_agents import anthropic_stream, responses_stream, sse_reply
from tests.support import agents
from tests.support.gateway import write_config
from tests.support.simulator import UpstreamSimulator

pytestmark = pytest.mark.agents

URLSAFE = string.ascii_letters + string.digits + "-_"
RNG = random.Random(2020)
USAGE = {
    "input_tokens": 10,
    "input_tokens_details": {"cached_tokens": 0},
    "output_tokens": 3,
    "output_tokens_details": {"reasoning_tokens": 0},
    "total_tokens": 13,
}


def sample(prefix: str, n: int) -> str:
    return prefix + "".join(RNG.choice(URLSAFE) for _ in range(n))


@pytest.fixture
def passthrough_gateway(upstream: UpstreamSimulator, tmp_path: Path) -> Iterator[Running]:
    """Both simulator endpoints forward the client's own credential (the embedded default's way)."""
    config = write_config(tmp_path, upstream.url)
    doc = yaml.safe_load(config.read_text())
    for provider in doc["providers"]:
        provider["credentials"] = {"passthrough": True}
    config.write_text(yaml.safe_dump(doc, sort_keys=False))
    running = start_gateway(config)
    yield running
    running.stop()


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    path = tmp_path / "work"
    path.mkdir()
    return path


def claude_env_with(home: Path, gateway: Running, **credential: str) -> dict[str, str]:
    env = agents.claude_env(home, gateway.url, gateway.key, "unused")
    del env["ANTHROPIC_API_KEY"]
    env.update(credential)
    return env


def test_claude_code_subscription_sign_in_is_refused_with_the_reason(
    claude: Path, upstream: UpstreamSimulator, passthrough_gateway: Running, tmp_path: Path, workdir: Path
) -> None:
    token = sample("sk-ant-oat01-", 93) + "AA"
    env = claude_env_with(tmp_path / "home", passthrough_gateway, ANTHROPIC_AUTH_TOKEN=token)

    result = agents.run_agent([str(claude), "-p", "Summarise this repository."], env, workdir, timeout=60)

    assert result.returncode != 0, result.describe()
    said = result.stdout + result.stderr
    assert "consumer-plan credential (anthropic_oauth)" in said and "use an API key" in said, result.describe()
    assert token not in said
    assert upstream.received == [], [(r.method, r.path) for r in upstream.received]
    records = passthrough_gateway.audit(1)
    assert {r["credential_plan"] for r in records} == {"consumer"}
    assert {r["error_code"] for r in records} == {"policy_denied"}
    assert all(token not in str(r) for r in records)


def test_claude_code_api_key_is_forwarded_as_sent(
    claude: Path, upstream: UpstreamSimulator, passthrough_gateway: Running, tmp_path: Path, workdir: Path
) -> None:
    key = sample("sk-ant-api03-", 93) + "AA"
    marker = f"PLAN-API-{uuid.uuid4().hex}"
    upstream.enqueue(
        sse_reply(
            anthropic_stream(
                marker,
                {
                    "input_tokens": 10,
                    "output_tokens": 3,
                    "cache_creation_input_tokens": 0,
                    "cache_read_input_tokens": 0,
                },
            )
        )
    )
    env = claude_env_with(tmp_path / "home", passthrough_gateway, ANTHROPIC_API_KEY=key)

    result = agents.run_agent([str(claude), "-p", "Reply with the marker."], env, workdir)

    assert result.returncode == 0, result.describe()
    assert marker in result.stdout, result.describe()
    assert upstream.received[-1].header("x-api-key") == key
    [record] = passthrough_gateway.audit(1)
    assert record["credential_plan"] == "api" and record["outcome"] == "forwarded"


def test_codex_project_key_is_forwarded_as_sent(
    codex: Path, upstream: UpstreamSimulator, passthrough_gateway: Running, tmp_path: Path, workdir: Path
) -> None:
    key = sample("sk-proj-", 156)
    marker = f"PLAN-CODEX-{uuid.uuid4().hex}"
    upstream.enqueue(sse_reply(responses_stream(marker, USAGE), delay_s=0.05))
    codex_home = agents.write_codex_home(
        tmp_path / "codex-home",
        passthrough_gateway.url,
        "gpt-5.5-codex",
        http_headers={"x-egress-key": passthrough_gateway.key},
    )
    env = agents.codex_env(tmp_path / "home", codex_home, key)  # EGRESS_KEY: Codex's Bearer token

    result = agents.run_agent(agents.codex_exec_argv(codex, "Reply with the marker."), env, workdir)

    assert result.returncode == 0, result.describe()
    assert marker in result.stdout, result.describe()
    assert upstream.received[-1].header("authorization") == f"Bearer {key}"
    records = [r for r in passthrough_gateway.audit(1) if r["api"] == "openai.responses"]
    assert records and records[-1]["credential_plan"] == "api"


def _b64(doc: dict) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(doc)).rstrip(b"=").decode()


def chatgpt_codex_home(tmp_path: Path, gateway: Running, plan_type: str) -> tuple[Path, str, str]:
    """A CODEX_HOME signed in with ChatGPT: Codex sends the access token as its Bearer token and
    the account id in `chatgpt-account-id`. Returns (home, access token, account id)."""
    home = agents.write_codex_home(
        tmp_path / "codex-home", gateway.url, "gpt-5.5-codex", http_headers={"x-egress-key": gateway.key}
    )
    config = (home / "config.toml").read_text()
    # ChatGPT auth instead of an env key; no ChatGPT apps (they would call chatgpt.com).
    config = config.replace('env_key = "EGRESS_KEY"\n', "requires_openai_auth = true\n")
    (home / "config.toml").write_text(config.replace("plugins = false\n", "plugins = false\napps = false\n"))
    account = str(uuid.UUID(int=RNG.getrandbits(128)))
    claims = {
        "chatgpt_account_id": account,
        "chatgpt_plan_type": plan_type,
        "chatgpt_user_id": "user-" + sample("", 12),
    }
    now = int(time.time())
    header = _b64({"alg": "RS256", "typ": "JWT", "kid": sample("", 8)})
    id_token = ".".join([header, _b64({"email": "dev@example.org", "exp": now + 86_400, "iat": now,
                                        "https://api.openai.com/auth": claims}), sample("", 86)])  # fmt: skip
    access = ".".join([header, _b64({"exp": now + 86_400, "iat": now, "https://api.openai.com/auth": claims}),
                       sample("", 86)])  # fmt: skip
    tokens = {"id_token": id_token, "access_token": access, "refresh_token": sample("rt_", 40), "account_id": account}
    refreshed = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    (home / "auth.json").write_text(json.dumps({"OPENAI_API_KEY": None, "tokens": tokens, "last_refresh": refreshed}))
    return home, access, account


def test_codex_chatgpt_plus_sign_in_is_refused(
    codex: Path, upstream: UpstreamSimulator, passthrough_gateway: Running, tmp_path: Path, workdir: Path
) -> None:
    home, access, _ = chatgpt_codex_home(tmp_path, passthrough_gateway, "plus")
    env = agents.codex_env(tmp_path / "home", home, "unused")
    del env["EGRESS_KEY"]

    result = agents.run_agent(agents.codex_exec_argv(codex, "Summarise this repository."), env, workdir, timeout=60)

    said = result.stdout + result.stderr
    assert "consumer-plan credential (chatgpt_oauth)" in said, result.describe()
    assert access not in said
    assert [r for r in upstream.received if r.path.endswith("/responses")] == []
    records = [r for r in passthrough_gateway.audit(1) if r["api"] == "openai.responses"]
    assert records and {r["credential_plan"] for r in records} == {"consumer"}
    assert {r["error_code"] for r in records} == {"policy_denied"}


def test_codex_chatgpt_team_sign_in_is_forwarded_under_business_terms(
    codex: Path, upstream: UpstreamSimulator, passthrough_gateway: Running, tmp_path: Path, workdir: Path
) -> None:
    home, access, account = chatgpt_codex_home(tmp_path, passthrough_gateway, "team")
    marker = f"PLAN-ENT-{uuid.uuid4().hex}"
    upstream.enqueue(sse_reply(responses_stream(marker, USAGE), delay_s=0.05))
    env = agents.codex_env(tmp_path / "home", home, "unused")
    del env["EGRESS_KEY"]

    result = agents.run_agent(agents.codex_exec_argv(codex, "Reply with the marker."), env, workdir)

    assert result.returncode == 0, result.describe()
    assert marker in result.stdout, result.describe()
    got = [r for r in upstream.received if r.path.endswith("/responses")][-1]
    assert got.header("authorization") == f"Bearer {access}" and got.header("chatgpt-account-id") == account
    records = [r for r in passthrough_gateway.audit(1) if r["api"] == "openai.responses"]
    assert records[-1]["credential_plan"] == "enterprise" and records[-1]["outcome"] == "forwarded"
