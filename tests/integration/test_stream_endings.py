"""An answer is relayed as a success only when it is one: whole and well-formed.

- A stream that ends at a clean EOF before the API's terminal event (Anthropic `message_stop`,
  Chat `[DONE]` or every choice's finish_reason, Responses `response.completed`/`.failed`/
  `.incomplete`) ends with the API's error event `upstream_truncated`; the official SDKs raise;
  the audit says failed. A placeholder fragment held back is restored if it completes, dropped
  otherwise: the client never sees `EGX_…`.
- Malformed upstream JSON or SSE under a 200 is `upstream_protocol_error` (502): a status and
  the native body before the first byte, the in-stream error event after it.

The upstream is the simulator (real HTTP, scripted wire bytes); the clients are the SDKs.
"""

from __future__ import annotations

import json
from typing import Any

import anthropic
import httpx
import openai
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.integration.test_masking import canaries, placeholders_in
from tests.integration.test_sovereign_routing import start
from tests.support.masking import sse
from tests.support.simulator import Received, Reply, fixtures_dir

SSE_HEADERS = {"content-type": "text/event-stream; charset=utf-8"}
JSON_HEADERS = {"content-type": "application/json"}


def anthropic_sdk(gw: Any) -> anthropic.Anthropic:
    return anthropic.Anthropic(
        base_url=gw.url, api_key="sk-ant-client", default_headers={"x-egress-key": gw.key}, max_retries=0
    )


def openai_sdk(gw: Any) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=gw.url + "/v1", api_key="sk-client", default_headers={"x-egress-key": gw.key}, max_retries=0
    )


def error_code(exc: Exception) -> str | None:
    body = getattr(exc, "body", None)
    if not isinstance(body, dict):
        return None
    if isinstance(body.get("error"), dict):  # anthropic: {"type": "error", "error": {...}}
        body = body["error"]
    details = body.get("details")
    return details.get("error_code") if isinstance(details, dict) else body.get("code")


# --- the APIs' events ----------------------------------------------------------------------------


def messages_start() -> bytes:
    return sse(
        "message_start",
        {
            "type": "message_start",
            "message": {
                "id": "msg_sim", "type": "message", "role": "assistant", "model": "claude-sim", "content": [],
                "stop_reason": None, "stop_sequence": None, "usage": {"input_tokens": 5, "output_tokens": 1},
            },
        },
    ) + sse("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}})


def messages_delta(text: str) -> bytes:
    return sse("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text}})


def messages_end() -> bytes:
    return (
        sse("content_block_stop", {"type": "content_block_stop", "index": 0})
        + sse("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None}, "usage": {"output_tokens": 9}})
        + sse("message_stop", {"type": "message_stop"})
    )


CHAT_BASE = {"id": "chatcmpl-sim", "object": "chat.completion.chunk", "created": 1, "model": "gpt-sim"}


def chat_delta(text: str, finish: str | None = None) -> bytes:
    delta = {"content": text} if text else {}
    return sse(None, {**CHAT_BASE, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})


def responses_events(*deltas: str) -> bytes:
    response = {"id": "resp_sim", "object": "response", "created_at": 1, "model": "gpt-sim", "status": "in_progress", "output": []}
    item = {"type": "message", "id": "msg_sim", "status": "in_progress", "role": "assistant", "content": []}
    evs: list[tuple[str, dict[str, Any]]] = [
        ("response.created", {"response": response}),
        ("response.output_item.added", {"output_index": 0, "item": item}),
        ("response.content_part.added", {"item_id": "msg_sim", "output_index": 0, "content_index": 0, "part": {"type": "output_text", "text": "", "annotations": []}}),
    ]
    evs += [
        ("response.output_text.delta", {"item_id": "msg_sim", "output_index": 0, "content_index": 0, "delta": d, "logprobs": []})
        for d in deltas
    ]
    return b"".join(sse(name, {"type": name, **body, "sequence_number": n}) for n, (name, body) in enumerate(evs))


def cut_after_fragment(events: Any) -> Any:
    """A scripted model that cites the AWS placeholder it was sent, and whose stream stops (a
    clean EOF) right after an event ending in the placeholder's first nine characters."""

    def build(received: Received) -> list[bytes]:
        (placeholder,) = [p for p in placeholders_in(received, {"aws": _values["aws"]}) if "_AWS_" in p]
        assert placeholder.startswith("EGX_AWS_A")
        return [events(placeholder)]

    return build


_values: dict[str, str] = {}


@pytest.fixture
def aws(upstream) -> str:
    _values.clear()
    _values.update(canaries())
    return _values["aws"]


def audited_failure(gateway: Any, code: str) -> dict[str, Any]:
    (record,) = gateway.audit(1)
    assert record["outcome"] == "failed" and record["error_code"] == code, record
    return record


# --- truncated streams ---------------------------------------------------------------------------


def test_anthropic_cut_before_message_stop_raises_and_drops_the_fragment(gateway, upstream, aws):
    upstream.enqueue(
        Reply(headers=SSE_HEADERS, build=cut_after_fragment(lambda p: messages_start() + messages_delta("my key is " + p[:9])))
    )
    seen: list[str] = []
    with pytest.raises(anthropic.APIStatusError) as caught:
        with anthropic_sdk(gateway).messages.stream(
            model="claude-sonnet-4-5", max_tokens=64, messages=[{"role": "user", "content": f"my key is {aws}"}]
        ) as stream:
            for event in stream:
                if event.type == "text":
                    seen.append(event.text)
    assert error_code(caught.value) == "upstream_truncated"
    assert "".join(seen) == "my key is "  # the fragment EGX_AWS_A never reached the client
    record = audited_failure(gateway, "upstream_truncated")
    assert record["status"] == 200


def test_a_fragment_that_completes_before_the_cut_is_restored(gateway, upstream, aws):
    upstream.enqueue(
        Reply(
            headers=SSE_HEADERS,
            build=cut_after_fragment(
                lambda p: messages_start() + messages_delta("key " + p[:9]) + messages_delta(p[9:] + " ok")
            ),
        )
    )
    seen: list[str] = []
    with pytest.raises(anthropic.APIStatusError) as caught:
        with anthropic_sdk(gateway).messages.stream(
            model="claude-sonnet-4-5", max_tokens=64, messages=[{"role": "user", "content": f"my key is {aws}"}]
        ) as stream:
            for event in stream:
                if event.type == "text":
                    seen.append(event.text)
    assert error_code(caught.value) == "upstream_truncated"
    assert "".join(seen) == f"key {aws} ok"
    audited_failure(gateway, "upstream_truncated")


def test_a_whole_anthropic_stream_is_still_a_success(gateway, upstream, aws):
    upstream.enqueue(
        Reply(
            headers=SSE_HEADERS,
            build=cut_after_fragment(
                lambda p: messages_start() + messages_delta("key " + p[:9]) + messages_delta(p[9:]) + messages_end()
            ),
        )
    )
    with anthropic_sdk(gateway).messages.stream(
        model="claude-sonnet-4-5", max_tokens=64, messages=[{"role": "user", "content": f"my key is {aws}"}]
    ) as stream:
        assert stream.get_final_text() == f"key {aws}"
    (record,) = gateway.audit(1)
    assert record["outcome"] == "forwarded" and record.get("error_code") is None


def test_chat_cut_before_finish_reason_raises(gateway, upstream, aws):
    upstream.enqueue(
        Reply(headers=SSE_HEADERS, build=cut_after_fragment(lambda p: chat_delta("") + chat_delta("my key is " + p[:9])))
    )
    seen: list[str] = []
    with pytest.raises(openai.APIError) as caught:
        for chunk in openai_sdk(gateway).chat.completions.create(
            model="gpt-4o", stream=True, messages=[{"role": "user", "content": f"my key is {aws}"}]
        ):
            seen.extend(c.delta.content or "" for c in chunk.choices)
    assert error_code(caught.value) == "upstream_truncated"
    assert "".join(seen) == "my key is "
    audited_failure(gateway, "upstream_truncated")


def test_chat_that_ends_after_finish_reason_without_done_is_whole(gateway, upstream, aws):
    """Some compatible servers end the stream after the finish_reason chunk, without [DONE]:
    the answer is whole, and the official SDK reads it without complaint."""
    upstream.enqueue(
        Reply(
            headers=SSE_HEADERS,
            build=cut_after_fragment(lambda p: chat_delta("my key is " + p[:9]) + chat_delta(p[9:]) + chat_delta("", "stop")),
        )
    )
    chunks = list(
        openai_sdk(gateway).chat.completions.create(
            model="gpt-4o", stream=True, messages=[{"role": "user", "content": f"my key is {aws}"}]
        )
    )
    assert "".join(c.delta.content or "" for ch in chunks for c in ch.choices) == f"my key is {aws}"
    (record,) = gateway.audit(1)
    assert record["outcome"] == "forwarded"


def test_chat_done_before_finish_reason_is_truncated(gateway, upstream):
    """[DONE] with the choice unfinished (llama-cpp-python ends an interrupted answer so)."""
    upstream.enqueue(Reply(headers=SSE_HEADERS, chunks=[chat_delta("half an ans"), b"data: [DONE]\n\n"]))
    with pytest.raises(openai.APIError) as caught:
        list(openai_sdk(gateway).chat.completions.create(model="gpt-4o", stream=True, messages=[{"role": "user", "content": "x"}]))
    assert error_code(caught.value) == "upstream_truncated"
    audited_failure(gateway, "upstream_truncated")


def test_responses_cut_before_completed_raises(gateway, upstream, aws):
    upstream.enqueue(Reply(headers=SSE_HEADERS, build=cut_after_fragment(lambda p: responses_events("my key is ", p[:9]))))
    seen: list[str] = []
    with pytest.raises(openai.APIError) as caught:
        for event in openai_sdk(gateway).responses.create(model="gpt-5-codex", stream=True, input=f"my key is {aws}"):
            if event.type == "response.output_text.delta":
                seen.append(event.delta)
    assert error_code(caught.value) == "upstream_truncated"
    assert "".join(seen) == "my key is "
    audited_failure(gateway, "upstream_truncated")


def test_a_stream_with_no_event_at_all_is_a_native_error(gateway, upstream):
    upstream.enqueue(Reply(headers=SSE_HEADERS, chunks=[]))
    with pytest.raises(anthropic.InternalServerError) as caught:
        anthropic_sdk(gateway).messages.create(
            model="claude-sonnet-4-5", max_tokens=8, stream=True, messages=[{"role": "user", "content": "hi"}]
        )
    assert caught.value.status_code == 502 and error_code(caught.value) == "upstream_truncated"
    audited_failure(gateway, "upstream_truncated")


# --- recorded fixtures cut at any point ------------------------------------------------------------


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_cut_of_a_stream_with_placeholders(gateway, upstream, data):
    """For any split of the text into deltas and any cut point: the client's text is always a
    prefix of the restored answer (never a placeholder fragment), and it gets an error event
    exactly when the cut falls before the end of `message_stop`."""
    v = canaries()
    text_template = "first {aws} then {stripe} end"
    restored = text_template.format(**v)
    fractions = data.draw(st.lists(st.floats(0, 1), max_size=6), label="delta splits")
    cut_fraction = data.draw(st.floats(0, 1), label="cut")
    wire: dict[str, bytes] = {}

    def build(received: Received) -> list[bytes]:
        found = placeholders_in(received, v)
        masked = text_template.format(
            aws=next(p for p in found if "_AWS_" in p), stripe=next(p for p in found if "STRIPE" in p)
        )
        cuts = sorted({int(f * len(masked)) for f in fractions} | {0, len(masked)})
        deltas = [masked[a:b] for a, b in zip(cuts, cuts[1:], strict=False) if b > a]
        whole = messages_start() + b"".join(messages_delta(d) for d in deltas) + messages_end()
        wire["whole"] = whole
        return [whole[: int(cut_fraction * len(whole))]]

    upstream.enqueue(Reply(headers=SSE_HEADERS, build=build))
    body = {"model": "claude-sonnet-4-5", "max_tokens": 50, "stream": True, "messages": [{"role": "user", "content": f"{v['aws']} {v['stripe']}"}]}
    with httpx.stream("POST", gateway.url + "/v1/messages", json=body, headers={"x-egress-key": gateway.key}, timeout=20) as r:
        got = b"".join(r.iter_raw())
    whole = wire["whole"]
    terminal_end = whole.rindex(b'{"type":"message_stop"}') + len(b'{"type":"message_stop"}')
    cut = int(cut_fraction * len(whole))
    assert b"EGX_" not in got
    if r.status_code != 200:  # cut before any whole event: a native error, nothing streamed
        assert cut < terminal_end and json.loads(got)["error"]["details"]["error_code"] == "upstream_truncated"
        return
    texts, errors = [], []
    for block in got.split(b"\n\n"):
        if b"data: " not in block:
            continue
        doc = json.loads(block.split(b"data: ", 1)[1])
        if doc["type"] == "content_block_delta":
            texts.append(doc["delta"]["text"])
        elif doc["type"] == "error":
            errors.append(doc["error"]["details"]["error_code"])
    assert restored.startswith("".join(texts))
    assert errors == (["upstream_truncated"] if cut < terminal_end else [])
    if cut >= terminal_end:
        assert "".join(texts) == restored


# --- malformed answers under 200 -------------------------------------------------------------------


def test_non_json_body_under_200_is_a_protocol_error(gateway, upstream):
    upstream.enqueue(Reply(headers={"content-type": "text/html"}, chunks=[b"<html><body>proxy says hi</body></html>"]))
    with pytest.raises(anthropic.InternalServerError) as caught:
        anthropic_sdk(gateway).messages.create(model="claude-sonnet-4-5", max_tokens=8, messages=[{"role": "user", "content": "hi"}])
    assert caught.value.status_code == 502 and error_code(caught.value) == "upstream_protocol_error"
    audited_failure(gateway, "upstream_protocol_error")


@pytest.mark.parametrize("body", [b'{"id": "chatcmpl-1", "object": "chat.completion"}', b"[1, 2]", b'{"choices": '])
def test_chat_body_of_the_wrong_shape_is_a_protocol_error(gateway, upstream, body):
    upstream.enqueue(Reply(headers=JSON_HEADERS, chunks=[body]))
    with pytest.raises(openai.InternalServerError) as caught:
        openai_sdk(gateway).chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
    assert caught.value.status_code == 502 and error_code(caught.value) == "upstream_protocol_error"
    audited_failure(gateway, "upstream_protocol_error")


def test_responses_body_that_is_not_json_is_a_protocol_error(gateway, upstream):
    upstream.enqueue(Reply(headers=JSON_HEADERS, chunks=[b"not json at all"]))
    with pytest.raises(openai.InternalServerError) as caught:
        openai_sdk(gateway).responses.create(model="gpt-5-codex", input="hi")
    assert error_code(caught.value) == "upstream_protocol_error"


def test_garbage_under_event_stream_before_the_first_event_is_a_native_502(gateway, upstream):
    upstream.enqueue(Reply(headers=SSE_HEADERS, chunks=[b"<html>\n<body>Bad gateway</body>\n</html>\n\n"]))
    with pytest.raises(anthropic.InternalServerError) as caught:
        anthropic_sdk(gateway).messages.create(
            model="claude-sonnet-4-5", max_tokens=8, stream=True, messages=[{"role": "user", "content": "hi"}]
        )
    assert caught.value.status_code == 502 and error_code(caught.value) == "upstream_protocol_error"
    audited_failure(gateway, "upstream_protocol_error")


def test_a_stream_asked_for_and_json_answered_is_a_protocol_error(gateway, upstream):
    upstream.enqueue(Reply(headers=JSON_HEADERS, chunks=[b'{"type": "message", "content": []}']))
    with pytest.raises(anthropic.InternalServerError) as caught:
        anthropic_sdk(gateway).messages.create(
            model="claude-sonnet-4-5", max_tokens=8, stream=True, messages=[{"role": "user", "content": "hi"}]
        )
    assert error_code(caught.value) == "upstream_protocol_error"


@pytest.mark.parametrize(
    "bad",
    [
        b'event: content_block_delta\ndata: {"type": "content_block_delta", "index": 0, oops\n\n',
        b"event: content_block_delta\ndata: [1, 2]\n\n",
        b"<p>garbage</p>\n\n",
    ],
    ids=["json-cut", "not-an-object", "not-sse"],
)
def test_garbage_after_the_first_event_is_an_in_stream_error(gateway, upstream, bad):
    upstream.enqueue(Reply(headers=SSE_HEADERS, chunks=[messages_start() + messages_delta("hello "), bad, messages_end()]))
    seen: list[str] = []
    with pytest.raises(anthropic.APIStatusError) as caught:
        with anthropic_sdk(gateway).messages.stream(
            model="claude-sonnet-4-5", max_tokens=8, messages=[{"role": "user", "content": "hi"}]
        ) as stream:
            for event in stream:
                if event.type == "text":
                    seen.append(event.text)
    assert error_code(caught.value) == "upstream_protocol_error"
    assert seen == ["hello "]
    audited_failure(gateway, "upstream_protocol_error")


def test_chat_stream_event_that_is_not_json_raises_in_the_sdk(gateway, upstream):
    upstream.enqueue(Reply(headers=SSE_HEADERS, chunks=[chat_delta("hi"), b"data: {nope\n\n", b"data: [DONE]\n\n"]))
    with pytest.raises(openai.APIError) as caught:
        list(openai_sdk(gateway).chat.completions.create(model="gpt-4o", stream=True, messages=[{"role": "user", "content": "x"}]))
    assert error_code(caught.value) == "upstream_protocol_error"


# --- translated streams (a Chat-only self-hosted upstream) ------------------------------------------


@pytest.fixture
def routed(sims, tmp_path):
    for sim in sims.values():
        sim.reset()
    running = start(tmp_path, {name: sim.url for name, sim in sims.items()})
    yield running
    running.gateway.stop()
    running.store.close()


PROPRIETARY = {"x-egress-classification": "proprietary"}


def test_translated_chat_cut_before_finish_reason_is_a_messages_error(routed, sims):
    sims["own"].enqueue(Reply(headers=SSE_HEADERS, chunks=[chat_delta("partial answ")]))
    seen: list[str] = []
    with pytest.raises(anthropic.APIStatusError) as caught:
        with anthropic_sdk(routed).messages.stream(
            model="claude-sonnet-4-5", max_tokens=8, messages=[{"role": "user", "content": "hi"}], extra_headers=PROPRIETARY
        ) as stream:
            for event in stream:
                if event.type == "text":
                    seen.append(event.text)
    assert error_code(caught.value) == "upstream_truncated"
    assert "".join(seen) in ("", "partial answ")
    (record,) = routed.audit(1)
    assert record["endpoint"] == "own" and record["outcome"] == "failed" and record["error_code"] == "upstream_truncated"


def test_translated_chat_done_before_finish_reason_is_a_messages_error(routed, sims):
    sims["own"].enqueue(Reply(headers=SSE_HEADERS, chunks=[chat_delta("partial"), b"data: [DONE]\n\n"]))
    with pytest.raises(anthropic.APIStatusError) as caught:
        with anthropic_sdk(routed).messages.stream(
            model="claude-sonnet-4-5", max_tokens=8, messages=[{"role": "user", "content": "hi"}], extra_headers=PROPRIETARY
        ) as stream:
            list(stream)
    assert error_code(caught.value) == "upstream_truncated"
    (record,) = routed.audit(1)
    assert record["outcome"] == "failed" and record["error_code"] == "upstream_truncated"


def test_translated_chat_that_ends_after_finish_reason_is_whole(routed, sims):
    sims["own"].enqueue(Reply(headers=SSE_HEADERS, chunks=[chat_delta("all "), chat_delta("done", "stop")]))
    with anthropic_sdk(routed).messages.stream(
        model="claude-sonnet-4-5", max_tokens=8, messages=[{"role": "user", "content": "hi"}], extra_headers=PROPRIETARY
    ) as stream:
        assert stream.get_final_text() == "all done"
    (record,) = routed.audit(1)
    assert record["outcome"] == "forwarded"


def test_translated_responses_cut_is_a_responses_error(routed, sims):
    sims["own"].enqueue(Reply(headers=SSE_HEADERS, chunks=[chat_delta("partial")]))
    with pytest.raises(openai.APIError) as caught:
        list(openai_sdk(routed).responses.create(model="local-model", stream=True, input="hi", extra_headers=PROPRIETARY))
    assert error_code(caught.value) == "upstream_truncated"
    (record,) = routed.audit(1)
    assert record["outcome"] == "failed" and record["error_code"] == "upstream_truncated"


def test_translated_garbage_under_200_is_a_protocol_error(routed, sims):
    sims["own"].enqueue(Reply(headers=JSON_HEADERS, chunks=[b"<html>oops</html>"]))
    with pytest.raises(anthropic.InternalServerError) as caught:
        anthropic_sdk(routed).messages.create(
            model="claude-sonnet-4-5", max_tokens=8, messages=[{"role": "user", "content": "hi"}], extra_headers=PROPRIETARY
        )
    assert error_code(caught.value) == "upstream_protocol_error"


# --- the recorded provider streams, cut short by the simulator -------------------------------------


@pytest.mark.parametrize(
    "fixture",
    [
        "anthropic-messages/tool_use_response.sse",
        "openai-chat/parse_pydantic_tool.sse",
        "openai-responses/codex_cli_responses_fixture.sse",
    ],
)
@pytest.mark.parametrize("keep", [0.3, 0.9])
def test_recorded_streams_cut_short_raise_in_the_sdks(gateway, upstream, fixture, keep):
    size = len((fixtures_dir() / fixture).read_bytes())
    headers = {"x-sim-fixture": fixture, "x-sim-truncate": str(int(size * keep))}
    family = fixture.split("/")[0]
    with pytest.raises((anthropic.APIError, openai.APIError)) as caught:
        if family == "anthropic-messages":
            with anthropic_sdk(gateway).messages.stream(
                model="claude-sonnet-4-5", max_tokens=64, messages=[{"role": "user", "content": "hi"}], extra_headers=headers
            ) as stream:
                list(stream)
        elif family == "openai-chat":
            list(openai_sdk(gateway).chat.completions.create(model="gpt-4o", stream=True, messages=[{"role": "user", "content": "hi"}], extra_headers=headers))
        else:
            list(openai_sdk(gateway).responses.create(model="gpt-5-codex", stream=True, input="hi", extra_headers=headers))
    assert error_code(caught.value) == "upstream_truncated"
    audited_failure(gateway, "upstream_truncated")
