"""Gemini answered by a Chat Completions upstream: the request mapping, whole answers and error
bodies, and streams (every recorded Chat stream, read back with google-genai's own types)."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest
from google.genai import types

from egress.core.errors import EgressError, ErrorCode
from egress.core.exchange import Api
from egress.wire.apis import translator_for
from egress.wire.translate import Translator
from egress.wire.translate.gemini_request import json_schema
from tests.support.simulator import assemble_chat, split_random
from tests.support.translate import CHAT_FIXTURES, translate


def translator(stream: bool) -> Translator:
    found = translator_for(Api.GEMINI_STREAM if stream else Api.GEMINI_GENERATE, Api.OPENAI_CHAT)
    assert found is not None
    return found


def chat_of(doc: dict[str, Any], stream: bool = False, model: str | None = "local") -> dict[str, Any]:
    return json.loads(translator(stream).request_body(json.dumps(doc).encode(), model))


REQUEST = {
    "systemInstruction": {"parts": [{"text": "Be terse."}, {"text": "Use tools."}]},
    "contents": [
        {"role": "user", "parts": [{"text": "read a.txt"}, {"inlineData": {"mimeType": "image/png", "data": "iVBO"}}]},
        {
            "role": "model",
            "parts": [
                {"text": "thinking", "thought": True, "thoughtSignature": "c2ln"},
                {"text": "Reading."},
                {"functionCall": {"name": "read_file", "args": {"path": "a.txt"}}, "thoughtSignature": "c2ln"},
                {"functionCall": {"id": "c9", "name": "read_file", "args": {"path": "b.txt"}}},
            ],
        },
        {
            "role": "user",
            "parts": [
                {"functionResponse": {"id": "c9", "name": "read_file", "response": {"content": "B"}}},
                {"functionResponse": {"name": "read_file", "response": {"content": "A"}}},
                {"text": "thanks"},
            ],
        },
    ],
    "tools": [
        {
            "functionDeclarations": [
                {
                    "name": "read_file",
                    "description": "Read a file",
                    "parameters": {"type": "OBJECT", "properties": {"path": {"type": "STRING"}}, "required": ["path"]},
                }
            ]
        },
        {"googleSearch": {}},
    ],
    "toolConfig": {"functionCallingConfig": {"mode": "ANY"}},
    "generationConfig": {"temperature": 0.5, "maxOutputTokens": 300, "stopSequences": ["END"], "candidateCount": 1},
    "safetySettings": [{"category": "HARM_CATEGORY_HATE_SPEECH", "threshold": "BLOCK_NONE"}],
}


def test_request_mapping() -> None:
    chat = chat_of(REQUEST, stream=True)
    assert chat["model"] == "local" and chat["stream"] is True and chat["stream_options"] == {"include_usage": True}
    messages = chat["messages"]
    assert messages[0] == {"role": "system", "content": "Be terse.\n\nUse tools."}
    assert messages[1] == {
        "role": "user",
        "content": [
            {"type": "text", "text": "read a.txt"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBO"}},
        ],
    }
    assistant = messages[2]
    assert assistant["role"] == "assistant" and assistant["content"] == "Reading."  # the thought is dropped
    first, second = assistant["tool_calls"]
    assert json.loads(first["function"]["arguments"]) == {"path": "a.txt"} and first["id"].startswith("call_")
    assert second["id"] == "c9"
    # Responses pair with their calls by id, else by name in order; tool messages come first.
    assert messages[3] == {"role": "tool", "tool_call_id": "c9", "content": '{"content":"B"}'}
    assert messages[4] == {"role": "tool", "tool_call_id": first["id"], "content": '{"content":"A"}'}
    assert messages[5] == {"role": "user", "content": "thanks"}
    assert chat["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "read_file",
                "description": "Read a file",
                "parameters": {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]},
            },
        }
    ]
    assert chat["tool_choice"] == "required"
    assert (chat["temperature"], chat["max_tokens"], chat["stop"]) == (0.5, 300, ["END"])
    assert "thoughtSignature" not in json.dumps(chat) and "c2ln" not in json.dumps(chat)


def test_whole_requests_do_not_stream_and_json_output_maps() -> None:
    doc = {
        "contents": [{"parts": [{"text": "x"}]}],
        "generationConfig": {"responseMimeType": "application/json", "responseSchema": {"type": "OBJECT"}},
    }
    chat = chat_of(doc)
    assert "stream" not in chat
    assert chat["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "output", "schema": {"type": "object"}},
    }
    assert json_schema({"items": [{"type": "ARRAY"}], "enum": ["STRING"]}) == {
        "items": [{"type": "array"}],
        "enum": ["STRING"],
    }


@pytest.mark.parametrize(
    ("doc", "fragment"),
    [
        ({"contents": "x"}, "contents: must be a list"),
        ({"contents": [{"role": "system", "parts": []}]}, "role"),
        ({"contents": [{"parts": [{"fileData": {"fileUri": "gs://x"}}]}]}, "'fileData' part has no Chat"),
        ({"contents": [{"parts": [{"text": "a", "inlineData": {}}]}]}, "exactly one kind"),
        ({"contents": [{"parts": [{"functionResponse": {"name": "f", "response": {}}}]}]}, "answers no earlier call"),
        ({"contents": [{"parts": [{"inlineData": {"mimeType": "audio/wav", "data": "x"}}]}]}, "only inline images"),
        ({"contents": [], "generationConfig": {"candidateCount": 2}}, "one candidate"),
    ],
)
def test_what_chat_cannot_express_is_refused_precisely(doc: dict[str, Any], fragment: str) -> None:
    with pytest.raises(EgressError) as caught:
        chat_of(doc)
    assert caught.value.code is ErrorCode.INVALID_REQUEST and fragment in caught.value.message


def test_whole_answers_and_errors() -> None:
    t = translator(False)
    t.request_body(b'{"contents": [{"parts": [{"text": "x"}]}]}', "local")
    answer = {
        "model": "local",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": "Hi",
                    "tool_calls": [
                        {"id": "c1", "type": "function", "function": {"name": "f", "arguments": '{"a": 1}'}}
                    ],
                },
                "finish_reason": "tool_calls",
            }
        ],
        "usage": {"prompt_tokens": 5, "completion_tokens": 2, "prompt_tokens_details": {"cached_tokens": 1}},
    }
    status, body = t.response(200, json.dumps(answer).encode())
    parsed = types.GenerateContentResponse.model_validate(json.loads(body))
    assert status == 200 and parsed.text == "Hi"
    assert parsed.function_calls[0].name == "f" and parsed.function_calls[0].args == {"a": 1}
    assert parsed.candidates[0].finish_reason == types.FinishReason.STOP
    usage = parsed.usage_metadata
    assert (usage.prompt_token_count, usage.candidates_token_count, usage.cached_content_token_count) == (5, 2, 1)
    status, body = t.response(429, b'{"error": {"message": "slow down", "type": "rate_limit"}}')
    assert status == 429 and json.loads(body) == {
        "error": {"code": 429, "message": "slow down", "status": "RESOURCE_EXHAUSTED"}
    }
    status, body = t.response(200, b"<html>")
    assert status == 502 and json.loads(body)["error"]["status"] == "UNAVAILABLE"


def events_of(out: list[bytes]) -> list[dict[str, Any]]:
    docs = []
    for event in out:
        assert event.startswith(b"data: ") and event.endswith(b"\n\n"), event
        docs.append(json.loads(event[6:]))
    return docs


@pytest.mark.parametrize("fixture", CHAT_FIXTURES, ids=lambda p: p.name)
def test_recorded_chat_streams_read_as_gemini(fixture: Path) -> None:
    data = fixture.read_bytes()
    t = translator(True)
    t.request_body(b'{"contents": [{"parts": [{"text": "x"}]}]}', "local")
    docs = events_of(translate(t.stream(), split_random(data, random.Random(7))))
    chunks = [types.GenerateContentResponse.model_validate(d) for d in docs if "error" not in d]
    expected = assemble_chat(data)["choices"][0]["message"]
    text = "".join(part.text or "" for c in chunks for part in (c.candidates[0].content.parts or []) if part.text)
    assert text == (expected.get("content") or "") + (expected.get("refusal") or "")
    calls = [part.function_call for c in chunks for part in (c.candidates[0].content.parts or []) if part.function_call]
    assert [(c.name, c.args) for c in calls] == [
        (call["function"]["name"], json.loads(call["function"]["arguments"] or "{}"))
        for call in expected.get("tool_calls") or []
    ]
    finished = [c for c in chunks if c.candidates[0].finish_reason is not None]
    assert len(finished) == 1 and finished[0] is chunks[-1] and chunks[-1].usage_metadata is not None


def test_a_cut_stream_ends_with_gemini_s_error() -> None:
    t = translator(True)
    t.request_body(b'{"contents": [{"parts": [{"text": "x"}]}]}', "local")
    stream = t.stream()
    chunk = {"id": "c", "model": "local", "choices": [{"index": 0, "delta": {"content": "par"}}]}
    out = stream.feed(b"data: " + json.dumps(chunk).encode() + b"\n\n") + stream.finish()
    docs = events_of(out)
    assert docs[0]["candidates"][0]["content"]["parts"] == [{"text": "par"}]
    assert docs[-1]["error"]["status"] == "UNAVAILABLE" and docs[-1]["error"]["code"] == 502
