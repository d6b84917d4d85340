"""The answer's text from recorded upstream bytes, as `egress audit replay` shows it: every
recorded provider stream gives the same text streamed and whole, and no bytes make it raise."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from egress.core.exchange import Api
from egress.wire.apis import answer_text
from tests.support.simulator import (
    assemble_anthropic,
    assemble_chat,
    assemble_responses,
    fixtures_dir,
    recorded_streams,
)

APIS = {
    "anthropic-messages": (Api.ANTHROPIC_MESSAGES, assemble_anthropic),
    "openai-chat": (Api.OPENAI_CHAT, assemble_chat),
    "openai-responses": (Api.OPENAI_RESPONSES, assemble_responses),
}
FIXTURES = [p.relative_to(fixtures_dir()).as_posix() for p in recorded_streams("*/*.sse")]


def _stream(name: str) -> bytes:
    data = (fixtures_dir() / name).read_bytes()
    return data if data.endswith(b"\n\n") else data.rstrip(b"\n") + b"\n\n"


@pytest.mark.parametrize("name", FIXTURES)
def test_a_recorded_stream_reads_the_same_streamed_and_whole(name):
    api, assemble = APIS[name.split("/", 1)[0]]
    data = _stream(name)
    streamed = answer_text(api, data, stream=True)
    whole = answer_text(api, json.dumps(assemble(data)).encode(), stream=False)
    assert streamed == whole


def test_the_text_is_the_answers_text_for_each_api():
    anthropic = _stream("anthropic-messages/basic_response.sse")
    assert answer_text(Api.ANTHROPIC_MESSAGES, anthropic, stream=True) == "".join(
        b.get("text", "") for b in assemble_anthropic(anthropic)["content"] if b["type"] == "text"
    )
    assert answer_text(Api.ANTHROPIC_MESSAGES, anthropic, stream=True)
    chat = _stream("openai-chat/parse_nothing.sse")
    assert answer_text(Api.OPENAI_CHAT, chat, stream=True) == assemble_chat(chat)["choices"][0]["message"]["content"]
    responses = _stream("openai-responses/codex_cli_responses_fixture.sse")
    texts = [
        part["text"]
        for item in assemble_responses(responses)["output"]
        for part in item.get("content") or []
        if part.get("type") == "output_text"
    ]
    assert texts and answer_text(Api.OPENAI_RESPONSES, responses, stream=True) == "".join(texts)


@pytest.mark.parametrize("body", [b"", b"not json", b"[]", b'{"error": {"message": "overloaded"}}', b"\xff\xfe"])
@pytest.mark.parametrize("api", list(Api))
def test_what_is_not_an_answer_has_no_text(api, body):
    assert answer_text(api, body, stream=False) == ""
    assert answer_text(api, body, stream=True) == ""


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=512), api=st.sampled_from(list(Api)), stream=st.booleans())
def test_no_bytes_make_it_raise(data, api, stream):
    assert isinstance(answer_text(api, data, stream), str)


@settings(max_examples=100, deadline=None)
@given(cut=st.integers(min_value=0, max_value=4000))
def test_a_stream_cut_anywhere_gives_a_prefix_of_the_text(cut):
    data = _stream("anthropic-messages/basic_response.sse")
    full = answer_text(Api.ANTHROPIC_MESSAGES, data, stream=True)
    assert full.startswith(answer_text(Api.ANTHROPIC_MESSAGES, data[:cut], stream=True))
