"""Streaming restoration, property-tested: any split of the model's text into deltas, any split of
the wire into network chunks (down to one byte, inside multi-byte characters), gives the same
restored text; no placeholder of the map ever reaches the client, whole or in part; signed
thinking is never touched; every other event passes byte for byte, in order."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from egress.core.exchange import Api
from egress.mask.restore import Restorer
from tests.support.masking import PLACEHOLDERS, events, run_stream, sse

VALUES = {
    "AKIAIOSFODNN7EXAMPLE": "aws-access-key-id",
    'pa"ss\\wo\nrd-\u00e9\U0001d11e': "generic-password",
    "ghp_0123456789abcdefghijABCDEFGHIJ012345": "github-pat",
    "jos\u00e9@example.org": "email",
}
MAP = {PLACEHOLDERS.make(v, rule.upper().replace("-", "_")): v for v, rule in VALUES.items()}
FAKE = "EGX_GITHUB_PAT_zzzzzzzzzzzzz"  # placeholder-shaped, never issued: must pass as written

piece = st.one_of(
    st.sampled_from(sorted(MAP)),
    st.sampled_from(["E", "EG", "EGX", "EGX_", "EGX_AWS", "EGX_AWS_ACCESS_KEY_ID_", FAKE, "\\", '"', "\n"]),
    st.text(alphabet="abcXYZ _.-{}:\u00e9\u4e2d\U0001f600E", max_size=6),
)
texts = st.lists(piece, max_size=12).map("".join)


def restore_plain(text: str) -> str:
    for placeholder, value in MAP.items():
        text = text.replace(placeholder, value)
    return text


def split(text: str, cuts: list[int]) -> list[str]:
    points = sorted({c % (len(text) + 1) for c in cuts} | {0, len(text)})
    return [text[a:b] for a, b in zip(points, points[1:], strict=False)] or [""]


def anthropic_wire(text: str, args_json: str, text_cuts: list[int], arg_cuts: list[int]) -> bytes:
    out = [
        sse(
            "message_start",
            {"type": "message_start", "message": {"id": "msg_1", "content": [], "usage": {"input_tokens": 3}}},
        ),
        sse(
            "content_block_start",
            {"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": ""}},
        ),
        sse(
            "content_block_delta",
            {"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": text}},
        ),
        sse(
            "content_block_delta",
            {"type": "content_block_delta", "index": 0, "delta": {"type": "signature_delta", "signature": "c2lnbmVk"}},
        ),
        sse("content_block_stop", {"type": "content_block_stop", "index": 0}),
        sse(
            "content_block_start",
            {"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": ""}},
        ),
    ]
    for part in split(text, text_cuts):
        out.append(
            sse(
                "content_block_delta",
                {"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": part}},
            )
        )
        out.append(sse("ping", {"type": "ping"}))
    out.append(sse("content_block_stop", {"type": "content_block_stop", "index": 1}))
    out.append(
        sse(
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 2,
                "content_block": {"type": "tool_use", "id": "toolu_1", "name": "Bash", "input": {}},
            },
        )
    )
    for part in split(args_json, arg_cuts):
        out.append(
            sse(
                "content_block_delta",
                {
                    "type": "content_block_delta",
                    "index": 2,
                    "delta": {"type": "input_json_delta", "partial_json": part},
                },
            )
        )
    out.append(sse("content_block_stop", {"type": "content_block_stop", "index": 2}))
    out.append(
        sse(
            "message_delta",
            {"type": "message_delta", "delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 9}},
        )
    )
    out.append(sse("message_stop", {"type": "message_stop"}))
    return b"".join(out)


def _delta_text(evs: list, index: int, key: str) -> str:
    return "".join(
        d["delta"][key]
        for _, d in evs
        if d.get("type") == "content_block_delta" and d["index"] == index and key in d["delta"]
    )


@settings(max_examples=300, deadline=None)
@given(
    texts,
    st.lists(st.integers(0, 400), max_size=8),
    st.lists(st.integers(0, 400), max_size=8),
    st.lists(st.integers(0, 5000), max_size=30),
)
def test_anthropic_any_split_restores_exactly(text, text_cuts, arg_cuts, byte_cuts):
    args = json.dumps({"command": text}, ensure_ascii=False)
    wire = anthropic_wire(text, args, text_cuts, arg_cuts)
    restored = run_stream(Restorer().stream(Api.ANTHROPIC_MESSAGES, MAP), wire, byte_cuts)
    whole = run_stream(Restorer().stream(Api.ANTHROPIC_MESSAGES, MAP), wire, [])
    assert restored == whole  # network chunking never matters
    evs = events(restored)
    assert _delta_text(evs, 1, "text") == restore_plain(text)
    assert json.loads(_delta_text(evs, 2, "partial_json")) == {"command": restore_plain(text)}
    assert _delta_text(evs, 0, "thinking") == text  # signed: left exactly as the model wrote it
    for placeholder in MAP:
        for _, d in evs:
            delta = d.get("delta", {}) if isinstance(d, dict) else {}
            if delta.get("type") in ("text_delta", "input_json_delta"):
                emitted = delta.get("text", delta.get("partial_json", ""))
                assert placeholder not in emitted

    # Structure: the same non-delta events, byte for byte, in the same order.
    def skeleton(raw: bytes) -> list[bytes]:
        return [e for e in raw.split(b"\n\n") if b"text_delta" not in e and b"input_json_delta" not in e]

    assert skeleton(restored) == skeleton(wire)


@settings(max_examples=200, deadline=None)
@given(texts, st.lists(st.integers(0, 400), max_size=8), st.lists(st.integers(0, 5000), max_size=30))
def test_chat_content_and_tool_arguments(text, cuts, byte_cuts):
    base = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-x"}
    args = json.dumps({"path": text})
    chunks = [
        sse(
            None,
            {**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]},
        )
    ]
    for part in split(text, cuts):
        chunks.append(sse(None, {**base, "choices": [{"index": 0, "delta": {"content": part}, "finish_reason": None}]}))
    for i, part in enumerate(split(args, cuts)):
        call = {"index": 0, "function": {"arguments": part}}
        if i == 0:
            call.update({"id": "call_1", "type": "function", "function": {"name": "read", "arguments": part}})
        chunks.append(
            sse(None, {**base, "choices": [{"index": 0, "delta": {"tool_calls": [call]}, "finish_reason": None}]})
        )
    chunks.append(sse(None, {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]}))
    chunks.append(sse(None, {**base, "choices": [], "usage": {"prompt_tokens": 1, "completion_tokens": 2}}))
    chunks.append(sse(None, "[DONE]"))
    wire = b"".join(chunks)
    restored = run_stream(Restorer().stream(Api.OPENAI_CHAT, MAP), wire, byte_cuts)
    assert restored == run_stream(Restorer().stream(Api.OPENAI_CHAT, MAP), wire, [])
    evs = [d for _, d in events(restored)]
    assert evs[-1] == "[DONE]"
    content = "".join(c["delta"].get("content") or "" for d in evs[:-1] for c in d["choices"])
    arguments = "".join(
        t["function"].get("arguments", "")
        for d in evs[:-1]
        for c in d["choices"]
        for t in c["delta"].get("tool_calls", [])
    )
    assert content == restore_plain(text)
    assert json.loads(arguments) == {"path": restore_plain(text)}
    # Everything the stream held was released before the finish chunk.
    finish = next(i for i, d in enumerate(evs[:-1]) if d["choices"] and d["choices"][0]["finish_reason"])
    assert all(not d["choices"] or not d["choices"][0]["delta"] for d in evs[finish + 1 : -1])


@settings(max_examples=200, deadline=None)
@given(texts, st.lists(st.integers(0, 400), max_size=8), st.lists(st.integers(0, 6000), max_size=30))
def test_responses_deltas_and_every_copy(text, cuts, byte_cuts):
    args = json.dumps({"cmd": ["cat", text]})
    out: list[tuple[str, dict]] = [
        ("response.created", {"response": {"id": "resp_1", "status": "in_progress", "output": []}})
    ]
    out.append(
        ("response.output_item.added", {"output_index": 0, "item": {"type": "message", "id": "msg_1", "content": []}})
    )
    for part in split(text, cuts):
        out.append(
            (
                "response.output_text.delta",
                {"item_id": "msg_1", "output_index": 0, "content_index": 0, "delta": part, "logprobs": []},
            )
        )
    message = {
        "type": "message",
        "id": "msg_1",
        "role": "assistant",
        "content": [{"type": "output_text", "text": text, "annotations": []}],
    }
    out.append(("response.output_text.done", {"item_id": "msg_1", "output_index": 0, "content_index": 0, "text": text}))
    out.append(
        (
            "response.content_part.done",
            {"item_id": "msg_1", "output_index": 0, "content_index": 0, "part": message["content"][0]},
        )
    )
    out.append(("response.output_item.done", {"output_index": 0, "item": message}))
    for part in split(args, cuts):
        out.append(("response.function_call_arguments.delta", {"item_id": "fc_1", "output_index": 1, "delta": part}))
    call = {"type": "function_call", "id": "fc_1", "call_id": "call_1", "name": "exec_command", "arguments": args}
    out.append(("response.function_call_arguments.done", {"item_id": "fc_1", "output_index": 1, "arguments": args}))
    out.append(("response.output_item.done", {"output_index": 1, "item": call}))
    out.append(("response.completed", {"response": {"id": "resp_1", "status": "completed", "output": [message, call]}}))
    wire = b"".join(sse(name, {"type": name, **body, "sequence_number": n}) for n, (name, body) in enumerate(out))
    restorer = Restorer().stream(Api.OPENAI_RESPONSES, MAP)
    restored = run_stream(restorer, wire, byte_cuts)
    assert restorer.response_id == "resp_1"
    assert restored == run_stream(Restorer().stream(Api.OPENAI_RESPONSES, MAP), wire, [])
    evs = [d for _, d in events(restored)]
    assert [d["sequence_number"] for d in evs] == list(range(len(evs)))  # contiguous, even with releases
    want_text, want_args = restore_plain(text), {"cmd": ["cat", restore_plain(text)]}
    assert "".join(d["delta"] for d in evs if d["type"] == "response.output_text.delta") == want_text
    assert (
        json.loads("".join(d["delta"] for d in evs if d["type"] == "response.function_call_arguments.delta"))
        == want_args
    )
    by_type = {d["type"]: d for d in evs}
    assert by_type["response.output_text.done"]["text"] == want_text
    assert by_type["response.content_part.done"]["part"]["text"] == want_text
    assert json.loads(by_type["response.function_call_arguments.done"]["arguments"]) == want_args
    done = [d["item"] for d in evs if d["type"] == "response.output_item.done"]
    assert done[0]["content"][0]["text"] == want_text and json.loads(done[1]["arguments"]) == want_args
    final = by_type["response.completed"]["response"]["output"]
    assert final[0]["content"][0]["text"] == want_text and json.loads(final[1]["arguments"]) == want_args


def test_a_tail_that_cannot_complete_is_released_at_once():
    placeholder = next(iter(MAP))
    restorer = Restorer().stream(Api.ANTHROPIC_MESSAGES, MAP)

    def delta(text: str) -> bytes:
        return sse(
            "content_block_delta",
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text}},
        )

    held = restorer.feed(delta("key: " + placeholder[:9]))
    assert events(held)[0][1]["delta"]["text"] == "key: "  # only the viable prefix is held
    released = restorer.feed(delta("!"))  # '!' cannot continue a placeholder: out it goes
    assert events(released)[0][1]["delta"]["text"] == placeholder[:9] + "!"
    assert restorer.held == {}


def test_unissued_placeholders_and_plain_events_pass_untouched():
    restorer = Restorer().stream(Api.ANTHROPIC_MESSAGES, MAP)
    raw = sse(
        "content_block_delta",
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": FAKE + " ok"}},
    )
    assert restorer.feed(raw) == raw
    ping = b'event: ping\ndata: {"type": "ping"}\n\n'
    assert restorer.feed(ping) is ping


def test_non_streamed_answers_restore_every_text_but_thinking():
    placeholder, value = next((p, v) for p, v in MAP.items() if '"' in v)
    body = json.dumps(
        {
            "content": [
                {"type": "thinking", "thinking": f"use {placeholder}", "signature": "c2ln"},
                {"type": "text", "text": f"the key is {placeholder}"},
                {"type": "tool_use", "id": "t1", "name": "Bash", "input": {"command": f"echo {placeholder}"}},
            ]
        }
    ).encode()
    doc = json.loads(Restorer().body(Api.ANTHROPIC_MESSAGES, MAP, body))
    assert doc["content"][0]["thinking"] == f"use {placeholder}"
    assert doc["content"][1]["text"] == f"the key is {value}"
    assert doc["content"][2]["input"]["command"] == f"echo {value}"
    chat = json.dumps(
        {
            "choices": [
                {
                    "message": {
                        "content": placeholder,
                        "tool_calls": [{"function": {"arguments": json.dumps({"a": placeholder})}}],
                    }
                }
            ]
        }
    ).encode()
    doc = json.loads(Restorer().body(Api.OPENAI_CHAT, MAP, chat))
    assert doc["choices"][0]["message"]["content"] == value
    assert json.loads(doc["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"]) == {"a": value}


def test_responses_custom_tool_input_is_restored_as_plain_text():
    """Codex's apply_patch is a custom tool: its input is raw text, not JSON."""
    placeholder, value = next((p, v) for p, v in MAP.items() if '"' in v)
    patch = f"*** Begin Patch\n+PASSWORD={placeholder}\n*** End Patch"
    evs = [
        ("response.custom_tool_call_input.delta", {"item_id": "ct_1", "output_index": 0, "delta": patch[:20]}),
        ("response.custom_tool_call_input.delta", {"item_id": "ct_1", "output_index": 0, "delta": patch[20:]}),
        ("response.custom_tool_call_input.done", {"item_id": "ct_1", "output_index": 0, "input": patch}),
        ("response.output_item.done", {"output_index": 0, "item": {"type": "custom_tool_call", "name": "apply_patch", "input": patch}}),
    ]
    wire = b"".join(sse(name, {"type": name, **body, "sequence_number": n}) for n, (name, body) in enumerate(evs))
    out = [d for _, d in events(run_stream(Restorer().stream(Api.OPENAI_RESPONSES, MAP), wire, []))]
    want = patch.replace(placeholder, value)
    assert "".join(d["delta"] for d in out if d["type"].endswith(".delta")) == want
    assert out[-2]["input"] == want and out[-1]["item"]["input"] == want


@pytest.mark.parametrize("api", [Api.ANTHROPIC_MESSAGES, Api.OPENAI_CHAT, Api.OPENAI_RESPONSES])
def test_one_byte_per_network_read_changes_nothing(api):
    """The harshest chunking: every byte its own read, so every multi-byte character is split."""
    text = "clé → " + "".join(MAP) + " 中文😀 E"
    if api is Api.ANTHROPIC_MESSAGES:
        wire = anthropic_wire(text, json.dumps({"command": text}, ensure_ascii=False), [3, 9, 40], [5, 17])
    elif api is Api.OPENAI_CHAT:
        base = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m"}
        wire = b"".join(
            sse(None, {**base, "choices": [{"index": 0, "delta": {"content": part}, "finish_reason": None}]})
            for part in split(text, [4, 11, 30])
        ) + sse(None, "[DONE]")
    else:
        parts = split(text, [2, 13, 50])
        wire = b"".join(
            sse("response.output_text.delta", {"type": "response.output_text.delta", "output_index": 0, "content_index": 0, "delta": part, "sequence_number": n})
            for n, part in enumerate(parts)
        ) + sse(  # the text's end: what was held back (the final "E") is the model's own text
            "response.output_text.done",
            {"type": "response.output_text.done", "output_index": 0, "content_index": 0, "text": text, "sequence_number": len(parts)},
        )
    whole = run_stream(Restorer().stream(api, MAP), wire, [])
    assert run_stream(Restorer().stream(api, MAP), wire, list(range(1, len(wire)))) == whole
    evs = [d for _, d in events(whole) if isinstance(d, dict)]
    if api is Api.ANTHROPIC_MESSAGES:
        got = _delta_text(events(whole), 1, "text")
    elif api is Api.OPENAI_CHAT:
        got = "".join(c["delta"].get("content") or "" for d in evs for c in d["choices"])
    else:
        got = "".join(d["delta"] for d in evs if d["type"].endswith(".delta"))
    assert got == restore_plain(text)
