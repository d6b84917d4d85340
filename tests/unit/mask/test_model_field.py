"""The model's name edited in place: the mapped id into the request, the client's name back into
the answer wherever its API echoes the model, and nothing else changed, under any chunking."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from egress.core.exchange import Api
from egress.mask.model_field import ModelEcho, path_span, top_level_spans, with_model
from egress.mask.restore import Restorer
from egress.wire.apis import APIS
from egress.wire.sse import SseDecoder, data_span
from tests.support.simulator import assemble_anthropic

RECORDED = Path(__file__).resolve().parents[2] / "fixtures" / "recorded"
CLIENT = 'claude-sonnet-4-5 \u00e9"q"'  # escapes and non-ASCII: the literal is JSON-encoded


# --- the request ---------------------------------------------------------------------------------


def test_only_the_top_level_model_is_rewritten() -> None:
    body = (
        b'{"messages":[{"role":"user","content":"say \\"model\\": \\"x\\" {["}],'
        b'"tools":[{"name":"t","input_schema":{"properties":{"model":{"type":"string"}},"model":"nested"}}],'
        b' "model" :\t"claude-sonnet-4-5","stream":true}'
    )
    out = with_model(body, "eu.anthropic.claude-sonnet-4-5-20250929-v1:0")
    assert out is not None
    assert out == body.replace(b'"claude-sonnet-4-5"', b'"eu.anthropic.claude-sonnet-4-5-20250929-v1:0"')
    doc = orjson.loads(out)
    assert doc["tools"][0]["input_schema"]["model"] == "nested"


def test_a_repeated_top_level_key_has_its_first_value_rewritten() -> None:
    """The policy saw orjson's reading (the last value); its mapped id replaces the first, so a
    provider reading either is asked for the model the policy decided on."""
    body = b'{"model":"a","x":{"model":"keep"},"model":"b"}'
    assert orjson.loads(body)["model"] == "b"
    assert with_model(body, "m") == b'{"model":"m","x":{"model":"keep"},"model":"b"}'
    assert [body[s:e] for s, e in top_level_spans(body)] == [b"a", b"b"]  # both are found when asked


def test_a_key_spelled_with_escapes_cannot_be_rewritten_in_place() -> None:
    assert with_model(b'{"mod\\u0065l":"claude","x":{"model":"nested"}}', "m") is None


def test_the_mapped_id_is_json_encoded() -> None:
    out = with_model(b'{"model":"x"}', 'a"b\\c\u00e9')
    assert out is not None and orjson.loads(out)["model"] == 'a"b\\c\u00e9'


json_scalars = (
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(alphabet='am"\\{}[]:, odel\n\u00e9', max_size=8)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(["model", "a", "messages", 'm"odel']), inner, max_size=3)
    ),
    max_leaves=12,
)


@settings(max_examples=300)
@given(st.dictionaries(st.sampled_from(["messages", "tools", "a", "z"]), json_values, max_size=4), st.integers(0, 4))
def test_any_body_gets_the_mapped_id_and_nothing_else_changes(doc: dict, position: int) -> None:
    items = list(doc.items())
    items.insert(min(position, len(items)), ("model", "client-name"))
    body = b"{" + b",".join(orjson.dumps(k) + b":" + orjson.dumps(v) for k, v in items) + b"}"
    spans = top_level_spans(body)
    assert len(spans) == 1 and body[spans[0][0] : spans[0][1]] == b"client-name"
    out = with_model(body, "upstream-id")
    assert out is not None
    assert orjson.loads(out) == {**dict(items), "model": "upstream-id"}
    start = spans[0][0]
    assert out[:start] == body[:start] and out[start + len(b"upstream-id") :] == body[start + len(b"client-name") :]


# --- the answer: paths -----------------------------------------------------------------------------


def test_path_span_finds_the_nested_echo_and_not_decoys() -> None:
    raw = b'{"type":"x","message":{"content":[{"model":"no"}],"meta":{"model":"no"},"model":"yes"},"model":"top"}'
    span = path_span(raw, ("message", "model"))
    assert span is not None and raw[span[0] : span[1]] == b"yes"
    span = path_span(raw, ("model",))
    assert span is not None and raw[span[0] : span[1]] == b"top"
    assert path_span(b'{"message":{"id":"m"},"model":1}', ("message", "model")) is None
    assert path_span(b'[{"model":"x"}]', ("model",)) is None


def test_a_whole_answer_names_the_clients_model() -> None:
    echo = ModelEcho("claude-sonnet-4-5", *_paths(Api.ANTHROPIC_MESSAGES))
    raw = b'{"id":"msg_1","type":"message","content":[{"type":"text","text":"\\"model\\":\\"x\\""}],"model":"anthropic.claude-v1:0"}'
    assert echo.body(raw) == raw.replace(b"anthropic.claude-v1:0", b"claude-sonnet-4-5")
    assert echo.body(b'{"type":"error","error":{"message":"no"}}') == b'{"type":"error","error":{"message":"no"}}'


def _paths(api: Api) -> tuple[tuple[str, ...], tuple[str, ...]]:
    spec = APIS[api].model_echo
    return spec.body, spec.event


def test_every_api_that_echoes_the_model_has_its_paths() -> None:
    assert _paths(Api.ANTHROPIC_MESSAGES) == (("model",), ("message", "model"))
    assert _paths(Api.OPENAI_CHAT) == (("model",), ("model",))
    assert _paths(Api.OPENAI_RESPONSES) == (("model",), ("response", "model"))


# --- the answer: streams under any chunking --------------------------------------------------------


def _responses_stream(model: str) -> bytes:
    """A Responses stream of our own, with the model in every event that carries the response,
    and decoys: a tool whose parameter is called `model`, and the word in the text."""
    response = {"id": "resp_1", "object": "response", "status": "in_progress", "model": model, "output": []}
    tool = {"type": "function", "name": "pick", "parameters": {"properties": {"model": {"type": "string"}}}}
    events = [
        ("response.created", {"type": "response.created", "sequence_number": 0, "response": response}),
        ("response.in_progress", {"type": "response.in_progress", "sequence_number": 1, "response": response}),
        (
            "response.output_text.delta",
            {"type": "response.output_text.delta", "sequence_number": 2, "delta": 'the "model": "x"'},
        ),
        (
            "response.completed",
            {
                "type": "response.completed",
                "sequence_number": 3,
                "response": {**response, "status": "completed", "tools": [tool], "model": model},
            },
        ),
    ]
    return b"".join(b"event: " + n.encode() + b"\ndata: " + orjson.dumps(d) + b"\n\n" for n, d in events)


def _streams() -> list[tuple[Api, bytes]]:
    out = [(Api.ANTHROPIC_MESSAGES, p.read_bytes()) for p in sorted((RECORDED / "anthropic-messages").glob("*.sse"))]
    out += [(Api.OPENAI_CHAT, p.read_bytes()) for p in sorted((RECORDED / "openai-chat").glob("*.sse"))]
    out.append((Api.OPENAI_RESPONSES, _responses_stream("gpt-5-codex-2026-eu")))
    return out


STREAMS = _streams()


def _at(doc: object, path: tuple[str, ...]) -> object:
    for key in path:
        if not isinstance(doc, dict) or key not in doc:
            return None
        doc = doc[key]
    return doc


def _expected(event: bytes, path: tuple[str, ...]) -> bytes:
    """The oracle, written independently of the code: parse the event; where the value at the
    path is a string, the same bytes with that one literal (first spelled occurrence) replaced."""
    span = data_span(event)
    if span is None:
        return event
    try:
        doc = orjson.loads(event[span[0] : span[1]])
    except orjson.JSONDecodeError:
        return event
    value = _at(doc, path)
    if not isinstance(value, str):
        return event
    literal = orjson.dumps(value)
    key = b'"' + path[-1].encode() + b'":'
    at = event.index(key + literal, span[0]) + len(key)
    return event[:at] + orjson.dumps(CLIENT) + event[at + len(literal) :]


def test_the_recorded_streams_echo_a_model_where_the_paths_say() -> None:
    for api, stream in STREAMS:
        path = _paths(api)[1]
        events = SseDecoder().feed(stream)
        assert any(_expected(e, path) != e for e in events), api  # the oracle is not vacuous


@settings(max_examples=150)
@given(st.sampled_from(range(len(STREAMS))), st.lists(st.integers(min_value=1, max_value=97), max_size=40))
def test_stream_echo_under_arbitrary_chunking(which: int, cuts: list[int]) -> None:
    api, stream = STREAMS[which]
    body_path, event_path = _paths(api)
    echo = ModelEcho(CLIENT, body_path, event_path)
    decoder = SseDecoder()
    out: list[bytes] = []
    expected: list[bytes] = []
    pos = 0
    for size in [*cuts, len(stream)]:
        chunk, pos = stream[pos : pos + size], pos + size
        for event in decoder.feed(chunk):
            out.append(echo.event(event))
            expected.append(_expected(event, event_path))
    tail = decoder.finish()
    if tail:
        out.append(echo.event(tail))
        expected.append(_expected(tail, event_path))
    assert b"".join(out) == b"".join(expected)
    for event in out:  # every echo now names the client's model
        span = data_span(event)
        if span is not None and event[span[0] : span[1]].strip().startswith(b"{"):
            value = _at(orjson.loads(event[span[0] : span[1]]), event_path)
            assert value is None or value == CLIENT


@pytest.mark.parametrize("api", [Api.ANTHROPIC_COUNT_TOKENS, Api.OPENAI_RESPONSES_COMPACT])
def test_apis_that_do_not_echo_the_model_are_left_alone(api: Api) -> None:
    echo = ModelEcho(CLIENT, *_paths(api))
    raw = b'{"input_tokens":12,"model":"x"}'
    assert echo.body(raw) == raw
    assert echo.event(b"data: " + raw + b"\n\n") == b"data: " + raw + b"\n\n"


# --- with the placeholder restorer, as the relay runs them -------------------------------------------

SECRET_PH = "EGX_AWS_SECRET_abcdefghijklm"
SECRET = 'wJalr/K7MDENG"bPxRfiCY'


def _messages_stream(model: str, pieces: list[str]) -> bytes:
    def ev(name: str, data: dict) -> bytes:
        return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"

    start = {"id": "m1", "type": "message", "role": "assistant", "model": model, "content": [], "usage": {}}
    out = [ev("message_start", {"type": "message_start", "message": start})]
    out.append(
        ev(
            "content_block_start",
            {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        )
    )
    for piece in pieces:
        delta = {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": piece}}
        out.append(ev("content_block_delta", delta))
    out.append(ev("content_block_stop", {"type": "content_block_stop", "index": 0}))
    out.append(ev("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {}}))
    out.append(ev("message_stop", {"type": "message_stop"}))
    return b"".join(out)


@settings(max_examples=150)
@given(
    st.text(alphabet="ab \n\u00e9", max_size=12),
    st.lists(st.integers(min_value=1, max_value=len(SECRET_PH) + 4), min_size=1, max_size=6),
    st.lists(st.integers(min_value=1, max_value=61), max_size=30),
)
def test_echo_then_restore_under_arbitrary_chunking(prefix: str, splits: list[int], cuts: list[int]) -> None:
    """The relay's order: the echo before the restorer. The client's model name and every
    placeholder's value come back, whatever the chunking and however the placeholder is split
    across deltas."""
    text = prefix + SECRET_PH + " done"
    pieces, at = [], 0
    for size in splits:
        if at < len(text):
            pieces.append(text[at : at + size])
            at += size
    pieces.append(text[at:])
    stream = _messages_stream(MAPPED_ID, [p for p in pieces if p])
    echo = ModelEcho(CLIENT, *_paths(Api.ANTHROPIC_MESSAGES))
    restorer = Restorer().stream(Api.ANTHROPIC_MESSAGES, {SECRET_PH: SECRET})
    assert restorer is not None
    decoder, out, pos = SseDecoder(), [], 0
    for size in [*cuts, len(stream)]:
        chunk, pos = stream[pos : pos + size], pos + size
        out += [restorer.feed(echo.event(e)) for e in decoder.feed(chunk)]
    restorer.finish()
    message = assemble_anthropic(b"".join(out))
    assert message["model"] == CLIENT
    assert message["content"][0]["text"] == prefix + SECRET + " done"


MAPPED_ID = "eu.anthropic.claude-sonnet-4-5-20250929-v1:0"


def test_gemini_names_the_model_in_model_version() -> None:
    for api in (Api.GEMINI_GENERATE, Api.GEMINI_STREAM):
        assert _paths(api) == (("modelVersion",), ("modelVersion",))
    echo = ModelEcho("gemini-2.5-pro", *_paths(Api.GEMINI_STREAM))
    chunk = (
        b'data: {"candidates":[{"content":{"parts":[{"text":"modelVersion"}],"role":"model"}}],'
        b'"usageMetadata":{"promptTokenCount":3},"modelVersion":"gemini-2.5-pro-eu-001","responseId":"r1"}\r\n\r\n'
    )
    assert echo.event(chunk) == chunk.replace(b"gemini-2.5-pro-eu-001", b"gemini-2.5-pro")
    whole = b'{"candidates":[],"modelVersion":"gemini-2.5-pro-eu-001"}'
    assert echo.body(whole) == b'{"candidates":[],"modelVersion":"gemini-2.5-pro"}'
