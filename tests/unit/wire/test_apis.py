"""The one table of wire APIs: every API has its entry, and what routing, translation, stateful
ids and signed text read from it says what the gateway has always done."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from egress.core.endpoint import WireApi
from egress.core.errors import EgressError, ErrorCode
from egress.core.exchange import Api, Family, Usage
from egress.wire.apis import APIS, ROUTES, answer_text, error_renderer, speaks, translator_for, upstream_api


def test_every_api_has_one_entry_and_one_route() -> None:
    assert set(APIS) == set(Api)
    assert all(spec.api is api for api, spec in APIS.items())
    # Exact routes; those with a `{model}` segment (Gemini) are matched by `route` instead.
    paths = [path for spec in APIS.values() for path in (spec.route, *spec.aliases)]
    assert sorted(ROUTES) == sorted(path for path in paths if "{model}" not in path)
    assert ROUTES["/v1/messages"] is Api.ANTHROPIC_MESSAGES
    assert ROUTES["/v1/responses/compact"] is Api.OPENAI_RESPONSES_COMPACT


def test_upstream_paths_follow_each_family_s_base_url() -> None:
    # Anthropic base URLs are the host; OpenAI ones end in /v1.
    assert APIS[Api.ANTHROPIC_MESSAGES].upstream_path == "/v1/messages"
    assert APIS[Api.ANTHROPIC_COUNT_TOKENS].upstream_path == "/v1/messages/count_tokens"
    assert APIS[Api.OPENAI_CHAT].upstream_path == "/chat/completions"
    assert APIS[Api.OPENAI_RESPONSES].upstream_path == "/responses"
    assert APIS[Api.OPENAI_RESPONSES_COMPACT].upstream_path == "/responses/compact"


@pytest.mark.parametrize(
    ("endpoint", "api", "upstream"),
    [
        (WireApi.ANTHROPIC, Api.ANTHROPIC_MESSAGES, Api.ANTHROPIC_MESSAGES),
        (WireApi.ANTHROPIC, Api.ANTHROPIC_COUNT_TOKENS, Api.ANTHROPIC_COUNT_TOKENS),
        (WireApi.ANTHROPIC, Api.OPENAI_CHAT, None),
        (WireApi.OPENAI, Api.OPENAI_RESPONSES, Api.OPENAI_RESPONSES),
        (WireApi.OPENAI, Api.OPENAI_RESPONSES_COMPACT, Api.OPENAI_RESPONSES_COMPACT),
        (WireApi.OPENAI, Api.ANTHROPIC_MESSAGES, Api.OPENAI_CHAT),  # it speaks Chat too
        (WireApi.OPENAI_CHAT, Api.OPENAI_CHAT, Api.OPENAI_CHAT),
        (WireApi.OPENAI_CHAT, Api.ANTHROPIC_MESSAGES, Api.OPENAI_CHAT),
        (WireApi.OPENAI_CHAT, Api.OPENAI_RESPONSES, Api.OPENAI_CHAT),
        (WireApi.OPENAI_CHAT, Api.ANTHROPIC_COUNT_TOKENS, None),  # no Chat equivalent
        (WireApi.OPENAI_CHAT, Api.OPENAI_RESPONSES_COMPACT, None),
    ],
)
def test_which_endpoint_answers_which_api_and_in_which(endpoint: WireApi, api: Api, upstream: Api | None) -> None:
    assert upstream_api(endpoint, api) is upstream
    assert speaks(endpoint, api) is (upstream is api)
    translator = translator_for(api, upstream) if upstream is not None else None
    assert (translator is not None) is (upstream is not None and upstream is not api)


def test_a_translator_belongs_to_one_exchange() -> None:
    first = translator_for(Api.ANTHROPIC_MESSAGES, Api.OPENAI_CHAT)
    assert first is not None and first is not translator_for(Api.ANTHROPIC_MESSAGES, Api.OPENAI_CHAT)
    assert translator_for(Api.OPENAI_RESPONSES, Api.ANTHROPIC_MESSAGES) is None


def test_stateful_ids_belong_to_the_responses_api_only() -> None:
    assert [api for api, spec in APIS.items() if spec.stateful is not None] == [Api.OPENAI_RESPONSES]
    ids = APIS[Api.OPENAI_RESPONSES].stateful
    assert ids is not None
    assert ids.kept({}) and ids.kept({"store": True}) and not ids.kept({"store": False})
    assert ids.continues({"previous_response_id": "resp_1"}) == "resp_1"
    assert ids.continues({"previous_response_id": 7}) is None and ids.continues({}) is None
    assert ids.answer_id(b'{"id": "resp_2", "output": []}') == "resp_2"
    assert ids.answer_id(b"not json") is None and ids.answer_id(b"[1]") is None


@given(st.binary(max_size=64))
def test_answer_ids_and_usage_never_raise_on_what_an_upstream_sends(raw: bytes) -> None:
    ids = APIS[Api.OPENAI_RESPONSES].stateful
    assert ids is not None
    ids.answer_id(raw)
    for api, spec in APIS.items():
        spec.usage_from_body(raw, Usage())
        assert isinstance(answer_text(api, raw, stream=True), str)


def test_signed_thinking_text_is_returned_by_the_parser_and_never_inspected() -> None:
    doc = {
        "model": "m",
        "messages": [
            {"role": "user", "content": "hi"},
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "the key is AKIAIOSFODNN7EXAMPLE", "signature": "sig"},
                    {"type": "text", "text": "ok"},
                ],
            },
        ],
    }
    parsed = APIS[Api.ANTHROPIC_MESSAGES].parse_request(Api.ANTHROPIC_MESSAGES, json.dumps(doc).encode())
    assert parsed.prompt.signed == ("the key is AKIAIOSFODNN7EXAMPLE",)
    assert all("AKIA" not in s.text for s in parsed.prompt.segments)
    chat = {"model": "m", "messages": [{"role": "user", "content": [{"type": "thinking", "thinking": "x"}]}]}
    assert APIS[Api.OPENAI_CHAT].parse_request(Api.OPENAI_CHAT, json.dumps(chat).encode()).prompt.signed == ()


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, "invalid_request_error"),
        (401, "authentication_error"),
        (402, "billing_error"),
        (403, "permission_error"),
        (404, "not_found_error"),
        (413, "request_too_large"),
        (429, "rate_limit_error"),
        (500, "api_error"),
        (503, "overloaded_error"),
        (504, "timeout_error"),
        (529, "overloaded_error"),
    ],
)
def test_one_anthropic_error_type_table_for_egress_and_for_translation(status: int, kind: str) -> None:
    translator = translator_for(Api.ANTHROPIC_MESSAGES, Api.OPENAI_CHAT)
    assert translator is not None
    upstream_error = json.dumps({"error": {"message": "no", "type": "x", "code": None}}).encode()
    assert json.loads(translator.response_body(status, upstream_error))["error"]["type"] == kind


def test_each_family_has_its_native_error_shape() -> None:
    err = EgressError(ErrorCode.NOT_FOUND, "no such endpoint")
    _, _, anthropic = error_renderer(Family.ANTHROPIC)(err, "egr_1")
    _, _, openai = error_renderer(Family.OPENAI)(err, "egr_1")
    assert json.loads(anthropic)["error"]["type"] == "not_found_error"
    assert json.loads(openai)["error"]["code"] == "not_found"
