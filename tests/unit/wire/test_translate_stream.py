"""Streamed answers: a Chat Completions stream translated to Anthropic Messages and to OpenAI
Responses events, read back by the official SDKs' own stream accumulators.

The upstream input is the real recorded Chat streams (fixtures/openai-chat) and, for the
properties, Chat streams generated with every way of splitting the same answer."""

from __future__ import annotations

import json
import random
from typing import Any

import anthropic
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from egress.wire.translate.chat_stream import KEEPALIVE_NS
from egress.wire.translate.messages_stream import MessagesStreamTranslation
from egress.wire.translate.responses_request import RequestEcho
from egress.wire.translate.responses_stream import ResponsesStreamTranslation
from tests.support.simulator import split_random
from tests.support.translate import (
    CHAT_FIXTURES,
    anthropic_message,
    chat_facts,
    fixture,
    messages_translator,
    parsed,
    responses_final,
    responses_translator,
    sse,
    translate,
)

ANTHROPIC_STOP = {"stop": "end_turn", "tool_calls": "tool_use", "length": "max_tokens"}
IDS = [p.name for p in CHAT_FIXTURES]


def test_every_recorded_chat_stream_is_here():
    assert len(CHAT_FIXTURES) == 12


# --- the recorded streams ----------------------------------------------------------------------


@pytest.mark.parametrize("path", CHAT_FIXTURES, ids=IDS)
def test_recorded_stream_as_anthropic_messages(path):
    data = path.read_bytes()
    facts = chat_facts(data)
    message = anthropic_message(translate(messages_translator().stream(), [data]))

    texts = [b.text for b in message.content if b.type == "text"]
    calls = [(b.id, b.name, b.input) for b in message.content if b.type == "tool_use"]
    assert "".join(texts) == facts.text
    assert calls == [(i, n, json.loads(a)) for i, n, a in facts.calls]
    assert message.stop_reason == ANTHROPIC_STOP[facts.finish_reason]
    assert message.usage.input_tokens == facts.prompt_tokens
    assert message.usage.output_tokens == facts.completion_tokens
    assert message.model == json.loads(data.split(b"\n")[0][6:])["model"]
    assert message.id.startswith("msg_")


@pytest.mark.parametrize("path", CHAT_FIXTURES, ids=IDS)
def test_recorded_stream_as_responses(path):
    data = path.read_bytes()
    facts = chat_facts(data)
    response = responses_final(translate(responses_translator().stream(), [data]))

    texts = [p.text for item in response.output if item.type == "message" for p in item.content]
    calls = [(i.call_id, i.name, i.arguments) for i in response.output if i.type == "function_call"]
    assert "".join(texts) == facts.text
    assert calls == facts.calls
    if facts.finish_reason == "length":
        assert response.status == "incomplete"
        assert response.incomplete_details is not None
        assert response.incomplete_details.reason == "max_output_tokens"
    else:
        assert response.status == "completed"
    assert response.usage is not None
    assert response.usage.input_tokens == facts.prompt_tokens
    assert response.usage.output_tokens == facts.completion_tokens
    assert response.usage.total_tokens == facts.prompt_tokens + facts.completion_tokens
    assert response.id.startswith("resp_")
    assert all(i.id and i.id.startswith(("msg_", "fc_")) for i in response.output)


@pytest.mark.parametrize("path", CHAT_FIXTURES, ids=IDS)
@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32 - 1))
def test_any_byte_split_of_a_recorded_stream_gives_the_same_answer(path, seed):
    data = path.read_bytes()
    chunks = split_random(data, random.Random(seed), max_pieces=60)
    whole_a = anthropic_message(translate(messages_translator().stream(), [data]))
    split_a = anthropic_message(translate(messages_translator().stream(), chunks))
    assert split_a.model_dump(exclude={"id"}) == whole_a.model_dump(exclude={"id"})
    whole_r = responses_final(translate(responses_translator().stream(), [data]))
    split_r = responses_final(translate(responses_translator().stream(), chunks))
    assert _without_ids(split_r.model_dump()) == _without_ids(whole_r.model_dump())


def _without_ids(doc: dict[str, Any]) -> dict[str, Any]:
    doc = dict(doc, id=None)
    doc["output"] = [dict(item, id=None) for item in doc["output"]]
    return doc


def test_only_choice_zero_is_relayed():
    data = fixture("parse_pydantic_model_multiple_choices.sse")
    facts = chat_facts(data)
    message = anthropic_message(translate(messages_translator().stream(), [data]))
    assert [b.text for b in message.content] == [facts.text]


# --- generated streams: any split of the same answer -------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**6), 10**6) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)


@st.composite
def answers(draw) -> dict[str, Any]:
    """An answer (text, tool calls, finish) and one way a Chat server could stream it."""
    text = draw(st.text(max_size=60))
    calls = [
        (f"call_{k}", draw(st.sampled_from(["Read", "Bash", "exec_command", "Edit"])), json.dumps(args))
        for k, args in enumerate(draw(st.lists(st.dictionaries(st.text(max_size=8), json_values), max_size=3)))
    ]
    finish = "tool_calls" if calls else draw(st.sampled_from(["stop", "length"]))
    text_pieces = _pieces(draw, text)
    call_pieces = [_pieces(draw, args) for _, _, args in calls]
    # Fragments of different calls may interleave (by index); each call's own order is kept.
    schedule = draw(st.permutations([k for k, pieces in enumerate(call_pieces) for _ in range(len(pieces) + 1)]))
    if not draw(st.booleans()):
        schedule = sorted(schedule)  # the common case: one call after the other
    return {
        "text": text,
        "calls": calls,
        "finish": finish,
        "chunks": _chunks(
            text_pieces, calls, call_pieces, schedule, finish, draw(st.sampled_from(["own", "finish", "none"]))
        ),
    }


def _pieces(draw, text: str) -> list[str]:
    cuts = sorted(draw(st.sets(st.integers(1, max(len(text) - 1, 1)), max_size=6))) if len(text) > 1 else []
    return [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)], strict=True) if text[a:b]]


def _chunks(text_pieces, calls, call_pieces, schedule, finish, usage_at) -> list[dict[str, Any]]:
    base = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "local"}
    chunks = [dict(base, choices=[{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}])]
    for piece in text_pieces:
        chunks.append(dict(base, choices=[{"index": 0, "delta": {"content": piece}, "finish_reason": None}]))
    sent = [0] * len(calls)
    for k in schedule:
        if sent[k] == 0:
            call_id, name, _ = calls[k]
            fragment = {"index": k, "id": call_id, "type": "function", "function": {"name": name, "arguments": ""}}
        else:
            fragment = {"index": k, "function": {"arguments": call_pieces[k][sent[k] - 1]}}
        sent[k] += 1
        chunks.append(dict(base, choices=[{"index": 0, "delta": {"tool_calls": [fragment]}, "finish_reason": None}]))
    usage = {"prompt_tokens": 7, "completion_tokens": 11, "total_tokens": 18}
    last = dict(base, choices=[{"index": 0, "delta": {}, "finish_reason": finish}])
    if usage_at == "finish":
        last["usage"] = usage
    chunks.append(last)
    if usage_at == "own":
        chunks.append(dict(base, choices=[], usage=usage))
    return chunks


def _first_seen_order(chunks: list[dict[str, Any]]) -> list[int]:
    order: list[int] = []
    for chunk in chunks:
        for choice in chunk["choices"]:
            for call in choice["delta"].get("tool_calls", []):
                if call["index"] not in order:
                    order.append(call["index"])
    return order


@settings(max_examples=80, deadline=None)
@given(answer=answers(), seed=st.integers(0, 2**32 - 1))
def test_any_split_of_an_answer_gives_it_back_in_anthropic_messages(answer, seed):
    data = sse(answer["chunks"])
    events = translate(MessagesStreamTranslation("local"), split_random(data, random.Random(seed)))
    message = anthropic_message(events)

    order = _first_seen_order(answer["chunks"])
    assert "".join(b.text for b in message.content if b.type == "text") == answer["text"]
    tool_blocks = [b for b in message.content if b.type == "tool_use"]
    assert [(b.id, b.name) for b in tool_blocks] == [answer["calls"][k][:2] for k in order]
    # The partial_json pieces of each block concatenate to exactly the arguments the model wrote.
    pieces: dict[int, str] = {}
    for doc in parsed(events):
        if doc["type"] == "content_block_delta" and doc["delta"]["type"] == "input_json_delta":
            pieces[doc["index"]] = pieces.get(doc["index"], "") + doc["delta"]["partial_json"]
    first_tool = len(message.content) - len(tool_blocks)
    for position, k in enumerate(order):
        assert pieces.get(first_tool + position, "") == answer["calls"][k][2]
        assert tool_blocks[position].input == json.loads(answer["calls"][k][2])
    expected_stop = "tool_use" if answer["calls"] else ANTHROPIC_STOP[answer["finish"]]
    assert message.stop_reason == expected_stop


@settings(max_examples=80, deadline=None)
@given(answer=answers(), seed=st.integers(0, 2**32 - 1))
def test_any_split_of_an_answer_gives_it_back_in_responses(answer, seed):
    data = sse(answer["chunks"])
    events = translate(ResponsesStreamTranslation(RequestEcho(model="local")), split_random(data, random.Random(seed)))
    response = responses_final(events)

    order = _first_seen_order(answer["chunks"])
    text = "".join(p.text for item in response.output if item.type == "message" for p in item.content)
    assert text == answer["text"]
    calls = [(i.call_id, i.name, i.arguments) for i in response.output if i.type == "function_call"]
    assert calls == [answer["calls"][k] for k in order]
    docs = parsed(events)
    for item in response.output:
        if item.type == "function_call":
            deltas = [d["delta"] for d in docs if d["type"].endswith("arguments.delta") and d["item_id"] == item.id]
            done = [d["arguments"] for d in docs if d["type"].endswith("arguments.done") and d["item_id"] == item.id]
            assert "".join(deltas) == item.arguments and done == [item.arguments]
    assert response.status == ("incomplete" if answer["finish"] == "length" else "completed")


# --- the end of a stream -----------------------------------------------------------------------


def _cut_before_finish(data: bytes) -> bytes:
    return data[: data.index(b'"finish_reason":"')].rsplit(b"\n\n", 1)[0] + b"\n\n"


@pytest.mark.parametrize("name", ["parse_nothing.sse", "parse_multiple_pydantic_tools.sse"])
def test_a_stream_that_ends_without_a_finish_reason_ends_in_an_error_event(name):
    data = _cut_before_finish(fixture(name))
    docs = parsed(translate(messages_translator().stream(), [data]))
    assert docs[0]["type"] == "message_start"
    assert docs[-1]["type"] == "error"
    assert docs[-1]["error"]["type"] == "api_error"
    assert not any(d["type"] in ("message_delta", "message_stop") for d in docs)
    with pytest.raises(anthropic.APIStatusError):
        anthropic_message(translate(messages_translator().stream(), [data]))

    events = translate(responses_translator().stream(), [data])
    failed = responses_final(events)
    assert failed.status == "failed" and failed.error is not None and failed.error.code == "server_error"
    docs = parsed(events)
    assert [d["type"] for d in docs[-2:]] == ["error", "response.failed"]
    assert docs[-2]["code"] == "upstream_protocol_error"


def test_done_without_a_finish_reason_is_an_error_too():
    data = _cut_before_finish(fixture("parse_nothing.sse")) + b"data: [DONE]\n\n"
    assert parsed(translate(messages_translator().stream(), [data]))[-1]["type"] == "error"


def test_message_delta_waits_for_the_usage_chunk():
    data = fixture("parse_nothing.sse")
    frames = data.split(b"\n\n")[:-1]
    stream = messages_translator().stream()
    seen: list[bytes] = []
    for frame in frames:
        out = stream.feed(frame + b"\n\n")
        if b'"finish_reason":"stop"' in frame:
            assert not any(b"message_delta" in e for e in out)  # usage comes in the next chunk
        if b'"usage"' in frame:
            assert [parsed([e])[0]["type"] for e in out] == ["message_delta", "message_stop"]
        seen.extend(out)
    assert stream.finish() == []
    assert parsed(seen)[-1]["type"] == "message_stop"


def test_an_upstream_that_sends_no_usage_completes_at_done_with_zero_usage():
    chunks = [c for c in _chunks(["Hi"], [], [], [], "stop", "none")]
    message = anthropic_message(translate(MessagesStreamTranslation("local"), [sse(chunks)]))
    assert message.content[0].text == "Hi" and message.usage.output_tokens == 0
    response = responses_final(translate(ResponsesStreamTranslation(RequestEcho()), [sse(chunks, done=False)]))
    assert response.status == "completed"


def test_nothing_is_sent_after_the_final_event():
    stream = messages_translator().stream()
    events = translate(stream, [fixture("parse_nothing.sse")])
    assert parsed(events)[-1]["type"] == "message_stop"
    late = b'data: {"choices":[{"index":0,"delta":{"content":"late"}}]}\n\n'
    assert stream.feed(late) == [] and stream.finish() == []


def test_a_mid_stream_upstream_error_becomes_the_apis_error_event():
    chunks = _chunks(["Hel"], [], [], [], "stop", "none")[:2]
    data = sse(chunks, done=False) + b'data: {"error":{"message":"model crashed","type":"server_error"}}\n\n'
    docs = parsed(translate(MessagesStreamTranslation("local"), [data]))
    assert docs[-1] == {"type": "error", "error": {"type": "api_error", "message": "model crashed"}}
    events = translate(ResponsesStreamTranslation(RequestEcho()), [data])
    docs = parsed(events)
    assert docs[-2]["type"] == "error" and docs[-2]["message"] == "model crashed"
    assert responses_final(events).status == "failed"


def test_an_older_vllm_error_chunk_is_an_error_too():
    data = b'data: {"object":"error","message":"out of memory","type":"InternalServerError","code":500}\n\n'
    docs = parsed(translate(MessagesStreamTranslation("local"), [data]))
    assert docs[-1]["error"]["message"] == "out of memory"


@pytest.mark.parametrize("garbage", [b"data: {not json\n\n", b"data: [1, 2]\n\n"])
def test_an_upstream_event_that_is_not_a_chat_chunk_is_a_protocol_error(garbage):
    docs = parsed(translate(MessagesStreamTranslation("local"), [garbage]))
    assert docs[-1]["type"] == "error" and "egress:" in docs[-1]["error"]["message"]
    assert responses_final(translate(ResponsesStreamTranslation(RequestEcho()), [garbage])).status == "failed"


def test_sse_comments_pass_through_unchanged():
    stream = MessagesStreamTranslation("local")
    assert stream.feed(b": keep-alive\n\n") == [b": keep-alive\n\n"]


def test_events_are_framed_as_the_providers_frame_them():
    for event in translate(messages_translator().stream(), [fixture("parse_pydantic_tool.sse")]):
        name, data, blank = event.split(b"\n", 2)
        assert name.startswith(b"event: ") and data.startswith(b"data: {") and blank == b"\n"


# --- servers that differ from OpenAI -----------------------------------------------------------


def _chunk(delta: dict[str, Any] | None = None, finish: str | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "id": "c",
        "model": "local",
        "created": 1,
        "choices": [{"index": 0, "delta": delta or {}, "finish_reason": finish}],
        **extra,
    }


def test_calls_that_all_reuse_index_zero_still_come_out_as_separate_calls():
    # Ollama-style: each call whole in one chunk, every one at index 0, told apart by id.
    calls = [("call_a", "Read", '{"path": "a"}'), ("call_b", "Read", '{"path": "b"}')]
    chunks = [
        _chunk({"tool_calls": [{"index": 0, "id": i, "type": "function", "function": {"name": n, "arguments": a}}]})
        for i, n, a in calls
    ]
    chunks.append(_chunk(finish="stop", usage={"prompt_tokens": 1, "completion_tokens": 2}))
    message = anthropic_message(translate(MessagesStreamTranslation("local"), [sse(chunks)]))
    assert [(b.id, b.input) for b in message.content] == [("call_a", {"path": "a"}), ("call_b", {"path": "b"})]
    assert message.stop_reason == "tool_use"  # the server said "stop", but the model called tools


def test_a_call_without_an_id_gets_one_and_usage_in_the_finish_chunk_completes_at_once():
    chunks = [
        _chunk({"tool_calls": [{"index": 0, "function": {"name": "Bash", "arguments": '{"cmd": "ls"}'}}]}),
        _chunk(finish="tool_calls", usage={"prompt_tokens": 3, "completion_tokens": 4}),
    ]
    stream = ResponsesStreamTranslation(RequestEcho())
    events = []
    for chunk in chunks:
        events += stream.feed(b"data: " + json.dumps(chunk).encode() + b"\n\n")
    assert parsed(events)[-1]["type"] == "response.completed"  # no need to wait for [DONE]
    call = responses_final(events).output[0]
    assert call.type == "function_call" and call.call_id.startswith("call_") and call.arguments == '{"cmd": "ls"}'


def test_text_after_a_tool_call_comes_after_it():
    chunks = [
        _chunk({"content": "Let me look."}),
        _chunk({"tool_calls": [{"index": 0, "id": "call_1", "function": {"name": "Read", "arguments": '{"p": 1'}}]}),
        _chunk({"content": " Done"}),  # arrives while the call's JSON is still open: held
        _chunk({"tool_calls": [{"index": 0, "function": {"arguments": "}"}}]}),
        _chunk(finish="tool_calls"),
    ]
    message = anthropic_message(translate(MessagesStreamTranslation("local"), [sse(chunks)]))
    assert [b.type for b in message.content] == ["text", "tool_use", "text"]
    assert message.content[1].input == {"p": 1} and message.content[2].text == " Done"


def test_refusal_text_is_relayed_as_text_and_content_filter_is_a_refusal():
    chunks = [_chunk({"refusal": "I can't help with that."}), _chunk(finish="content_filter")]
    message = anthropic_message(translate(MessagesStreamTranslation("local"), [sse(chunks)]))
    assert message.content[0].text == "I can't help with that." and message.stop_reason == "refusal"
    response = responses_final(translate(ResponsesStreamTranslation(RequestEcho()), [sse(chunks)]))
    assert response.status == "incomplete" and response.incomplete_details.reason == "content_filter"


class FakeClock:
    def __init__(self) -> None:
        self.now = 0

    def __call__(self) -> int:
        return self.now


@pytest.mark.parametrize("make", [MessagesStreamTranslation, lambda model, clock: ResponsesStreamTranslation(RequestEcho(model), clock)])
def test_reasoning_is_not_relayed_but_keeps_the_stream_alive(make):
    clock = FakeClock()
    stream = make("local", clock)
    stream.feed(b"data: " + json.dumps(_chunk({"role": "assistant", "content": ""})).encode() + b"\n\n")
    thinking = b"data: " + json.dumps(_chunk({"reasoning_content": "hmm"})).encode() + b"\n\n"
    assert stream.feed(thinking) == []
    clock.now += KEEPALIVE_NS - 1
    assert stream.feed(thinking) == []
    clock.now += 1
    keepalive = parsed(stream.feed(thinking))
    assert [d["type"] for d in keepalive] in (["ping"], ["response.in_progress"])
    assert stream.feed(thinking) == []  # not again until another interval has passed


def test_custom_tool_calls_come_back_as_custom_tool_call_items_with_the_raw_input():
    patch = "*** Begin Patch\n*** Add File: a.txt\n+hello\n*** End Patch"
    args = json.dumps({"input": patch})
    chunks = [
        _chunk({"content": "Patching."}),
        _chunk(
            {"tool_calls": [{"index": 0, "id": "call_p", "function": {"name": "apply_patch", "arguments": args[:9]}}]}
        ),
        _chunk({"tool_calls": [{"index": 0, "function": {"arguments": args[9:]}}]}),
        _chunk(finish="tool_calls"),
    ]
    translator = responses_translator([{"type": "custom", "name": "apply_patch", "description": "Edit files."}])
    events = translate(translator.stream(), [sse(chunks)])
    response = responses_final(events)
    item = response.output[1]
    assert item.type == "custom_tool_call" and item.input == patch and item.call_id == "call_p"
    assert item.id.startswith("ctc_")
    docs = parsed(events)
    assert [d["input"] for d in docs if d["type"] == "response.custom_tool_call_input.done"] == [patch]
    # The final response echoes the request's tools (the events before the first token do not).
    assert [t.name for t in response.tools] == ["apply_patch"]
    assert docs[0]["response"]["tools"] == []
