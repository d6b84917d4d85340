"""Large bodies through the worker processes (detection.process_min_kb), end to end.

The gateway's process holds a large body's top-level fields only (worker_pool.TopLevelFields);
these tests check that what reaches the upstream is still the whole request: masked where it
must be, translated in full for an endpoint that speaks another API, and the same as the
in-process path gives for the same request.
"""

from __future__ import annotations

import base64
import os

import httpx
import orjson

from tests.conftest import start_gateway
from tests.support.gateway import write_config

HEADERS = {"anthropic-version": "2023-06-01", "content-type": "application/json"}


def token() -> str:
    return "glpat-" + base64.urlsafe_b64encode(os.urandom(15)).decode()


def chat_only(sim_url: str) -> list[dict]:
    """One endpoint that speaks Chat Completions only: every Claude request is translated."""
    return [
        {
            "name": "own",
            "api": "openai-chat",
            "base_url": sim_url + "/v1",
            "models": ["claude-*"],
            "credentials": {"env": "SIM_OPENAI_KEY"},
            "operator": "Our own server",
            "jurisdiction": "self",
            "region": "self",
            "retention_days": 0,
            "trains_on_api_data": False,
            "dpa": True,
            "upstream_model": "local-model",
        }
    ]


def test_a_large_body_is_translated_whole_and_masked(upstream, tmp_path):
    secret = token()
    # Over 1 MiB: parsed, inspected and masked in a worker process.
    long_text = "line of code\n" * 90_000 + f"deploy with {secret}\n"
    doc = {
        "model": "claude-sonnet-4-5",
        "max_tokens": 64,
        "system": "You are a coding agent.",
        "messages": [{"role": "user", "content": long_text}],
    }
    body = orjson.dumps(doc)
    assert len(body) > 1024 * 1024
    small = orjson.dumps({**doc, "messages": [{"role": "user", "content": f"deploy with {secret}\n"}]})
    # Nothing to mask: the body sent is the client's own, and the translator may reuse its parse.
    clean_text = "line of code\n" * 90_000
    clean = orjson.dumps({**doc, "messages": [{"role": "user", "content": clean_text}]})

    running = start_gateway(write_config(tmp_path, upstream.url, providers=chat_only(upstream.url)))
    try:
        for content in (body, small, clean):
            r = httpx.post(
                running.url + "/v1/messages", content=content, headers={**HEADERS, "x-egress-key": running.key}
            )
            assert r.status_code == 200, r.text
            assert r.json()["type"] == "message"
    finally:
        running.stop()

    large_sent, small_sent, clean_sent = upstream.received
    assert large_sent.path == small_sent.path == clean_sent.path == "/v1/chat/completions"
    assert secret.encode() not in large_sent.body and secret.encode() not in small_sent.body
    chat = orjson.loads(large_sent.body)
    assert chat["model"] == "local-model"
    sent_text = "".join(m["content"] for m in chat["messages"] if m["role"] == "user")
    # The whole text went, with the secret replaced by the same placeholder the small request got.
    placeholder = orjson.loads(small_sent.body)["messages"][-1]["content"].removeprefix("deploy with ").strip()
    assert placeholder and placeholder != secret
    assert sent_text.endswith(f"deploy with {placeholder}\n")
    assert sent_text == long_text.replace(secret, placeholder)
    assert any(m["role"] == "system" and m["content"] == "You are a coding agent." for m in chat["messages"])
    clean_chat = orjson.loads(clean_sent.body)
    assert [m["content"] for m in clean_chat["messages"] if m["role"] == "user"] == [clean_text]
