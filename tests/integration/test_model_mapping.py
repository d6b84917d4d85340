"""Model mapping through `egress serve`: the official SDKs ask for their own model names, the
regional provider (tests/support/model_sim.py) gets its own ids and refuses any other, and the
SDKs read back the names they asked for, streamed and not, over Messages, Chat and Responses."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import orjson
import pytest

from egress.app import open_configured_store
from egress.config import default_cache_dir, load_config
from tests.support.gateway import SIM_ENV, free_port, write_config
from tests.support.model_sim import RegionalProvider

EGRESS = [sys.executable, "-m", "egress"]
SONNET = "eu.anthropic.claude-sonnet-4-5-20250929-v1:0"
HAIKU = "eu.anthropic.claude-haiku-4-5-20251001-v1:0"
GPT = "gpt-5-2025-08-07-eu"
FACTS = {
    "jurisdiction": "EU",
    "region": "eu-central-1",
    "retention_days": 0,
    "trains_on_api_data": False,
    "dpa": True,
}


class Served:
    def __init__(self, url: str, key: str, regional: RegionalProvider, config: Path) -> None:
        self.url = url
        self.key = key
        self.regional = regional
        self.config = config

    def anthropic(self) -> anthropic.Anthropic:
        return anthropic.Anthropic(
            base_url=self.url, api_key="sk-ant-own", default_headers={"x-egress-key": self.key}, max_retries=0
        )

    def openai(self) -> openai.OpenAI:
        return openai.OpenAI(
            base_url=self.url + "/v1", api_key="sk-own", default_headers={"x-egress-key": self.key}, max_retries=0
        )

    def last_seen(self) -> dict[str, Any]:
        return self.regional.seen[-1].json()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    tmp = tmp_path_factory.mktemp("model-mapping")
    regional = RegionalProvider({SONNET, HAIKU, GPT}).start()
    providers = [
        {
            "name": "eu-claude",
            "api": "anthropic",
            "base_url": regional.url,
            "models": ["claude-*"],
            # An exact name, then a glob: the exact one wins for Sonnet 4.5.
            "model_map": {"claude-sonnet-4-5": SONNET, "claude-haiku-*": HAIKU},
            "credentials": {"env": "SIM_ANTHROPIC_KEY"},
            "operator": "Simulated regional cloud",
            **FACTS,
        },
        {
            "name": "eu-openai",
            "api": "openai",
            "base_url": regional.url + "/v1",
            "models": ["gpt-*"],
            "upstream_model": GPT,  # one id for every model it is asked for
            "credentials": {"env": "SIM_OPENAI_KEY"},
            "operator": "Simulated regional cloud",
            **FACTS,
        },
        {
            # Chat only: Messages requests reach it through translation, mapped all the same.
            "name": "eu-chat",
            "api": "openai-chat",
            "base_url": regional.url + "/v1",
            "models": ["local-*"],
            "model_map": {"local-coder": GPT},
            "credentials": {"env": "SIM_OPENAI_KEY"},
            "operator": "Simulated regional cloud",
            **FACTS,
        },
    ]
    config = write_config(tmp, regional.url, providers=providers, audit={"flush_interval_ms": 5})
    env = {
        **os.environ,
        **SIM_ENV,
        "HOME": str(tmp),
        "EGRESS_DATA_DIR": str(tmp / "data"),
        "XDG_CACHE_HOME": str(default_cache_dir(os.environ).parent),
    }
    created = subprocess.run(
        [*EGRESS, "keys", "create", "--user", "dana", "--config", str(config)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert created.returncode == 0, created.stderr
    port = free_port()
    proc = subprocess.Popen(
        [*EGRESS, "serve", "--config", str(config), "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(url, proc)
        yield Served(url, created.stdout.strip(), regional, config)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
        regional.stop()


def _wait_ready(url: str, proc: subprocess.Popen, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"egress serve exited: {proc.stdout.read() if proc.stdout else ''}")
        try:
            if httpx.get(url + "/readyz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError("egress serve did not become ready")


# --- Messages (anthropic SDK) ----------------------------------------------------------------------


def test_messages_whole_answer(served: Served) -> None:
    message = served.anthropic().messages.create(
        model="claude-sonnet-4-5", max_tokens=50, messages=[{"role": "user", "content": "hello"}]
    )
    assert served.last_seen()["model"] == SONNET
    assert message.model == "claude-sonnet-4-5"
    assert message.content[0].text == "served in region"  # type: ignore[union-attr]


def test_messages_stream(served: Served) -> None:
    with served.anthropic().messages.stream(
        model="claude-haiku-4-5", max_tokens=50, messages=[{"role": "user", "content": "hello"}]
    ) as stream:
        events = list(stream)
        final = stream.get_final_message()
    assert served.last_seen()["model"] == HAIKU  # the glob
    starts = [e for e in events if e.type == "message_start"]
    assert len(starts) == 1 and starts[0].message.model == "claude-haiku-4-5"
    assert final.model == "claude-haiku-4-5" and final.content[0].text == "served in region"  # type: ignore[union-attr]


def test_the_request_leaves_byte_identical_but_for_the_model(served: Served) -> None:
    """Odd spacing, a nested `model` key and the word in the text: only the top-level value changes."""
    body = (
        b'{ "max_tokens" : 20,\n "messages": [{"role": "user", "content": "my \\"model\\": \\"x\\""}],'
        b'\n "metadata": {"user_id": "u-1"},'
        b' "tools": [{"name": "pick", "input_schema": {"type": "object", "properties": {"model": {"type": "string"}}}}],'
        b'  "model"  :  "claude-sonnet-4-5" }'
    )
    response = httpx.post(
        served.url + "/v1/messages",
        content=body,
        headers={"content-type": "application/json", "x-egress-key": served.key, "anthropic-version": "2023-06-01"},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    assert served.regional.seen[-1].body == body.replace(b'"claude-sonnet-4-5"', json.dumps(SONNET).encode())
    assert response.json()["model"] == "claude-sonnet-4-5"


def test_a_model_key_written_with_escapes_is_refused_natively_and_never_sent(served: Served) -> None:
    """The key cannot be rewritten in place: a precise Anthropic-shaped error, nothing forwarded."""
    before = len(served.regional.seen)
    response = httpx.post(
        served.url + "/v1/messages",
        content=b'{"mod\\u0065l":"claude-sonnet-4-5","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}',
        headers={"content-type": "application/json", "x-egress-key": served.key, "anthropic-version": "2023-06-01"},
        timeout=30,
    )
    assert response.status_code == 400, response.text
    error = response.json()
    assert error["type"] == "error" and error["error"]["type"] == "invalid_request_error"
    assert "without escapes" in error["error"]["message"]
    assert len(served.regional.seen) == before


def test_unmapped_names_reach_the_provider_as_they_are(served: Served) -> None:
    """No rule for claude-opus: the provider gets the client's own name (and refuses it here)."""
    with pytest.raises(anthropic.NotFoundError):
        served.anthropic().messages.create(
            model="claude-opus-4-1", max_tokens=5, messages=[{"role": "user", "content": "hi"}]
        )
    assert served.last_seen()["model"] == "claude-opus-4-1"


def test_a_translated_request_is_mapped_and_answers_with_the_clients_name(served: Served) -> None:
    client = served.anthropic()
    message = client.messages.create(model="local-coder", max_tokens=20, messages=[{"role": "user", "content": "hi"}])
    assert served.regional.seen[-1].path == "/v1/chat/completions" and served.last_seen()["model"] == GPT
    assert message.model == "local-coder" and message.content[0].text == "served in region"  # type: ignore[union-attr]
    with client.messages.stream(
        model="local-coder", max_tokens=20, messages=[{"role": "user", "content": "hi"}]
    ) as stream:
        starts = [e for e in stream if e.type == "message_start"]
        final = stream.get_final_message()
    assert served.last_seen()["model"] == GPT
    assert [e.message.model for e in starts] == ["local-coder"] and final.model == "local-coder"


# --- Chat and Responses (openai SDK) ---------------------------------------------------------------


def test_chat_whole_answer_and_stream(served: Served) -> None:
    client = served.openai()
    answer = client.chat.completions.create(model="gpt-5", messages=[{"role": "user", "content": "hi"}])
    assert served.last_seen()["model"] == GPT
    assert answer.model == "gpt-5" and answer.choices[0].message.content == "served in region"
    chunks = list(
        client.chat.completions.create(model="gpt-5", messages=[{"role": "user", "content": "hi"}], stream=True)
    )
    assert served.last_seen()["model"] == GPT
    assert len(chunks) == 3 and {c.model for c in chunks} == {"gpt-5"}
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "served in region"


def test_responses_whole_answer_and_stream(served: Served) -> None:
    client = served.openai()
    answer = client.responses.create(model="gpt-5-codex", input="hi")
    assert served.last_seen()["model"] == GPT
    assert answer.model == "gpt-5-codex" and answer.output_text == "served in region"
    events = list(client.responses.create(model="gpt-5-codex", input="hi", stream=True))
    assert served.last_seen()["model"] == GPT
    carrying = [e for e in events if hasattr(e, "response")]
    assert [e.type for e in carrying] == ["response.created", "response.in_progress", "response.completed"]
    assert {e.response.model for e in carrying} == {"gpt-5-codex"}


# --- the audit -------------------------------------------------------------------------------------


def test_the_audit_records_both_names(served: Served) -> None:
    served.anthropic().messages.create(
        model="claude-sonnet-4-5", max_tokens=5, messages=[{"role": "user", "content": "audited"}]
    )
    with pytest.raises(anthropic.NotFoundError):  # unmapped: sent as asked
        served.anthropic().messages.create(
            model="claude-opus-4-1", max_tokens=5, messages=[{"role": "user", "content": "audited"}]
        )
    store = open_configured_store(load_config(served.config, env=SIM_ENV))
    try:
        deadline = time.monotonic() + 10
        while True:
            records = [orjson.loads(r.entry.canonical) for r in store.iter_audit()]
            mapped = [r for r in records if r.get("upstream_model") == SONNET]
            kinds = {r.get("type") for r in mapped}
            if kinds >= {None, "egress"} or time.monotonic() > deadline:
                break
            time.sleep(0.05)
    finally:
        store.close()
    assert kinds >= {None, "egress"}, records[-3:]  # the write-ahead record and the request's own
    assert all(r["model"] == "claude-sonnet-4-5" for r in mapped)
    unmapped = [r for r in records if r.get("model") == "claude-opus-4-1"]
    assert unmapped and all("upstream_model" not in r for r in unmapped)


# --- the policy ------------------------------------------------------------------------------------


def test_the_policy_input_carries_both_names(served: Served, tmp_path: Path) -> None:
    """`egress policy eval` builds the input as the gateway does: the client's name in
    request.model, each candidate's own id in its upstream_model."""
    request = tmp_path / "req.json"
    request.write_text(
        json.dumps({"model": "claude-haiku-4-5", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]})
    )
    # The compiled rule prefilter's cache, as the gateway's: eval does not recompile it (seconds).
    env = {**os.environ, **SIM_ENV, "HOME": str(tmp_path), "XDG_CACHE_HOME": str(default_cache_dir(os.environ).parent)}
    done = subprocess.run(
        [*EGRESS, "policy", "eval", "--config", str(served.config), "--request", str(request), "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)["input"]
    assert document["request"]["model"] == "claude-haiku-4-5"
    assert [(c["name"], c["upstream_model"]) for c in document["candidates"]] == [("eu-claude", HAIKU)]
