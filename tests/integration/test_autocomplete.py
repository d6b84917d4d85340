"""Editor autocomplete through `egress serve` (a separate process): OpenAI's legacy completions
with the official `openai` SDK, Mistral's FIM with httpx and the official `mistralai` SDK, against
an upstream that speaks both real shapes and checks their keys (tests/support/completions_sim.py).

A secret in the prompt (the code before the cursor) and another in the suffix (the code after it)
never reach the provider: each is a placeholder there, and the answer, which cites both, comes
back restored, whole or streamed in pieces that cut the placeholders apart."""

from __future__ import annotations

import json
import os
import secrets
import signal
import string
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import openai
import pytest
import yaml
from mistralai.client import Mistral
from mistralai.client.errors import MistralError

from egress.config import default_cache_dir
from tests.integration.test_serve_cli import run, start_serve
from tests.support.agents import node_dir
from tests.support.completions_sim import CompletionsSimulator, completion_text
from tests.support.gateway import SIM_ENV, write_config

REPO = Path(__file__).resolve().parents[2]
MISTRAL_KEY = "sim-mistral-upstream-0003"
# Continue's own packages (tools/continue/package.json), installed by scripts/test.sh.
CONTINUE_PREFIX = Path(os.environ.get("EGRESS_CONTINUE_PREFIX", REPO / ".tools" / "continue"))
CONTINUE_DRIVER = REPO / "tests" / "support" / "continue_autocomplete.mjs"
ENV = {**SIM_ENV, "SIM_MISTRAL_KEY": MISTRAL_KEY}
AWS_KEY = "AKIAQYLPMN5HHHFPZAM2"  # shaped like a real key; not the documented example
GITHUB_PAT = "ghp_" + "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(36))
PROMPT = f"import boto3\nclient = boto3.client('s3', aws_access_key_id='{AWS_KEY}',\n"
SUFFIX = f")\nHEADERS = {{'Authorization': 'token {GITHUB_PAT}'}}\n"


def endpoint(name: str, api: str, url: str, models: list[str], env: str) -> dict[str, object]:
    return {
        "name": name,
        "api": api,
        "base_url": url,
        "models": models,
        "credentials": {"env": env},
        "operator": f"Simulated {name}",
        "jurisdiction": "US",
        "region": "us",
        "retention_days": 30,
        "trains_on_api_data": False,
        "dpa": True,
    }


@dataclass
class Served:
    url: str
    key: str
    sim: CompletionsSimulator
    config: Path
    env: dict[str, str]

    def audit_tail(self, n: int) -> list[dict]:
        out = run(["audit", "tail", "-n", str(n), "--json", "--config", str(self.config)], self.env)
        assert out.returncode == 0, out.stderr
        return [r for r in map(json.loads, out.stdout.splitlines()) if r.get("type") != "egress"]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    tmp = tmp_path_factory.mktemp("autocomplete")
    sim = CompletionsSimulator(SIM_ENV["SIM_OPENAI_KEY"], MISTRAL_KEY, seed=secrets.randbits(32)).start()
    providers = [
        # qwen2.5-coder: a code model Continue's `openai` provider sends to /completions (not gpt*).
        endpoint("sim-openai", "openai", sim.url + "/v1", ["gpt-*", "qwen2.5-coder*"], "SIM_OPENAI_KEY"),
        endpoint("sim-mistral", "mistral", sim.url + "/v1", ["codestral-*"], "SIM_MISTRAL_KEY"),
    ]
    config = write_config(tmp, sim.url, providers=providers, audit={"flush_interval_ms": 5})
    env = {
        **os.environ,
        **ENV,
        "HOME": str(tmp),
        "EGRESS_DATA_DIR": str(tmp / "data"),
        # The compiled rule prefilter is cached outside the temporary HOME (seconds to build).
        "XDG_CACHE_HOME": str(default_cache_dir(os.environ).parent),
    }
    created = run(["keys", "create", "--user", "erin", "--team", "editors", "--config", str(config)], env)
    assert created.returncode == 0, created.stderr
    proc, url = start_serve(env, "--config", str(config))
    try:
        yield Served(url, created.stdout.strip(), sim, config, env)
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
        sim.stop()
    # Nothing the gateway printed holds either secret or a key.
    for secret in (AWS_KEY, GITHUB_PAT, MISTRAL_KEY, SIM_ENV["SIM_OPENAI_KEY"]):
        assert secret not in out


@pytest.fixture
def sim(served: Served) -> CompletionsSimulator:
    served.sim.reset()
    return served.sim


def assert_masked_upstream(sim: CompletionsSimulator, path: str, bearer: str, prompt_key: object = "prompt") -> dict:
    """What left egress: on the API's path, with the provider's key, and no secret anywhere, each
    replaced by a placeholder in the prompt and in the suffix."""
    (call,) = sim.received
    assert call.path == path and call.headers["authorization"] == f"Bearer {bearer}"
    assert "x-api-key" not in call.headers and "x-egress-key" not in call.headers
    for secret in (AWS_KEY, GITHUB_PAT):
        assert secret.encode() not in call.body
    doc = call.json()
    prompt = doc["prompt"] if prompt_key == "prompt" else doc["prompt"][prompt_key]
    assert "EGX_" in prompt and "EGX_" in doc["suffix"]
    return doc


def test_openai_sdk_completion_whole(served, sim):
    client = openai.OpenAI(base_url=served.url + "/v1", api_key=served.key, max_retries=0)
    answer = client.completions.create(model="gpt-3.5-turbo-instruct", prompt=PROMPT, suffix=SUFFIX, max_tokens=64)
    assert answer.object == "text_completion" and answer.choices[0].text == completion_text(PROMPT, SUFFIX)
    assert answer.usage is not None and answer.usage.completion_tokens > 0
    sent = assert_masked_upstream(sim, "/v1/completions", SIM_ENV["SIM_OPENAI_KEY"])
    assert sent["max_tokens"] == 64 and sent["model"] == "gpt-3.5-turbo-instruct"
    (record,) = served.audit_tail(2)[-1:]
    assert record["api"] == "openai.completions" and record["endpoint"] == "sim-openai"
    assert record["outcome"] == "forwarded" and record["masked"]["count"] == 2
    assert AWS_KEY not in json.dumps(record) and GITHUB_PAT not in json.dumps(record)


def test_openai_sdk_completion_streamed(served, sim):
    client = openai.OpenAI(base_url=served.url + "/v1", api_key=served.key, max_retries=0)
    chunks = list(
        client.completions.create(
            model="gpt-3.5-turbo-instruct",
            prompt=PROMPT,
            suffix=SUFFIX,
            max_tokens=64,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    text = "".join(c.choices[0].text for c in chunks if c.choices)
    assert text == completion_text(PROMPT, SUFFIX)
    assert len(chunks) > 10  # streamed in pieces: the placeholders were cut across chunks
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].usage is not None and chunks[-1].usage.prompt_tokens > 0
    assert_masked_upstream(sim, "/v1/completions", SIM_ENV["SIM_OPENAI_KEY"])


def test_openai_sdk_a_list_of_prompts(served, sim):
    client = openai.OpenAI(base_url=served.url + "/v1", api_key=served.key, max_retries=0)
    prompts = ["def add(a, b):\n", PROMPT]
    answer = client.completions.create(model="gpt-3.5-turbo-instruct", prompt=prompts, suffix=SUFFIX, max_tokens=8)
    assert [c.text for c in sorted(answer.choices, key=lambda c: c.index)] == [
        completion_text(p, SUFFIX) for p in prompts
    ]
    sent = assert_masked_upstream(sim, "/v1/completions", SIM_ENV["SIM_OPENAI_KEY"], prompt_key=1)
    assert sent["prompt"][0] == prompts[0]


def test_a_prompt_past_the_worker_process_threshold(served, sim):
    # 1.2 MB: parsed, inspected and masked in a worker process (detection.process_min_kb, 1024).
    body = "".join(f"def handler_{i}(event):\n    return event['k{i}']\n" for i in range(30_000))
    prompt = body[:1_200_000] + PROMPT
    client = openai.OpenAI(base_url=served.url + "/v1", api_key=served.key, max_retries=0, timeout=60)
    answer = client.completions.create(model="gpt-3.5-turbo-instruct", prompt=prompt, suffix=SUFFIX, max_tokens=8)
    assert answer.choices[0].text == completion_text(prompt, SUFFIX)
    assert_masked_upstream(sim, "/v1/completions", SIM_ENV["SIM_OPENAI_KEY"])


def test_token_id_prompts_are_refused_natively_and_sent_nowhere(served, sim):
    client = openai.OpenAI(base_url=served.url + "/v1", api_key=served.key, max_retries=0)
    with pytest.raises(openai.BadRequestError) as caught:
        client.completions.create(model="gpt-3.5-turbo-instruct", prompt=[1734, 318, 257], max_tokens=8)
    assert caught.value.code == "invalid_request"
    assert "token-id prompts cannot be inspected" in caught.value.message
    assert sim.received == []


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_fim_with_httpx_as_continue_sends_it(served, sim, stream):
    # Continue's `mistral` provider: POST {apiBase}fim/completions with the key both as a bearer
    # token and as x-api-key (here the gateway key: egress sends its own Mistral key upstream).
    headers = {"authorization": f"Bearer {served.key}", "x-api-key": served.key}
    body = {"model": "codestral-latest", "prompt": PROMPT, "suffix": SUFFIX, "max_tokens": 64, "stream": stream}
    with httpx.Client(timeout=30) as http:
        if not stream:
            reply = http.post(served.url + "/v1/fim/completions", json=body, headers=headers)
            assert reply.status_code == 200, reply.text
            doc = reply.json()
            assert doc["object"] == "chat.completion"
            text = doc["choices"][0]["message"]["content"]
        else:
            pieces = []
            with http.stream("POST", served.url + "/v1/fim/completions", json=body, headers=headers) as reply:
                assert reply.status_code == 200 and reply.headers["content-type"].startswith("text/event-stream")
                lines = [line for line in reply.iter_lines() if line.startswith("data: ")]
            assert lines[-1] == "data: [DONE]"
            for line in lines[:-1]:
                for choice in json.loads(line[6:])["choices"]:
                    pieces.append(choice["delta"].get("content") or "")
            text = "".join(pieces)
    assert text == completion_text(PROMPT, SUFFIX)
    assert_masked_upstream(sim, "/v1/fim/completions", MISTRAL_KEY)


def test_mistral_sdk_fim_whole_and_streamed(served, sim):
    client = Mistral(api_key=served.key, server_url=served.url)
    answer = client.fim.complete(model="codestral-latest", prompt=PROMPT, suffix=SUFFIX, max_tokens=64)
    assert answer.choices[0].message.content == completion_text(PROMPT, SUFFIX)
    assert answer.usage.prompt_tokens > 0
    assert_masked_upstream(sim, "/v1/fim/completions", MISTRAL_KEY)
    sim.reset()
    events = list(client.fim.stream(model="codestral-latest", prompt=PROMPT, suffix=SUFFIX, max_tokens=64))
    text = "".join(e.data.choices[0].delta.content or "" for e in events if e.data.choices)
    assert text == completion_text(PROMPT, SUFFIX)
    assert events[-1].data.choices[0].finish_reason == "stop"
    assert_masked_upstream(sim, "/v1/fim/completions", MISTRAL_KEY)


def test_mistral_sdk_sees_egress_refusals_as_final_errors(served, sim):
    client = Mistral(api_key="egk_not_a_key", server_url=served.url)
    with pytest.raises(MistralError) as caught:
        client.fim.complete(model="codestral-latest", prompt=PROMPT, suffix=SUFFIX)
    assert caught.value.status_code == 403  # OpenAI-family clients get 403 for a bad gateway key
    assert json.loads(caught.value.body)["error"]["code"] == "unauthorized"
    assert sim.received == []


def test_the_providers_own_validation_error_reaches_the_client(served, sim):
    # No prompt: Mistral's 422 (FastAPI's shape) comes back as the provider wrote it.
    reply = httpx.post(
        served.url + "/v1/fim/completions",
        json={"model": "codestral-latest", "suffix": "x"},
        headers={"authorization": f"Bearer {served.key}"},
        timeout=30,
    )
    assert reply.status_code == 422
    assert reply.json()["detail"][0]["loc"] == ["body", "prompt"]


def test_fim_for_a_model_no_fim_endpoint_serves_is_refused_natively(served, sim):
    # gpt-* is served by an OpenAI endpoint, which has no FIM API: never translated, refused.
    reply = httpx.post(
        served.url + "/v1/fim/completions",
        json={"model": "gpt-3.5-turbo-instruct", "prompt": "a", "suffix": "b"},
        headers={"authorization": f"Bearer {served.key}"},
        timeout=30,
    )
    assert reply.status_code == 400, reply.text
    error = reply.json()["error"]
    assert error["type"] == "invalid_request_error" and error["code"] == "no_route"
    assert error["message"].endswith("sim-openai serve it but cannot answer openai.fim_completions")
    assert sim.received == []


# --- Continue's autocomplete, configured against egress ------------------------------------------


def continue_autocomplete(tmp_path: Path, served: Served, model: dict[str, object], prefix: str, suffix: str) -> dict:
    """Continue's request for a config.yaml whose autocomplete model points at egress, built and
    sent by Continue's own config-yaml and openai-adapters packages (tests/support/continue_autocomplete.mjs)."""
    missing = [
        p
        for p in ("@continuedev/config-yaml", "@continuedev/openai-adapters")
        if not (CONTINUE_PREFIX / "node_modules" / p).is_dir()
    ]
    if missing:
        pytest.fail(
            f"Continue's packages are not installed under {CONTINUE_PREFIX}: {', '.join(missing)}; run "
            "`mkdir -p .tools/continue && cp tools/continue/package*.json .tools/continue/ && "
            "npm install --prefix .tools/continue` as scripts/test.sh does",
            pytrace=False,
        )
    config = {
        "name": "egress autocomplete",
        "version": "1.0.0",
        "schema": "v1",
        "models": [
            {"name": "chat", "provider": "anthropic", "model": "claude-sonnet-4-5", "roles": ["chat"]},
            {**model, "apiBase": served.url + "/v1/", "apiKey": served.key, "roles": ["autocomplete"]},
        ],
    }
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    (tmp_path / "request.json").write_text(json.dumps({"prefix": prefix, "suffix": suffix, "maxTokens": 64}))
    env = {"PATH": f"{node_dir()}:{os.environ['PATH']}", "HOME": str(tmp_path)}
    done = subprocess.run(
        [
            "node",
            str(CONTINUE_DRIVER),
            str(CONTINUE_PREFIX),
            str(tmp_path / "config.yaml"),
            str(tmp_path / "request.json"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


def test_continue_mistral_autocomplete_through_egress(served, sim, tmp_path):
    out = continue_autocomplete(
        tmp_path, served, {"name": "Codestral", "provider": "mistral", "model": "codestral-latest"}, PROMPT, SUFFIX
    )
    assert out["text"] == completion_text(PROMPT, SUFFIX) and out["chunks"] > 10
    (call,) = sim.received
    # Continue's own FIM request: streamed, the prefix and suffix as written around the cursor.
    assert call.path == "/v1/fim/completions" and call.json()["stream"] is True
    assert call.json()["model"] == "codestral-latest" and call.json()["max_tokens"] == 64
    assert_masked_upstream(sim, "/v1/fim/completions", MISTRAL_KEY)
    (record,) = served.audit_tail(2)[-1:]
    assert record["api"] == "openai.fim_completions" and record["endpoint"] == "sim-mistral"
    assert record["masked"]["count"] == 2


def test_continue_openai_autocomplete_through_egress(served, sim, tmp_path):
    # No FIM for `openai`: Continue sends the prompt its template rendered, without a suffix.
    rendered = f"<fim_prefix>{PROMPT}<fim_suffix>{SUFFIX}<fim_middle>"
    model = {"name": "Qwen coder", "provider": "openai", "model": "qwen2.5-coder-1.5b"}
    out = continue_autocomplete(tmp_path, served, model, rendered, SUFFIX)
    assert out["text"] == completion_text(rendered, None)
    (call,) = sim.received
    sent = call.json()
    assert call.path == "/v1/completions" and sent["stream"] is True and "suffix" not in sent
    assert call.headers["authorization"] == f"Bearer {SIM_ENV['SIM_OPENAI_KEY']}"
    # The sentinels reach the model as the editor wrote them; the secrets do not.
    assert sent["prompt"].startswith("<fim_prefix>import boto3") and sent["prompt"].endswith("<fim_middle>")
    assert AWS_KEY not in sent["prompt"] and GITHUB_PAT not in sent["prompt"] and sent["prompt"].count("EGX_") == 2


def test_policy_eval_reads_a_fim_request(served, tmp_path):
    # `--api mistral-fim`; without it a prompt body is guessed as legacy completions (unit-tested).
    request = tmp_path / "fim.json"
    request.write_text(json.dumps({"model": "codestral-latest", "prompt": PROMPT, "suffix": SUFFIX}))
    done = run(
        ["policy", "eval", "--config", str(served.config), "--request", str(request), "--api", "mistral-fim", "--json"],
        served.env,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["api"] == "openai.fim_completions" and report["endpoint"] == "sim-mistral"
    assert report["input"]["findings"]["kinds"]["secret"] == 2
    assert AWS_KEY not in done.stdout and GITHUB_PAT not in done.stdout
