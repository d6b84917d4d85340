"""Request parsing: every text-bearing location is found, opaque ones never are, and no input
makes a parser fail with anything but a precise EgressError."""

from __future__ import annotations

import json

import orjson
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from egress.core.errors import EgressError, ErrorCode
from egress.core.exchange import Api, SegmentKind
from egress.wire.apis import APIS


def parse(api: Api, doc) -> tuple:
    return APIS[api].parse_request(api, orjson.dumps(doc))


def texts(parsed) -> dict[str, SegmentKind]:
    return {s.text: s.kind for s in parsed.prompt.segments}


def resolve(doc, path):
    for part in path:
        doc = doc[part]
    return doc


CLAUDE_CODE_REQUEST = {
    "model": "claude-sonnet-4-5",
    "max_tokens": 32000,
    "stream": True,
    "system": [
        {"type": "text", "text": "x-anthropic-billing-header: cc_version=2.1.332.abc;"},
        {"type": "text", "text": "SYSTEM-PROMPT", "cache_control": {"type": "ephemeral"}},
    ],
    "tools": [{"name": "Read", "description": "TOOL-DESCRIPTION", "input_schema": {"type": "object"}}],
    "messages": [
        {"role": "user", "content": [{"type": "text", "text": "USER-TEXT"}]},
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "THINKING-TEXT", "signature": "SIGNATURE-BLOB"},
                {"type": "redacted_thinking", "data": "REDACTED-BLOB"},
                {
                    "type": "tool_use",
                    "id": "toolu_1",
                    "name": "Bash",
                    "input": {"command": "TOOL-INPUT-CMD", "nested": ["TOOL-INPUT-NESTED"]},
                },
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "TOOL-RESULT-STRING"},
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_2",
                    "content": [
                        {"type": "text", "text": "TOOL-RESULT-BLOCK"},
                        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "IMAGE-B64"}},
                    ],
                },
                {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "DOC-TEXT"}},
                {"type": "future_block", "payload": {"note": "UNKNOWN-BLOCK-TEXT"}},
            ],
        },
        {"role": "assistant", "content": "ASSISTANT-STRING"},
        {"role": "system", "content": "MID-CONVERSATION-SYSTEM"},
    ],
    "metadata": {"user_id": "user_abc"},
    "context_management": {"edits": []},
}


def test_anthropic_finds_every_text_and_no_opaque_value():
    parsed = parse(Api.ANTHROPIC_MESSAGES, CLAUDE_CODE_REQUEST)
    found = texts(parsed)
    for expected in [
        "SYSTEM-PROMPT",
        "USER-TEXT",
        "TOOL-INPUT-CMD",
        "TOOL-INPUT-NESTED",
        "TOOL-RESULT-STRING",
        "TOOL-RESULT-BLOCK",
        "DOC-TEXT",
        "UNKNOWN-BLOCK-TEXT",
        "ASSISTANT-STRING",
        "MID-CONVERSATION-SYSTEM",
    ]:
        assert expected in found, expected
    for opaque in ["THINKING-TEXT", "SIGNATURE-BLOB", "REDACTED-BLOB", "IMAGE-B64", "toolu_1"]:
        assert opaque not in found, opaque
    assert found["TOOL-RESULT-STRING"] is SegmentKind.TOOL_RESULT
    assert found["TOOL-INPUT-CMD"] is SegmentKind.TOOL_INPUT
    assert parsed.model == "claude-sonnet-4-5" and parsed.stream is True
    for segment in parsed.prompt.segments:
        assert resolve(CLAUDE_CODE_REQUEST, segment.path) == segment.text


CODEX_REQUEST = {
    "model": "gpt-5-codex",
    "instructions": "BASE-INSTRUCTIONS",
    "input": [
        {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "DEVELOPER-TEXT"}]},
        {
            "type": "message",
            "role": "user",
            "content": [
                {"type": "input_text", "text": "# AGENTS.md instructions AGENTS-TEXT"},
                {"type": "input_image", "image_url": "data:image/png;base64,IMAGE-B64"},
            ],
        },
        {
            "type": "reasoning",
            "id": "rs_1",
            "summary": [{"type": "summary_text", "text": "SUMMARY-TEXT"}],
            "encrypted_content": "ENCRYPTED-BLOB",
        },
        {"type": "function_call", "call_id": "call_1", "name": "exec_command", "arguments": '{"cmd":"FC-ARGS"}'},
        {"type": "function_call_output", "call_id": "call_1", "output": "FC-OUTPUT"},
        {"type": "custom_tool_call", "call_id": "call_2", "name": "apply_patch", "input": "*** Begin Patch PATCH"},
        {"type": "custom_tool_call_output", "call_id": "call_2", "output": [{"type": "input_text", "text": "CTC-OUT"}]},
        {"type": "compaction", "encrypted_content": "COMPACTION-BLOB"},
        {"type": "mcp_call", "server_label": "x", "arguments": "MCP-ARGS"},
    ],
    "stream": True,
    "store": False,
    "include": ["reasoning.encrypted_content"],
    "prompt_cache_key": "conv-1",
}


def test_responses_finds_every_text_and_no_opaque_value():
    parsed = parse(Api.OPENAI_RESPONSES, CODEX_REQUEST)
    found = texts(parsed)
    for expected in [
        "BASE-INSTRUCTIONS",
        "DEVELOPER-TEXT",
        "# AGENTS.md instructions AGENTS-TEXT",
        "SUMMARY-TEXT",
        '{"cmd":"FC-ARGS"}',
        "FC-OUTPUT",
        "*** Begin Patch PATCH",
        "CTC-OUT",
        "MCP-ARGS",
    ]:
        assert expected in found, expected
    for opaque in ["ENCRYPTED-BLOB", "COMPACTION-BLOB", "data:image/png;base64,IMAGE-B64", "call_1"]:
        assert opaque not in found, opaque
    for segment in parsed.prompt.segments:
        assert resolve(CODEX_REQUEST, segment.path) == segment.text


CHAT_REQUEST = {
    "model": "gpt-4o",
    "messages": [
        {"role": "system", "content": "SYS"},
        {
            "role": "user",
            "content": [{"type": "text", "text": "PART"}, {"type": "image_url", "image_url": {"url": "data:IMG"}}],
        },
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": '{"a":"ARGS"}'}}],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "TOOL-OUT"},
    ],
}


def test_chat_finds_every_text():
    parsed = parse(Api.OPENAI_CHAT, CHAT_REQUEST)
    found = texts(parsed)
    assert found == {
        "SYS": SegmentKind.SYSTEM,
        "PART": SegmentKind.MESSAGE,
        '{"a":"ARGS"}': SegmentKind.TOOL_INPUT,
        "TOOL-OUT": SegmentKind.TOOL_RESULT,
    }


@pytest.mark.parametrize(
    ("body", "code", "fragment"),
    [
        (b"", ErrorCode.INVALID_REQUEST, "empty"),
        (b"{not json", ErrorCode.INVALID_JSON, "not valid JSON"),
        (b'{"model": "x", "messages": []', ErrorCode.INVALID_JSON, "offset"),
        (b'{"model": "\xff\xfe"}', ErrorCode.INVALID_UTF8, "offset 11"),
        (b"[1, 2]", ErrorCode.INVALID_REQUEST, "JSON object"),
        (b'{"messages": []}', ErrorCode.INVALID_REQUEST, "model: field required"),
        (b'{"model": 5}', ErrorCode.INVALID_REQUEST, "model: must be a string"),
        (b'{"model": "x", "stream": "yes"}', ErrorCode.INVALID_REQUEST, "stream: must be a boolean"),
    ],
)
@pytest.mark.parametrize("api", list(Api))
def test_malformed_bodies_get_precise_errors(api, body, code, fragment):
    if APIS[api].from_route is not None and fragment.startswith(("model:", "stream:")):
        # The model and streaming are the path's (Gemini): the body's own are not read.
        assert APIS[api].parse_request(api, body).model == ""
        return
    with pytest.raises(EgressError) as info:
        APIS[api].parse_request(api, body)
    assert info.value.code is code
    assert fragment in info.value.message


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    "type",
                    "text",
                    "content",
                    "input",
                    "output",
                    "role",
                    "messages",
                    "system",
                    "model",
                    "arguments",
                    "instructions",
                    "tool_calls",
                    "function",
                    "summary",
                    "source",
                    "data",
                    "stream",
                    "x",
                ]
            ),
            children,
            max_size=5,
        )
    ),
    max_leaves=30,
)


@settings(max_examples=400, deadline=None)
@given(doc=json_values, api=st.sampled_from(list(Api)))
# Found by this test in session 4: a list where a tag belongs was used as a dictionary key.
@example(doc={"input": [{"text": None, "role": []}]}, api=Api.OPENAI_RESPONSES)
@example(doc={"input": [{"type": []}]}, api=Api.OPENAI_RESPONSES)
@example(doc={"messages": [{"role": [], "content": "x"}]}, api=Api.OPENAI_CHAT)
@example(doc={"messages": [{"role": "user", "content": [{"type": {}}]}]}, api=Api.ANTHROPIC_MESSAGES)
def test_any_json_document_parses_or_is_refused_precisely(doc, api):
    body = json.dumps(doc).encode()
    try:
        parsed = APIS[api].parse_request(api, body)
    except EgressError as err:
        assert err.code in (ErrorCode.INVALID_REQUEST, ErrorCode.INVALID_JSON)
        return
    for segment in parsed.prompt.segments:
        assert isinstance(segment.text, str) and segment.text
        assert resolve(doc, segment.path) == segment.text


@settings(max_examples=300, deadline=None)
@given(body=st.binary(max_size=200))
def test_any_bytes_parse_or_are_refused_precisely(body):
    try:
        APIS[Api.ANTHROPIC_MESSAGES].parse_request(Api.ANTHROPIC_MESSAGES, body)
    except EgressError as err:
        assert err.code in (ErrorCode.INVALID_REQUEST, ErrorCode.INVALID_JSON, ErrorCode.INVALID_UTF8)


@pytest.mark.parametrize(
    ("api", "doc"),
    [
        (Api.OPENAI_RESPONSES, {"input": [{"type": ["message"], "content": "deploy with TEXT"}]}),
        (Api.OPENAI_RESPONSES, {"input": [{"role": ["system"], "content": "deploy with TEXT"}]}),
        (Api.OPENAI_CHAT, {"messages": [{"role": {"x": 1}, "content": "deploy with TEXT"}]}),
        (Api.ANTHROPIC_MESSAGES, {"messages": [{"role": "user", "content": [{"type": [], "text": "deploy with TEXT"}]}]}),
    ],
)
def test_a_malformed_tag_still_gets_its_text_inspected(api, doc):
    """An item whose type or role is not a string is no known kind: its text is inspected all the
    same (it may still reach the provider, which decides whether it is valid)."""
    parsed = APIS[api].parse_request(api, json.dumps({"model": "m", **doc}).encode())
    assert any("deploy with TEXT" in segment.text for segment in parsed.prompt.segments)
