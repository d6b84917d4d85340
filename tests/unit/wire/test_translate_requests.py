"""Requests: Claude Code's Messages and Codex's Responses requests as Chat Completions requests.

Every translated request is checked against the openai SDK's Chat request types, and the facts
the model needs (every text, every tool call and its id, every tool result, in order) survive."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openai.types.chat import ChatCompletionMessageParam, ChatCompletionToolParam
from pydantic import TypeAdapter

from egress.core.errors import EgressError, ErrorCode
from egress.core.exchange import Api
from egress.wire.apis import APIS, translator_for
from egress.wire.translate.chat_request import fold_system
from tests.support.translate import messages_translator

MESSAGES: TypeAdapter[Any] = TypeAdapter(list[ChatCompletionMessageParam])
TOOLS: TypeAdapter[Any] = TypeAdapter(list[ChatCompletionToolParam])
CHAT_KEYS = {
    "model",
    "messages",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "max_tokens",
    "temperature",
    "top_p",
    "top_k",
    "stop",
    "stream",
    "stream_options",
    "response_format",
}


def chat(api: Api, doc: dict[str, Any], model: str | None = "local-model") -> dict[str, Any]:
    translator = translator_for(api, Api.OPENAI_CHAT)
    assert translator is not None and APIS[Api.OPENAI_CHAT].upstream_path == "/chat/completions"
    out = json.loads(translator.request_body(json.dumps(doc).encode(), model))
    assert set(out) <= CHAT_KEYS, set(out) - CHAT_KEYS
    _force(MESSAGES.validate_python(out["messages"]))  # the SDK's types validate lazily: consume
    _force(TOOLS.validate_python(out.get("tools", [])))
    return out


def _force(value: Any) -> None:
    if isinstance(value, dict):
        for child in value.values():
            _force(child)
    elif isinstance(value, (list, tuple)) or type(value).__name__ == "ValidatorIterator":
        for child in value:
            _force(child)


def refused(api: Api, doc: dict[str, Any]) -> str:
    with pytest.raises(EgressError) as info:
        chat(api, doc)
    assert info.value.code is ErrorCode.INVALID_REQUEST and info.value.status == 400
    return info.value.message


# --- Claude Code (Anthropic Messages) -------------------------------------------------------------

CLAUDE_CODE = {
    "model": "claude-sonnet-4-5",
    "max_tokens": 32000,
    "stream": True,
    "temperature": 1,
    "system": [
        {"type": "text", "text": "x-anthropic-billing-header: cc_version=2.1.257.a1b;"},
        {"type": "text", "text": "You are Claude Code.", "cache_control": {"type": "ephemeral"}},
    ],
    "tools": [
        {"name": "Read", "description": "Read a file", "input_schema": {"type": "object", "properties": {}}},
        {
            "name": "Bash",
            "description": "Run",
            "input_schema": {"type": "object"},
            "cache_control": {"type": "ephemeral"},
        },
        {"type": "web_search_20250305", "name": "web_search", "max_uses": 5},
    ],
    "tool_choice": {"type": "auto"},
    "messages": [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "<system-reminder>CLAUDE.md says hi</system-reminder>"},
                {"type": "text", "text": "Fix the login bug", "cache_control": {"type": "ephemeral"}},
            ],
        },
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "Let me read it.", "signature": "SIG"},
                {"type": "text", "text": "Reading both files."},
                {"type": "tool_use", "id": "toolu_01A", "name": "Read", "input": {"file_path": "/repo/auth.py"}},
                {"type": "tool_use", "id": "toolu_01B", "name": "Bash", "input": {"command": "git status"}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_01A", "content": "     1→import os\n"},
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_01B",
                    "is_error": True,
                    "content": [{"type": "text", "text": "fatal: not a git repository"}],
                },
                {"type": "text", "text": "<system-reminder>todo list</system-reminder>"},
            ],
        },
        {
            "role": "assistant",
            "content": [{"type": "redacted_thinking", "data": "BLOB"}, {"type": "text", "text": "Done."}],
        },
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Look at this"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
            ],
        },
    ],
    "thinking": {"type": "enabled", "budget_tokens": 1024},
    "metadata": {"user_id": "user_abc_account__session_1"},
    "context_management": {"edits": []},
}


def test_claude_code_request_becomes_a_chat_request():
    out = chat(Api.ANTHROPIC_MESSAGES, CLAUDE_CODE)
    assert out["model"] == "local-model"
    assert out["stream"] is True and out["stream_options"] == {"include_usage": True}
    assert out["max_tokens"] == 32000 and out["temperature"] == 1
    assert [m["role"] for m in out["messages"]] == [
        "system",
        "user",
        "assistant",
        "tool",
        "tool",
        "user",
        "assistant",
        "user",
    ]
    system, first, assistant, tool_a, tool_b, reminder, done, image = out["messages"]
    assert system["content"] == "x-anthropic-billing-header: cc_version=2.1.257.a1b;\n\nYou are Claude Code."
    assert first["content"] == "<system-reminder>CLAUDE.md says hi</system-reminder>\n\nFix the login bug"
    assert assistant["content"] == "Reading both files."
    assert assistant["tool_calls"] == [
        {
            "id": "toolu_01A",
            "type": "function",
            "function": {"name": "Read", "arguments": '{"file_path":"/repo/auth.py"}'},
        },
        {"id": "toolu_01B", "type": "function", "function": {"name": "Bash", "arguments": '{"command":"git status"}'}},
    ]
    assert tool_a == {"role": "tool", "tool_call_id": "toolu_01A", "content": "     1→import os\n"}
    assert tool_b == {
        "role": "tool",
        "tool_call_id": "toolu_01B",
        "content": "[tool error]\nfatal: not a git repository",
    }
    assert reminder["content"] == "<system-reminder>todo list</system-reminder>"
    assert done == {"role": "assistant", "content": "Done."}
    assert image["content"] == [
        {"type": "text", "text": "Look at this"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
    ]
    # Server tools are dropped; client tools keep name, description and schema.
    assert [t["function"]["name"] for t in out["tools"]] == ["Read", "Bash"]
    assert out["tools"][0]["function"]["parameters"] == {"type": "object", "properties": {}}
    assert out["tool_choice"] == "auto"
    text = json.dumps(out)
    for dropped in ("cache_control", "SIG", "BLOB", "Let me read it.", "user_abc", "budget_tokens", "edits"):
        assert dropped not in text


def test_model_is_kept_when_no_upstream_model_is_given_and_non_stream_has_no_stream_options():
    out = chat(
        Api.ANTHROPIC_MESSAGES, {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}, None
    )
    assert out["model"] == "m" and "stream" not in out and "stream_options" not in out


@pytest.mark.parametrize(
    ("choice", "expected", "parallel"),
    [
        ({"type": "auto"}, "auto", None),
        ({"type": "any"}, "required", None),
        ({"type": "none"}, "none", None),
        ({"type": "tool", "name": "Read"}, {"type": "function", "function": {"name": "Read"}}, None),
        ({"type": "auto", "disable_parallel_tool_use": True}, "auto", False),
    ],
)
def test_anthropic_tool_choice(choice, expected, parallel):
    doc = {
        "model": "m",
        "messages": [{"role": "user", "content": "hi"}],
        "tools": CLAUDE_CODE["tools"][:1],
        "tool_choice": choice,
    }
    out = chat(Api.ANTHROPIC_MESSAGES, doc)
    assert out["tool_choice"] == expected
    assert out.get("parallel_tool_calls") == parallel


def test_stop_sequences_top_k_and_structured_output():
    doc = {
        "model": "m",
        "messages": [{"role": "user", "content": "hi"}],
        "stop_sequences": ["\n\nHuman:"],
        "top_p": 0.9,
        "top_k": 40,
        "output_config": {"effort": "low", "format": {"type": "json_schema", "schema": {"type": "object"}}},
    }
    out = chat(Api.ANTHROPIC_MESSAGES, doc)
    assert out["stop"] == ["\n\nHuman:"] and out["top_p"] == 0.9 and out["top_k"] == 40
    assert out["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "output", "schema": {"type": "object"}},
    }


def test_tool_result_images_follow_the_tool_messages():
    doc = {
        "model": "m",
        "messages": [
            {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "Read", "input": {}}]},
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": "toolu_1",
                        "content": [
                            {"type": "text", "text": "a screenshot"},
                            {"type": "image", "source": {"type": "url", "url": "https://x/y.png"}},
                        ],
                    }
                ],
            },
        ],
    }
    _, tool, user = chat(Api.ANTHROPIC_MESSAGES, doc)["messages"]
    assert tool == {"role": "tool", "tool_call_id": "toolu_1", "content": "a screenshot"}
    assert user["role"] == "user" and user["content"][-1] == {
        "type": "image_url",
        "image_url": {"url": "https://x/y.png"},
    }
    assert "toolu_1" in user["content"][1]["text"]


@pytest.mark.parametrize(
    ("block", "where"),
    [
        (
            {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {"query": "q"}},
            "messages[0].content[0]",
        ),
        ({"type": "web_search_tool_result", "tool_use_id": "srvtoolu_1", "content": []}, "messages[0].content[0]"),
        (
            {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBE"}},
            "messages[0].content[0].source",
        ),
    ],
)
def test_blocks_without_a_chat_equivalent_are_refused_precisely(block, where):
    role = "assistant" if block["type"] == "server_tool_use" else "user"
    message = refused(Api.ANTHROPIC_MESSAGES, {"model": "m", "messages": [{"role": role, "content": [block]}]})
    assert message.startswith(where + ":")


@pytest.mark.parametrize(
    "doc",
    [
        {"model": "m"},
        {"model": "m", "messages": [{"role": "system", "content": "x"}]},
        {"model": "m", "messages": [{"role": "user", "content": 5}]},
        {
            "model": "m",
            "messages": [
                {"role": "assistant", "content": [{"type": "tool_use", "id": "t", "name": "n", "input": "x"}]}
            ],
        },
        {"model": "m", "messages": [{"role": "user", "content": [{"type": "tool_result"}]}]},
    ],
)
def test_malformed_messages_requests_are_refused_not_crashed(doc):
    refused(Api.ANTHROPIC_MESSAGES, doc)


def test_a_body_that_is_not_json_is_refused():
    with pytest.raises(EgressError) as info:
        messages_translator().request_body(b"{nope", None)
    assert info.value.code is ErrorCode.INVALID_JSON


# A conversation: turns of text, tool calls and their results, in any order and number.
texts = st.text(min_size=1, max_size=20)


@st.composite
def conversations(draw) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = [{"role": "user", "content": draw(texts)}]
    for turn in range(draw(st.integers(0, 4))):
        calls = [
            {"type": "tool_use", "id": f"toolu_{turn}_{k}", "name": "Bash", "input": {"cmd": draw(texts)}}
            for k in range(draw(st.integers(0, 3)))
        ]
        before = [{"type": "text", "text": draw(texts)}] if draw(st.booleans()) or not calls else []
        messages.append({"role": "assistant", "content": before + calls})
        results = [
            {"type": "tool_result", "tool_use_id": c["id"], "content": draw(texts), "is_error": draw(st.booleans())}
            for c in calls
        ]
        messages.append({"role": "user", "content": [*results, {"type": "text", "text": draw(texts)}]})
    return messages


@settings(max_examples=60, deadline=None)
@given(messages=conversations())
def test_every_text_call_and_result_survives_in_order(messages):
    out = chat(Api.ANTHROPIC_MESSAGES, {"model": "m", "messages": messages})["messages"]
    assert _joined(_facts_from_messages(messages)) == _joined(_facts_from_chat(out))


def _joined(facts: Iterator[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """Adjacent texts as one (Chat joins a turn's text blocks, and adjacent user turns, with a
    blank line)."""
    out: list[tuple[Any, ...]] = []
    for fact in facts:
        if fact[0] == "text" and out and out[-1][0] == "text":
            out[-1] = ("text", out[-1][1] + "\n\n" + fact[1])
        else:
            out.append(fact)
    return out


def _facts_from_messages(messages: list[dict[str, Any]]) -> Iterator[tuple[Any, ...]]:
    for message in messages:
        content = message["content"]
        if isinstance(content, str):
            yield ("text", content)
            continue
        # Chat puts a turn's tool results before its other content.
        ordered = sorted(content, key=lambda b: b["type"] != "tool_result")
        for block in ordered:
            if block["type"] == "text":
                yield ("text", block["text"])
            elif block["type"] == "tool_use":
                yield ("call", block["id"], block["name"], block["input"])
            else:
                prefix = "[tool error]\n" if block["is_error"] else ""
                yield ("result", block["tool_use_id"], prefix + block["content"])


def _facts_from_chat(messages: list[dict[str, Any]]) -> Iterator[tuple[Any, ...]]:
    for message in messages:
        if message["role"] == "tool":
            yield ("result", message["tool_call_id"], message["content"])
            continue
        if message.get("content"):
            yield ("text", message["content"])
        for call in message.get("tool_calls", []):
            yield ("call", call["id"], call["function"]["name"], json.loads(call["function"]["arguments"]))


# --- Codex CLI (OpenAI Responses) ---------------------------------------------------------------

PATCH = "*** Begin Patch\n*** Update File: src/a.py\n@@\n-old\n+new\n*** End Patch"
CODEX = {
    "model": "gpt-5-codex",
    "instructions": "You are Codex.",
    "input": [
        {
            "type": "message",
            "role": "developer",
            "content": [{"type": "input_text", "text": "<permissions>sandboxed</permissions>"}],
        },
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "# AGENTS.md instructions"}]},
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "fix the tests"}]},
        {
            "type": "reasoning",
            "id": "rs_1",
            "summary": [{"type": "summary_text", "text": "think"}],
            "encrypted_content": "ENC",
        },
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Looking."}]},
        {"type": "function_call", "call_id": "call_1", "name": "exec_command", "arguments": '{"cmd":"cat src/a.py"}'},
        {"type": "function_call", "call_id": "call_2", "name": "exec_command", "arguments": '{"cmd":"ls"}'},
        {"type": "function_call_output", "call_id": "call_1", "output": "old\n"},
        {"type": "function_call_output", "call_id": "call_2", "output": [{"type": "input_text", "text": "a.py"}]},
        {"type": "custom_tool_call", "call_id": "call_3", "name": "apply_patch", "input": PATCH},
        {"type": "custom_tool_call_output", "call_id": "call_3", "output": "Success. Updated src/a.py"},
        {"role": "user", "content": "thanks"},
    ],
    "tools": [
        {
            "type": "function",
            "name": "exec_command",
            "description": "Run a command",
            "parameters": {"type": "object"},
            "strict": False,
        },
        {
            "type": "custom",
            "name": "apply_patch",
            "description": "Edit files",
            "format": {"type": "grammar", "syntax": "lark", "definition": "start: patch"},
        },
        {"type": "web_search"},
        {"type": "local_shell"},
    ],
    "tool_choice": "auto",
    "parallel_tool_calls": True,
    "reasoning": {"effort": "medium", "summary": "auto"},
    "store": False,
    "stream": True,
    "include": ["reasoning.encrypted_content"],
    "prompt_cache_key": "conv-1",
    "text": {"verbosity": "medium"},
    "max_output_tokens": 4096,
}


def test_codex_request_becomes_a_chat_request():
    out = chat(Api.OPENAI_RESPONSES, CODEX)
    assert out["model"] == "local-model" and out["max_tokens"] == 4096
    assert out["stream_options"] == {"include_usage": True}
    roles = [m["role"] for m in out["messages"]]
    assert roles == ["system", "user", "assistant", "tool", "tool", "assistant", "tool", "user"]
    system, user, assistant, out_1, out_2, patch_call, patch_out, thanks = out["messages"]
    # Instructions and the developer message are one system message; consecutive user items one user message.
    assert system["content"] == "You are Codex.\n\n<permissions>sandboxed</permissions>"
    assert user["content"] == "# AGENTS.md instructions\n\nfix the tests"
    assert assistant["content"] == "Looking."
    assert [(c["id"], c["function"]["arguments"]) for c in assistant["tool_calls"]] == [
        ("call_1", '{"cmd":"cat src/a.py"}'),
        ("call_2", '{"cmd":"ls"}'),
    ]
    assert out_1 == {"role": "tool", "tool_call_id": "call_1", "content": "old\n"}
    assert out_2 == {"role": "tool", "tool_call_id": "call_2", "content": "a.py"}
    assert patch_call["content"] == ""  # not null: llama-cpp-python answers 500 to null
    assert json.loads(patch_call["tool_calls"][0]["function"]["arguments"]) == {"input": PATCH}
    assert patch_out["content"] == "Success. Updated src/a.py"
    assert thanks == {"role": "user", "content": "thanks"}
    # Function tools as they are; the custom tool as a function of one string; built-ins dropped.
    tools = {t["function"]["name"]: t["function"] for t in out["tools"]}
    assert set(tools) == {"exec_command", "apply_patch"}
    assert tools["exec_command"] == {
        "name": "exec_command",
        "description": "Run a command",
        "parameters": {"type": "object"},
        "strict": False,
    }
    assert tools["apply_patch"]["parameters"]["required"] == ["input"]
    assert "start: patch" in tools["apply_patch"]["parameters"]["properties"]["input"]["description"]
    assert out["tool_choice"] == "auto" and out["parallel_tool_calls"] is True
    text = json.dumps(out)
    for dropped in ("ENC", "think", "conv-1", "verbosity", "encrypted_content"):
        assert dropped not in text


def test_string_input_and_tool_choice_forms():
    doc = {
        "model": "m",
        "input": "hello",
        "tools": CODEX["tools"][:2],
        "tool_choice": {"type": "custom", "name": "apply_patch"},
    }
    out = chat(Api.OPENAI_RESPONSES, doc)
    assert out["messages"] == [{"role": "user", "content": "hello"}]
    assert out["tool_choice"] == {"type": "function", "function": {"name": "apply_patch"}}
    doc["tool_choice"] = {"type": "function", "name": "exec_command"}
    assert chat(Api.OPENAI_RESPONSES, doc)["tool_choice"] == {"type": "function", "function": {"name": "exec_command"}}


def test_images_from_tool_outputs_wait_until_the_tool_messages_are_over():
    doc = {
        "model": "m",
        "input": [
            {"type": "function_call", "call_id": "c1", "name": "view", "arguments": "{}"},
            {"type": "function_call", "call_id": "c2", "name": "view", "arguments": "{}"},
            {
                "type": "function_call_output",
                "call_id": "c1",
                "output": [{"type": "input_image", "image_url": "data:image/png;base64,AA"}],
            },
            {"type": "function_call_output", "call_id": "c2", "output": "text"},
        ],
    }
    roles = [m["role"] for m in chat(Api.OPENAI_RESPONSES, doc)["messages"]]
    assert roles == ["assistant", "tool", "tool", "user"]


def test_json_schema_text_format_becomes_response_format():
    fmt = {"type": "json_schema", "name": "answer", "schema": {"type": "object"}, "strict": True}
    out = chat(Api.OPENAI_RESPONSES, {"model": "m", "input": "x", "text": {"format": fmt}})
    assert out["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "answer", "schema": {"type": "object"}, "strict": True},
    }


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        ({"previous_response_id": "resp_1", "input": "x"}, "previous_response_id: refers to state stored by OpenAI"),
        ({"conversation": "conv_1", "input": "x"}, "conversation: "),
        (
            {"input": [{"type": "compaction", "encrypted_content": "E"}]},
            "input[0]: an item of type 'compaction' holds encrypted",
        ),
        ({"input": [{"type": "item_reference", "id": "msg_1"}]}, "input[0]: an item of type 'item_reference'"),
        (
            {"input": [{"type": "local_shell_call", "call_id": "c", "action": {}}]},
            "input[0]: an item of type 'local_shell_call' has no",
        ),
        (
            {"input": [{"type": "mcp_call", "server_label": "x", "arguments": "{}"}]},
            "input[0]: an item of type 'mcp_call'",
        ),
        (
            {"input": [{"role": "user", "content": [{"type": "input_image", "file_id": "file_1"}]}]},
            "input[0].content[0]: only images",
        ),
        (
            {"input": [{"role": "user", "content": [{"type": "input_file", "file_data": "x"}]}]},
            "input[0].content[0]: a 'input_file' part",
        ),
        ({"input": [{"role": "tool", "content": "x"}]}, "input[0].role:"),
        (
            {"input": "x", "tools": [{"type": "namespace", "name": "crm", "tools": []}]},
            "tools[2].type: a 'namespace' tool",
        ),
        (
            {"input": "x", "tools": [{"type": "function", "name": "f"}], "tool_choice": {"type": "allowed_tools"}},
            "tool_choice:",
        ),
        ({"input": [{"type": "function_call", "call_id": "c", "name": "f"}]}, "input[0].arguments: must be a string"),
    ],
)
def test_untranslatable_responses_requests_are_refused_precisely(doc, expected):
    if "tools" in doc and doc["tools"][0]["type"] == "namespace":
        doc = dict(doc, tools=[{"type": "web_search"}, {"type": "function", "name": "f"}, *doc["tools"]])
    message = refused(Api.OPENAI_RESPONSES, {"model": "m", **doc})
    assert message.startswith(expected), message


@pytest.mark.parametrize(("api", "doc"), [(Api.ANTHROPIC_MESSAGES, CLAUDE_CODE), (Api.OPENAI_RESPONSES, CODEX)])
def test_an_endpoint_cap_bounds_max_tokens(api, doc):
    translator = translator_for(api, Api.OPENAI_CHAT)
    assert translator is not None
    capped = json.loads(translator.request_body(json.dumps(doc).encode(), "m", max_tokens_cap=1024))
    assert capped["max_tokens"] == 1024
    small = dict(doc, **({"max_tokens": 100} if api is Api.ANTHROPIC_MESSAGES else {"max_output_tokens": 100}))
    assert (
        json.loads(translator.request_body(json.dumps(small).encode(), "m", max_tokens_cap=1024))["max_tokens"] == 100
    )
    unset = {k: v for k, v in doc.items() if k not in ("max_tokens", "max_output_tokens")}
    assert (
        json.loads(translator.request_body(json.dumps(unset).encode(), "m", max_tokens_cap=1024))["max_tokens"] == 1024
    )


def test_translators_exist_only_for_chat_upstreams_and_are_new_each_time():
    assert translator_for(Api.ANTHROPIC_MESSAGES, Api.ANTHROPIC_MESSAGES) is None
    assert translator_for(Api.OPENAI_CHAT, Api.OPENAI_CHAT) is None
    assert translator_for(Api.OPENAI_RESPONSES, Api.ANTHROPIC_MESSAGES) is None
    assert translator_for(Api.ANTHROPIC_MESSAGES, Api.OPENAI_CHAT) is not translator_for(
        Api.ANTHROPIC_MESSAGES, Api.OPENAI_CHAT
    )


@pytest.mark.parametrize("api", [Api.ANTHROPIC_MESSAGES, Api.OPENAI_RESPONSES])
def test_an_already_parsed_document_gives_the_same_request_and_is_not_changed(api):
    doc = CLAUDE_CODE if api is Api.ANTHROPIC_MESSAGES else CODEX
    body = json.dumps(doc).encode()
    parsed = json.loads(body)
    snapshot = json.dumps(parsed, sort_keys=True)
    from_bytes = translator_for(api, Api.OPENAI_CHAT).request_body(body, "local-model", max_tokens_cap=99)
    from_doc = translator_for(api, Api.OPENAI_CHAT).request_body(
        b"not read", "local-model", max_tokens_cap=99, document=parsed
    )
    assert from_doc == from_bytes
    assert json.dumps(parsed, sort_keys=True) == snapshot  # the pipeline's parsed document stays intact


@pytest.mark.parametrize("api", [Api.ANTHROPIC_MESSAGES, Api.OPENAI_RESPONSES])
def test_system_text_can_move_into_the_first_user_message(api):
    doc = CLAUDE_CODE if api is Api.ANTHROPIC_MESSAGES else CODEX
    body = json.dumps(doc).encode()
    kept = json.loads(translator_for(api, Api.OPENAI_CHAT).request_body(body, "m"))
    folded = json.loads(translator_for(api, Api.OPENAI_CHAT).request_body(body, "m", system_in_user=True))
    system_texts = [m["content"] for m in kept["messages"] if m["role"] == "system"]
    assert system_texts and all(m["role"] != "system" for m in folded["messages"])
    first_user = next(m for m in folded["messages"] if m["role"] == "user")
    text = first_user["content"] if isinstance(first_user["content"], str) else first_user["content"][0]["text"]
    assert text.startswith("\n\n".join(system_texts))
    # Every other message is unchanged, in order.
    rest = [m for m in kept["messages"] if m["role"] != "system"]
    position = folded["messages"].index(first_user)
    assert folded["messages"][:position] + folded["messages"][position + 1 :] == rest[:position] + rest[position + 1 :]


def test_folding_without_a_user_message_makes_one():
    assert fold_system([{"role": "system", "content": "rules"}]) == [{"role": "user", "content": "rules"}]
