"""Autocomplete APIs (egress.wire.completions): legacy `/v1/completions` and Mistral FIM
`/v1/fim/completions`. The prompt and the suffix are the text; a prompt egress cannot read as
text (token ids) is refused precisely; the answers are checked, read and observed as Chat's."""

from __future__ import annotations

import json

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from egress.core.endpoint import WireApi
from egress.core.errors import EgressError, ErrorCode
from egress.core.exchange import Api, Usage
from egress.wire.answer_text import completions_text
from egress.wire.apis import APIS, ROUTES, answer_text, guess_api, upstream_api

AUTOCOMPLETE = (Api.OPENAI_COMPLETIONS, Api.FIM_COMPLETIONS)


def parse(api: Api, doc: object):
    return APIS[api].parse_request(api, json.dumps(doc).encode())


@pytest.mark.parametrize("api", AUTOCOMPLETE)
def test_prompt_and_suffix_are_both_text(api):
    parsed = parse(api, {"model": "codestral-latest", "prompt": "def f(key='AKIA", "suffix": "')\n", "stream": True})
    assert [(s.path, s.text) for s in parsed.prompt.segments] == [
        (("prompt",), "def f(key='AKIA"),
        (("suffix",), "')\n"),
    ]
    assert parsed.model == "codestral-latest" and parsed.stream


def test_a_list_of_prompts_is_one_segment_each():
    parsed = parse(Api.OPENAI_COMPLETIONS, {"model": "m", "prompt": ["one", "", "three"], "suffix": None})
    assert [(s.path, s.text) for s in parsed.prompt.segments] == [(("prompt", 0), "one"), (("prompt", 2), "three")]


def test_an_absent_prompt_is_no_text_not_an_error():
    # OpenAI's default prompt is <|endoftext|>; Mistral answers its own 422 for a missing prompt.
    for api in AUTOCOMPLETE:
        assert parse(api, {"model": "m"}).prompt.segments == ()


@pytest.mark.parametrize(
    "prompt",
    [[1, 2, 3], [[1, 2], [3]], ["text", 17], [[]], [0]],
)
def test_token_id_prompts_are_refused_with_the_fix(prompt):
    with pytest.raises(EgressError) as caught:
        parse(Api.OPENAI_COMPLETIONS, {"model": "m", "prompt": prompt})
    assert caught.value.code is ErrorCode.INVALID_REQUEST and caught.value.status == 400
    assert "token-id prompts cannot be inspected" in caught.value.message
    assert "string or a list of strings" in caught.value.message


@pytest.mark.parametrize(
    ("api", "doc", "fragment"),
    [
        (Api.OPENAI_COMPLETIONS, {"model": "m", "prompt": {"text": "x"}}, "prompt: must be a string or a list"),
        (Api.OPENAI_COMPLETIONS, {"model": "m", "prompt": 5}, "prompt: must be a string or a list"),
        (Api.OPENAI_COMPLETIONS, {"model": "m", "prompt": ["a", {"b": 1}]}, "prompt[1]: must be a string"),
        (Api.OPENAI_COMPLETIONS, {"model": "m", "prompt": ["a", True]}, "prompt[1]: must be a string"),
        (Api.FIM_COMPLETIONS, {"model": "m", "prompt": ["a"]}, "prompt: must be a string"),
        (Api.FIM_COMPLETIONS, {"model": "m", "prompt": "a", "suffix": ["b"]}, "suffix: must be a string"),
        (Api.OPENAI_COMPLETIONS, {"model": "m", "prompt": "a", "suffix": 3}, "suffix: must be a string"),
        (Api.FIM_COMPLETIONS, {"prompt": "a"}, "model: field required"),
        (Api.OPENAI_COMPLETIONS, {"model": "m", "prompt": "a", "stream": "yes"}, "stream: must be a boolean"),
    ],
)
def test_malformed_fields_get_precise_errors(api, doc, fragment):
    with pytest.raises(EgressError) as caught:
        parse(api, doc)
    assert caught.value.code is ErrorCode.INVALID_REQUEST
    assert fragment in caught.value.message


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=12),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from(["prompt", "suffix", "model", "stream", "text"]), children, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(doc=json_values, api=st.sampled_from(AUTOCOMPLETE))
def test_any_document_parses_or_is_refused_precisely(doc, api):
    try:
        parsed = parse(api, doc)
    except EgressError as err:
        assert err.code in (ErrorCode.INVALID_REQUEST, ErrorCode.INVALID_JSON)
        return
    # Every string the model reads as its prompt or suffix is a segment, nothing else is.
    texts = [s.text for s in parsed.prompt.segments]
    assert isinstance(doc, dict)
    expected = [p for p in (doc["prompt"] if isinstance(doc.get("prompt"), list) else [doc.get("prompt")]) if p]
    assert texts == [*expected, *([doc["suffix"]] if doc.get("suffix") else [])]


def test_routes_paths_and_who_speaks_them():
    assert ROUTES["/v1/completions"] is Api.OPENAI_COMPLETIONS
    assert ROUTES["/v1/fim/completions"] is Api.FIM_COMPLETIONS
    assert APIS[Api.OPENAI_COMPLETIONS].upstream_path == "/completions"
    assert APIS[Api.FIM_COMPLETIONS].upstream_path == "/fim/completions"
    # Legacy completions: OpenAI and the OpenAI-compatible servers, never translated to Chat.
    assert upstream_api(WireApi.OPENAI, Api.OPENAI_COMPLETIONS) is Api.OPENAI_COMPLETIONS
    assert upstream_api(WireApi.OPENAI_CHAT, Api.OPENAI_COMPLETIONS) is Api.OPENAI_COMPLETIONS
    assert upstream_api(WireApi.ANTHROPIC, Api.OPENAI_COMPLETIONS) is None
    assert upstream_api(WireApi.MISTRAL, Api.OPENAI_COMPLETIONS) is None
    # FIM: Mistral only; refused elsewhere rather than answered from an invented template.
    assert upstream_api(WireApi.MISTRAL, Api.FIM_COMPLETIONS) is Api.FIM_COMPLETIONS
    for kind in (WireApi.OPENAI, WireApi.OPENAI_CHAT, WireApi.ANTHROPIC):
        assert upstream_api(kind, Api.FIM_COMPLETIONS) is None
    # Mistral endpoints answer Chat, and through it Messages and Responses by translation.
    assert upstream_api(WireApi.MISTRAL, Api.OPENAI_CHAT) is Api.OPENAI_CHAT
    assert upstream_api(WireApi.MISTRAL, Api.ANTHROPIC_MESSAGES) is Api.OPENAI_CHAT
    assert Api.OPENAI_COMPLETIONS.family is Api.FIM_COMPLETIONS.family is Api.OPENAI_CHAT.family


def test_guess_api_reads_a_prompt_body_as_completions():
    assert guess_api(b'{"model":"m","prompt":"x","suffix":"y"}') is Api.OPENAI_COMPLETIONS
    assert guess_api(b'{"model":"m","messages":[],"prompt":"x"}') is Api.OPENAI_CHAT


LEGACY = {
    "id": "cmpl-1",
    "object": "text_completion",
    "created": 1,
    "model": "gpt-3.5-turbo-instruct",
    "choices": [
        {"text": "return 1", "index": 0, "logprobs": None, "finish_reason": "stop"},
        {"text": "return 2", "index": 1, "logprobs": None, "finish_reason": "length"},
    ],
    "usage": {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10},
}
FIM = {
    "id": "fim-1",
    "object": "chat.completion",
    "created": 1,
    "model": "codestral-latest",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "x + y"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 11, "completion_tokens": 4, "total_tokens": 15},
}


@pytest.mark.parametrize(
    ("api", "doc", "text"), [(Api.OPENAI_COMPLETIONS, LEGACY, "return 1"), (Api.FIM_COMPLETIONS, FIM, "x + y")]
)
def test_whole_answers_are_checked_and_read(api, doc, text):
    spec = APIS[api]
    body = orjson.dumps(doc)
    spec.check_body(body)
    usage = Usage()
    spec.usage_from_body(body, usage)
    assert (usage.input_tokens, usage.output_tokens) == (
        doc["usage"]["prompt_tokens"],
        doc["usage"]["completion_tokens"],
    )
    assert answer_text(api, body, False) == text
    with pytest.raises(EgressError) as caught:
        spec.check_body(b'{"object":"text_completion"}')
    assert caught.value.code is ErrorCode.UPSTREAM_PROTOCOL_ERROR


def legacy_chunk(text: str, finish: str | None = None, index: int = 0) -> bytes:
    doc = {"id": "cmpl-1", "object": "text_completion", "created": 1, "model": "m"}
    doc["choices"] = [{"text": text, "index": index, "logprobs": None, "finish_reason": finish}]
    return b"data: " + orjson.dumps(doc) + b"\n\n"


def test_a_legacy_stream_is_observed_to_its_end_and_its_text_read():
    wire = [legacy_chunk("ret"), legacy_chunk("urn 1"), legacy_chunk("", "stop"), b"data: [DONE]\n\n"]
    usage = Usage()
    observer = APIS[Api.OPENAI_COMPLETIONS].stream_observer(usage)
    for i, event in enumerate(wire):
        observer.observe(event)
        assert observer.complete is (i >= 2)
    assert completions_text(b"".join(wire), True) == "return 1"


def test_a_legacy_stream_cut_before_its_finish_is_truncated():
    observer = APIS[Api.OPENAI_COMPLETIONS].stream_observer(Usage())
    observer.observe(legacy_chunk("ret"))
    with pytest.raises(EgressError) as caught:
        observer.observe(b"data: [DONE]\n\n")
    assert caught.value.code is ErrorCode.UPSTREAM_TRUNCATED
    # egress's own error, in the stream: an OpenAI error object the SDK raises on.
    event = observer.error_event(caught.value)
    assert orjson.loads(event.removeprefix(b"data: "))["error"]["code"] == "upstream_truncated"


def test_native_errors_are_openai_shaped():
    err = EgressError(ErrorCode.INVALID_REQUEST, "prompt: must be a string")
    for api in AUTOCOMPLETE:
        status, headers, body = APIS[api].render_error(err, "req_1")
        assert status == 400 and (b"content-type", b"application/json") in headers
        assert orjson.loads(body)["error"] == {
            "message": "egress: prompt: must be a string",
            "type": "invalid_request_error",
            "param": None,
            "code": "invalid_request",
        }
