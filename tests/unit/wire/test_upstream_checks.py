"""What an upstream 2xx answer must be before it is relayed as a success, and when a stream is
whole: each API's observer knows its terminal event and refuses what is not its SSE."""

from __future__ import annotations

import pytest

from egress.core.errors import EgressError, ErrorCode
from egress.core.exchange import Api, Usage
from egress.wire.apis import APIS
from egress.wire.sse import SseDecoder, SseEvent, SseProtocolError, event_data
from tests.support.masking import sse
from tests.support.simulator import fixtures_dir, recorded_streams


def whole(path) -> bytes:
    data = path.read_bytes()
    return data if data.endswith(b"\n\n") else data.rstrip(b"\n") + b"\n\n"


API_OF = {"anthropic-messages": Api.ANTHROPIC_MESSAGES, "openai-chat": Api.OPENAI_CHAT, "openai-responses": Api.OPENAI_RESPONSES}
FIXTURES = recorded_streams()


@pytest.mark.parametrize("path", FIXTURES, ids=[p.name for p in FIXTURES])
def test_every_recorded_stream_is_whole_only_at_its_end(path):
    api = API_OF[path.relative_to(fixtures_dir()).parts[0]]
    events = SseDecoder().feed(whole(path))
    observer = APIS[api].stream_observer(Usage())
    for i, raw in enumerate(events):
        assert event_data(raw) == (SseEvent.parse(raw).data or "").encode() or event_data(raw) is None
        observer.observe(raw)
        if api is not Api.OPENAI_CHAT:  # Chat is whole at its finish_reason: see the next test
            assert observer.complete == (i >= last_terminal(api, events)), (i, raw[:80])
    assert observer.complete


def last_terminal(api: Api, events: list[bytes]) -> int:
    names = {Api.ANTHROPIC_MESSAGES: b"message_stop", Api.OPENAI_RESPONSES: b"response.completed"}
    return max(i for i, raw in enumerate(events) if names[api] in raw.split(b"\n", 1)[0])


BASE = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m"}


def chunk(index: int, content: str | None, finish: str | None = None) -> bytes:
    delta = {"content": content} if content is not None else {}
    return sse(None, {**BASE, "choices": [{"index": index, "delta": delta, "finish_reason": finish}]})


def test_chat_is_whole_at_done_or_once_every_choice_finished():
    observer = APIS[Api.OPENAI_CHAT].stream_observer(Usage())
    for raw, complete in [
        (chunk(0, "a"), False),
        (chunk(1, "b"), False),
        (chunk(0, None, "stop"), False),  # choice 1 still open
        (chunk(1, None, "stop"), True),
        (sse(None, {**BASE, "choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 2}}), True),
        (b"data: [DONE]\n\n", True),
    ]:
        observer.observe(raw)
        assert observer.complete is complete
    assert observer.usage.input_tokens == 3


def test_a_providers_own_error_event_ends_the_stream():
    for api, raw in [
        (Api.ANTHROPIC_MESSAGES, sse("error", {"type": "error", "error": {"type": "overloaded_error", "message": "x"}})),
        (Api.OPENAI_CHAT, sse(None, {"error": {"message": "x", "type": "server_error"}})),
        (Api.OPENAI_RESPONSES, sse("error", {"type": "error", "code": "x", "message": "x", "sequence_number": 1})),
    ]:
        observer = APIS[api].stream_observer(Usage())
        observer.observe(raw)
        assert observer.complete


@pytest.mark.parametrize("api", [Api.ANTHROPIC_MESSAGES, Api.OPENAI_CHAT, Api.OPENAI_RESPONSES])
@pytest.mark.parametrize(
    "raw",
    [
        b"<html>\n<body>502 Bad Gateway</body>\n</html>\n\n",
        b"event: x\ndata: {\"type\": \"x\", \n\n",
        b"data: [1, 2]\n\n",
        b"data: \"text\"\n\n",
    ],
    ids=["html", "json-cut", "array", "string"],
)
def test_garbage_events_are_protocol_errors(api, raw):
    with pytest.raises(EgressError) as caught:
        APIS[api].stream_observer(Usage()).observe(raw)
    assert caught.value.code is ErrorCode.UPSTREAM_PROTOCOL_ERROR and caught.value.status == 502


def test_typed_apis_need_a_type():
    for api in (Api.ANTHROPIC_MESSAGES, Api.OPENAI_RESPONSES):
        with pytest.raises(EgressError):
            APIS[api].stream_observer(Usage()).observe(b'data: {"no": "type"}\n\n')


def test_comments_and_field_only_events_pass():
    for api in (Api.ANTHROPIC_MESSAGES, Api.OPENAI_CHAT, Api.OPENAI_RESPONSES):
        observer = APIS[api].stream_observer(Usage())
        for raw in (b": keep-alive\n\n", b"retry: 100\n\n", b"id: 7\n\n", b"event: ping\n\n"):
            observer.observe(raw)
        assert not observer.complete


def test_event_data():
    assert event_data(b"event: a\ndata: {}\n\n") == b"{}"
    assert event_data(b"data:{}\n\n") == b"{}"
    assert event_data(b"event: a\r\ndata: {}\r\n\r\n") == b"{}"
    assert event_data(b"data: a\ndata: b\n\n") == b"a\nb"
    assert event_data(b": comment\n\n") is None and event_data(b"event: a\n\n") is None
    with pytest.raises(SseProtocolError):
        event_data(b"HTTP/1.1 502 Bad Gateway\n\n")


@pytest.mark.parametrize(
    ("api", "good", "bad"),
    [
        (Api.ANTHROPIC_MESSAGES, b'{"type": "message", "content": []}', b'{"type": "message"}'),
        (Api.ANTHROPIC_COUNT_TOKENS, b'{"input_tokens": 12}', b'{"input_tokens": "12"}'),
        (Api.OPENAI_CHAT, b'{"choices": []}', b'{"object": "chat.completion"}'),
        (Api.OPENAI_RESPONSES, b'{"output": []}', b'{"object": "response"}'),
        (Api.OPENAI_RESPONSES_COMPACT, b'{"output": []}', b"[]"),
    ],
)
def test_bodies_of_the_wrong_shape_are_protocol_errors(api, good, bad):
    check = APIS[api].check_body
    check(good)
    for body in (bad, b"", b"<html>", b'{"truncated": '):
        with pytest.raises(EgressError) as caught:
            check(body)
        assert caught.value.code is ErrorCode.UPSTREAM_PROTOCOL_ERROR


def test_an_unterminated_last_event_counts_only_with_its_data():
    from egress.wire.upstream_checks import whole_tail

    assert whole_tail(b'event: message_stop\ndata: {"type":"message_stop"}') == b'event: message_stop\ndata: {"type":"message_stop"}\n\n'
    assert whole_tail(b'data: {"a": 1}\n') == b'data: {"a": 1}\n\n'
    assert whole_tail(b"event: response.output_i") is None  # cut inside the event line
    assert whole_tail(b"event: message_stop\n") is None  # cut before its data
    assert whole_tail(b"eve") is None
    assert whole_tail(b'data: {"type":"mess') == b'data: {"type":"mess\n\n'  # the observer refuses it


def test_chat_done_with_an_unfinished_choice_is_truncated():
    """llama-cpp-python ends an interrupted answer with [DONE] and no finish_reason."""
    for before in ([chunk(0, "half an ans")], [], [chunk(0, "a", "stop"), chunk(1, "b")]):
        observer = APIS[Api.OPENAI_CHAT].stream_observer(Usage())
        for raw in before:
            observer.observe(raw)
        with pytest.raises(EgressError) as caught:
            observer.observe(b"data: [DONE]\n\n")
        assert caught.value.code is ErrorCode.UPSTREAM_TRUNCATED
    observer = APIS[Api.OPENAI_CHAT].stream_observer(Usage())
    observer.observe(sse(None, {"error": {"message": "x"}}))  # the provider's own error, then [DONE]
    observer.observe(b"data: [DONE]\n\n")
    assert observer.complete
