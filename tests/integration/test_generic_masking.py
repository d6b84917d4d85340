"""The credentials issue #14 found missed, end to end: official SDKs -> egress (real detection,
bundled policy) -> the upstream simulator. Each one (generic credentials in five syntaxes, a
GitHub token whose checksum is off, an Anthropic key a few characters short, a Kubernetes
Secret's base64 `data:` value) is masked before it leaves and restored in the answer, in all
three APIs, streamed and whole. The simulated model answers by citing the placeholders it saw."""

from __future__ import annotations

import base64
import json
import random
from typing import Any

import pytest

from tests.integration.test_masking import ANSWERS, JSON_HEADERS, PLACEHOLDER, SSE_HEADERS, clients
from tests.support.simulator import Received, Reply, split_random

CONFIG_JSON = base64.b64encode(json.dumps({"db": {"password": "Wq8#Lm3Zx9Kp"}}).encode()).decode()
# line -> the value that must not leave (for the encoded one: the encoded text that carries it)
MISSED = {
    "db_password = Tr0ub4dor&3xQ": "Tr0ub4dor&3xQ",
    "CREATE USER 'app'@'%' IDENTIFIED BY 'Xk29!mPq0zL';": "Xk29!mPq0zL",
    'var clientSecret string = "Zq8vN2mK4pL7xR1tY6wB3cF9"': "Zq8vN2mK4pL7xR1tY6wB3cF9",
    'System.setProperty("DB_PASSWORD", "Hj7&kPz2Qm9w")': "Hj7&kPz2Qm9w",
    "$settings['secret_key'] .= 'pL9xQ2wE5rT8yU1iO4pA7sD0';": "pL9xQ2wE5rT8yU1iO4pA7sD0",
    "token: ghp_Ab3De5Gh7Jk9Mn1Pq3Rs5Tu7Vw9Xy1Za3Bc5": "ghp_Ab3De5Gh7Jk9Mn1Pq3Rs5Tu7Vw9Xy1Za3Bc5",
    "ANTHROPIC_API_KEY=sk-ant-api03-Zx9Yw8Vu7Ts6Rq5Po4Nm3Lk2Ji1Hg0Fe9Dc8Ba7": "sk-ant-api03-Zx9Yw8Vu7Ts6Rq5Po4Nm3Lk2Ji1Hg0Fe9Dc8Ba7",
    f"kind: Secret\ndata:\n  config.json: {CONFIG_JSON}": CONFIG_JSON,
}
PROMPT = "Why does this fail?\n" + "\n".join(MISSED)
VALUES = list(MISSED.values())


def model(api: str, stream: bool, seen: list[Received]) -> Reply:
    """Cites every placeholder it was sent, in order, in its text; runs `true` as its tool call."""
    make, assemble = ANSWERS[api]

    def build(received: Received) -> list[bytes]:
        seen.append(received)
        body = received.body.decode()
        for value in VALUES:
            assert value not in body, f"{value!r} reached the upstream"
        cited = list(dict.fromkeys(PLACEHOLDER.findall(body)))
        wire = make("Seen: " + " ".join(cited), "true")
        if stream:
            return split_random(wire, random.Random(len(received.body)))
        return [json.dumps(assemble(wire)).encode()]

    return Reply(headers=SSE_HEADERS if stream else JSON_HEADERS, build=build)


def ask(api: str, stream: bool, url: str, key: str) -> str:
    claude, oai = clients(url, key)
    if api == "anthropic":
        request: dict[str, Any] = dict(
            model="claude-sonnet-4-5", max_tokens=200, messages=[{"role": "user", "content": PROMPT}]
        )
        if stream:
            with claude.messages.stream(**request) as s:
                return str(s.get_final_message().content[0].text)
        return str(claude.messages.create(**request).content[0].text)
    if api == "chat":
        messages = [{"role": "user", "content": PROMPT}]
        if stream:
            return "".join(
                c.delta.content or ""
                for chunk in oai.chat.completions.create(model="gpt-4o", messages=messages, stream=True)
                for c in chunk.choices
            )
        return str(oai.chat.completions.create(model="gpt-4o", messages=messages).choices[0].message.content)
    request = dict(
        model="gpt-5.5-codex",
        input=[{"type": "message", "role": "user", "content": [{"type": "input_text", "text": PROMPT}]}],
        store=False,
    )
    if stream:
        with oai.responses.stream(**request) as s:
            return str(s.get_final_response().output_text)
    return str(oai.responses.create(**request).output_text)


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "whole"])
@pytest.mark.parametrize("api", ["anthropic", "chat", "responses"])
def test_the_missed_credentials_are_masked_upstream_and_restored(gateway, upstream, api, stream):
    seen: list[Received] = []
    upstream.enqueue(model(api, stream, seen))
    answer = ask(api, stream, gateway.url, gateway.key)
    assert len(seen) == 1
    assert answer == "Seen: " + " ".join(VALUES)
    (record,) = gateway.audit(1)
    assert record["masked"]["count"] >= len(VALUES)
    stored = json.dumps(record)
    for value in VALUES:
        assert value not in stored
