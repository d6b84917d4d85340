"""Non-streamed answers and errors: a Chat answer as an Anthropic message or a Responses object,
a Chat server's error body as the client's native error body, and garbage never escaping as an
exception."""

from __future__ import annotations

import json

import pytest
from anthropic.types import ErrorResponse, Message
from hypothesis import given, settings
from hypothesis import strategies as st
from openai.types.responses import Response

from tests.support.simulator import assemble_chat
from tests.support.translate import CHAT_FIXTURES, chat_facts, messages_translator, responses_translator

ANTHROPIC_STOP = {"stop": "end_turn", "tool_calls": "tool_use", "length": "max_tokens"}


@pytest.mark.parametrize("path", CHAT_FIXTURES, ids=[p.name for p in CHAT_FIXTURES])
def test_chat_answer_as_an_anthropic_message(path):
    data = path.read_bytes()
    facts = chat_facts(data)
    status, body = messages_translator().response(200, json.dumps(assemble_chat(data)).encode())
    message = Message.model_validate_json(body)
    assert status == 200
    assert "".join(b.text for b in message.content if b.type == "text") == facts.text
    calls = [(b.id, b.name, b.input) for b in message.content if b.type == "tool_use"]
    assert calls == [(i, n, json.loads(a)) for i, n, a in facts.calls]
    assert message.stop_reason == ANTHROPIC_STOP[facts.finish_reason]
    assert (message.usage.input_tokens, message.usage.output_tokens) == (facts.prompt_tokens, facts.completion_tokens)


@pytest.mark.parametrize("path", CHAT_FIXTURES, ids=[p.name for p in CHAT_FIXTURES])
def test_chat_answer_as_a_responses_object(path):
    data = path.read_bytes()
    facts = chat_facts(data)
    status, body = responses_translator().response(200, json.dumps(assemble_chat(data)).encode())
    response = Response.model_validate_json(body)
    assert status == 200
    assert "".join(p.text for i in response.output if i.type == "message" for p in i.content) == facts.text
    assert [(i.call_id, i.name, i.arguments) for i in response.output if i.type == "function_call"] == facts.calls
    assert response.status == ("incomplete" if facts.finish_reason == "length" else "completed")
    assert response.usage is not None and response.usage.total_tokens == facts.prompt_tokens + facts.completion_tokens


def test_a_custom_tool_call_comes_back_as_a_custom_tool_call_item():
    answer = {
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "call_1",
                            "type": "function",
                            "function": {"name": "apply_patch", "arguments": '{"input": "*** Begin Patch"}'},
                        }
                    ],
                },
                "finish_reason": "tool_calls",
            }
        ],
        "usage": {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3},
    }
    translator = responses_translator([{"type": "custom", "name": "apply_patch"}])
    response = Response.model_validate_json(translator.response_body(200, json.dumps(answer).encode()))
    item = response.output[0]
    assert item.type == "custom_tool_call" and item.input == "*** Begin Patch" and item.call_id == "call_1"


def test_invalid_tool_arguments_become_an_empty_input_for_anthropic():
    answer = {
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "tool_calls": [{"id": "c", "function": {"name": "Read", "arguments": '{"path": '}}],
                },
                "finish_reason": "length",
            }
        ]
    }
    message = Message.model_validate_json(messages_translator().response_body(200, json.dumps(answer).encode()))
    assert message.content[0].input == {} and message.stop_reason == "max_tokens"


# --- errors --------------------------------------------------------------------------------------

ERROR_BODIES = [
    # OpenAI, llama.cpp and Ollama: the OpenAI envelope.
    (
        400,
        b'{"error":{"message":"bad temperature","type":"invalid_request_error","param":null,"code":null}}',
        "bad temperature",
    ),
    (404, b'{"error":{"code":404,"message":"model not found","type":"not_found_error"}}', "model not found"),
    # older vLLM: the fields at the top level.
    (400, b'{"object":"error","message":"bad request","type":"BadRequestError","code":400}', "bad request"),
    (429, b'{"error":"slow down"}', "slow down"),
    (500, b"Internal Server Error", "Internal Server Error"),
    (503, b"", "upstream answered HTTP 503 with no body"),
]


@pytest.mark.parametrize(("status", "raw", "message"), ERROR_BODIES)
def test_chat_errors_as_anthropic_errors(status, raw, message):
    out_status, body = messages_translator().response(status, raw)
    error = ErrorResponse.model_validate_json(body)
    assert out_status == status and error.error.message == message
    expected = {400: "invalid_request_error", 404: "not_found_error", 429: "rate_limit_error", 500: "api_error"}
    assert error.error.type == expected.get(status, "overloaded_error")


@pytest.mark.parametrize(("status", "raw", "message"), ERROR_BODIES)
def test_chat_errors_as_openai_errors(status, raw, message):
    out_status, body = responses_translator().response(status, raw)
    doc = json.loads(body)
    assert out_status == status and set(doc) == {"error"}
    assert set(doc["error"]) == {"message", "type", "param", "code"}
    assert doc["error"]["message"] == message and isinstance(doc["error"]["code"], str)


def test_a_context_overflow_is_said_the_way_each_client_recognises():
    raw = b'{"error":{"code":400,"message":"the request exceeds the available context size, try increasing it","type":"exceed_context_size_error"}}'
    anthropic_error = ErrorResponse.model_validate_json(messages_translator().response_body(400, raw))
    assert anthropic_error.error.message.startswith("prompt is too long")
    assert json.loads(responses_translator().response_body(400, raw))["error"]["code"] == "context_length_exceeded"


@pytest.mark.parametrize(
    "raw", [b"", b"<html>502</html>", b"[]", b'{"choices": 3}', b'{"choices": []}', b'{"choices":[{"index":0}]}']
)
def test_garbage_in_a_2xx_is_a_native_502_error(raw):
    status, body = messages_translator().response(200, raw)
    assert status == 502 and ErrorResponse.model_validate_json(body).error.type == "api_error"
    status, body = responses_translator().response(200, raw)
    assert status == 502 and json.loads(body)["error"]["code"] == "upstream_protocol_error"


@settings(max_examples=200, deadline=None)
@given(
    status=st.sampled_from([200, 201, 400, 401, 404, 429, 500, 502, 503]),
    raw=st.binary(max_size=200)
    | st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=10),
        lambda inner: (
            st.lists(inner, max_size=3)
            | st.dictionaries(
                st.sampled_from(
                    ["choices", "message", "error", "usage", "tool_calls", "content", "index", "function", "x"]
                ),
                inner,
                max_size=4,
            )
        ),
    ).map(lambda v: json.dumps(v).encode()),
)
def test_no_upstream_body_makes_a_translator_raise(status, raw):
    for translator in (messages_translator(), responses_translator()):
        out_status, body = translator.response(status, raw)
        assert isinstance(json.loads(body), dict)
        assert out_status == status or (out_status == 502 and 200 <= status < 300)
