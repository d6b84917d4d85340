"""The official SDKs cannot tell egress from the provider: for every recorded stream, what the
SDK assembles through egress equals what it assembles talking to the provider directly."""

from __future__ import annotations

from typing import Any

import anthropic
import openai
import pytest

from tests.support.simulator import fixtures_dir, recorded_streams

FIXTURES = [str(p.relative_to(fixtures_dir())) for p in recorded_streams()]


def outcome(fn) -> tuple[str, Any]:
    """Either the SDK's result, or the kind of error it raised: both must match."""
    try:
        return "ok", fn()
    except (anthropic.APIError, openai.APIError, ValueError, KeyError) as exc:
        return "error", type(exc).__name__


def anthropic_client(base_url: str, key: str | None) -> anthropic.Anthropic:
    headers = {"x-egress-key": key} if key else {}
    return anthropic.Anthropic(base_url=base_url, api_key="sk-ant-client-key", default_headers=headers, max_retries=0)


def openai_client(base_url: str, key: str | None) -> openai.OpenAI:
    headers = {"x-egress-key": key} if key else {}
    return openai.OpenAI(base_url=base_url + "/v1", api_key="sk-client-key", default_headers=headers, max_retries=0)


def run_anthropic(client: anthropic.Anthropic, fixture: str, stream: bool):
    kwargs = dict(
        model="claude-sonnet-4-5",
        max_tokens=100,
        messages=[{"role": "user", "content": "hi"}],
        extra_headers={"x-sim-fixture": fixture},
    )
    if not stream:
        return client.messages.create(**kwargs).model_dump()

    def go():
        with client.messages.stream(**kwargs) as s:
            events = [e.model_dump() for e in s]
            return events, s.get_final_message().model_dump()

    return go()


def run_chat(client: openai.OpenAI, fixture: str, stream: bool):
    kwargs = dict(
        model="gpt-4o", messages=[{"role": "user", "content": "hi"}], extra_headers={"x-sim-fixture": fixture}
    )
    if not stream:
        return client.chat.completions.create(**kwargs).model_dump()
    return [c.model_dump() for c in client.chat.completions.create(stream=True, **kwargs)]


def run_responses(client: openai.OpenAI, fixture: str, stream: bool):
    kwargs = dict(model="gpt-5-codex", input="hi", extra_headers={"x-sim-fixture": fixture})
    if not stream:
        return client.responses.create(**kwargs).model_dump()
    return [e.model_dump() for e in client.responses.create(stream=True, **kwargs)]


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "non-stream"])
@pytest.mark.parametrize("fixture", FIXTURES)
def test_sdk_assembles_the_same_through_egress(gateway, upstream, fixture, stream):
    family = fixture.split("/")[0]
    if family == "anthropic-messages":
        via = outcome(lambda: run_anthropic(anthropic_client(gateway.url, gateway.key), fixture, stream))
        direct = outcome(lambda: run_anthropic(anthropic_client(upstream.url, None), fixture, stream))
    elif family == "openai-chat":
        via = outcome(lambda: run_chat(openai_client(gateway.url, gateway.key), fixture, stream))
        direct = outcome(lambda: run_chat(openai_client(upstream.url, None), fixture, stream))
    else:
        via = outcome(lambda: run_responses(openai_client(gateway.url, gateway.key), fixture, stream))
        direct = outcome(lambda: run_responses(openai_client(upstream.url, None), fixture, stream))
    assert via == direct
    if "incomplete" not in fixture:
        assert via[0] == "ok", via


def test_sdk_sees_egress_refusals_as_final_errors(gateway, upstream):
    client = anthropic.Anthropic(base_url=gateway.url, api_key="sk-ant-x", default_headers={"x-egress-key": "egk_bad"})
    with pytest.raises(anthropic.AuthenticationError) as info:
        client.messages.create(model="claude-sonnet-4-5", max_tokens=5, messages=[{"role": "user", "content": "x"}])
    assert info.value.body["error"]["details"]["error_code"] == "unauthorized"
    oai = openai.OpenAI(base_url=gateway.url + "/v1", api_key="sk-x", default_headers={"x-egress-key": gateway.key})
    with pytest.raises(openai.BadRequestError) as oinfo:
        oai.chat.completions.create(model="mistral-large", messages=[{"role": "user", "content": "x"}])
    assert oinfo.value.code == "no_route"
    assert upstream.received == []
    # The SDKs obey x-should-retry: false, so one attempt each reached the gateway.
    assert len(gateway.audit(2)) == 2
