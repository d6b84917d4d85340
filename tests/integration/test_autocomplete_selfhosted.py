"""Autocomplete kept in house: a legacy completions request (the shape Continue's `openai` provider
sends for a non-GPT model, its FIM template already rendered into the prompt) that the policy will
not send to a cloud is routed, as it is, to the real self-hosted model server (llama.cpp's
OpenAI-compatible server serves /v1/completions), its secret masked; the official SDK reads the
real server's answer, whole and streamed."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from tests.conftest import Running
from tests.integration.test_sovereign_routing import AWS_KEY, _endpoint, start
from tests.support.selfhosted import SelfHostedServer
from tests.support.simulator import UpstreamSimulator

# A FIM template rendered by the editor (StarCoder-style sentinels): egress forwards it unchanged.
PROMPT = f"<fim_prefix>import boto3\nKEY = '{AWS_KEY}'\ndef upload(path):\n    <fim_suffix>\n<fim_middle>"


@pytest.fixture
def gw(selfhosted_model: SelfHostedServer, tmp_path: Path) -> Iterator[tuple[Running, UpstreamSimulator]]:
    cloud = UpstreamSimulator(seed=secrets.randbits(32)).start()
    providers = [
        _endpoint("us-openai", "openai", cloud.url + "/v1", "US", models=["gpt-*"]),
        _endpoint(
            "own",
            "openai-chat",
            selfhosted_model.base_url,
            "self",
            models=["*"],
            dpa=False,
            upstream_model=selfhosted_model.model,
        ),
    ]
    running = start(tmp_path, {"us": cloud.url}, providers=providers, upstream={"read_timeout_s": 120})
    yield running, cloud
    running.stop()
    cloud.stop()


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_proprietary_completion_is_served_by_the_real_self_hosted_model(gw, stream):
    running, cloud = gw
    client = openai.OpenAI(
        base_url=running.url + "/v1",
        api_key=running.key,
        default_headers={"x-egress-classification": "proprietary"},
        max_retries=0,
        timeout=120,
    )
    # A model both endpoints serve: the cloud is preferred, the policy reroutes.
    kwargs = dict(model="gpt-3.5-turbo-instruct", prompt=PROMPT, max_tokens=8, temperature=0)
    if stream:
        chunks = list(client.completions.create(stream=True, **kwargs))
        assert chunks and all(c.object == "text_completion" for c in chunks)
        text = "".join(c.choices[0].text for c in chunks if c.choices)
        finish = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    else:
        answer = client.completions.create(**kwargs)
        assert answer.object == "text_completion"
        text, finish = answer.choices[0].text, [answer.choices[0].finish_reason]
    assert finish and finish[-1] in ("stop", "length")
    assert isinstance(text, str) and "EGX_" not in text
    assert cloud.received == []  # proprietary code never reached the cloud
    (record,) = running.audit(1)
    assert record["api"] == "openai.completions" and record["endpoint"] == "own"
    assert record["jurisdiction"] == "self" and record["translated_from"] is None
    assert record["decision"]["action"] == "reroute" and record["masked"]["count"] == 1
