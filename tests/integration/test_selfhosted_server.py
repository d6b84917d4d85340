"""The self-hosted model server fixture works: the real llama.cpp OpenAI-compatible server, with the
Gemma 3 270M model, streams a chat completion to the official OpenAI SDK."""

from __future__ import annotations

import time

import openai

from tests.support.selfhosted import SelfHostedServer

# Greedy, short answers keep the request to a few seconds on 2 cores; the budget leaves headroom.
BUDGET_S = 30.0


def test_openai_sdk_streams_a_chat_completion(selfhosted_model: SelfHostedServer) -> None:
    assert selfhosted_model.base_url.endswith("/v1")
    client = openai.OpenAI(base_url=selfhosted_model.base_url, api_key="unused", timeout=BUDGET_S, max_retries=0)
    began = time.monotonic()
    stream = client.chat.completions.create(
        model=selfhosted_model.model,
        messages=[
            {"role": "system", "content": "You are a coding assistant. Answer in one short sentence."},
            {"role": "user", "content": "Say hello to the user."},
        ],
        temperature=0,
        max_tokens=16,
        stream=True,
        stream_options={"include_usage": True},
    )
    text: list[str] = []
    finish_reasons: list[str] = []
    with stream:
        for chunk in stream:
            for choice in chunk.choices:
                text.append(choice.delta.content or "")
                if choice.finish_reason is not None:
                    finish_reasons.append(choice.finish_reason)
    elapsed = time.monotonic() - began

    assert "".join(text).strip(), "the model streamed no text"
    assert finish_reasons in (["stop"], ["length"]), finish_reasons
    assert elapsed < BUDGET_S, f"the stream took {elapsed:.1f} s (server started in {selfhosted_model.start_s:.1f} s)"
