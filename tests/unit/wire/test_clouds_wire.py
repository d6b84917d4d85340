"""Bedrock and Vertex mappings of Anthropic Messages (egress/wire/bedrock.py, vertex.py), sans-IO."""

from __future__ import annotations

import json
import random

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from egress.core.errors import EgressError, ErrorCode
from egress.wire import bedrock, cloud_body, vertex
from egress.wire.eventstream import Header, encode_message
from egress.wire.sse import SseDecoder, event_data
from tests.support.bedrock_sim import chunk_frame, exception_frame, sse_events
from tests.support.simulator import recorded_streams
from tests.support.vertex_sim import VERTEX_EVENT

REQUEST = {
    "model": "claude-sonnet-4-5",
    "max_tokens": 64,
    "stream": True,
    "system": [{"type": "text", "text": "be brief", "cache_control": {"type": "ephemeral"}}],
    "thinking": {"type": "enabled", "budget_tokens": 1024},
    "tools": [{"name": "ls", "input_schema": {"type": "object"}}],
    "messages": [{"role": "user", "content": "hi"}],
}


def test_bedrock_body_drops_model_and_stream_and_keeps_the_rest():
    betas = "claude-code-20250219, interleaved-thinking-2025-05-14,context-1m-2025-08-07,oauth-2025-04-20"
    out = orjson.loads(bedrock.request_body(orjson.dumps(REQUEST), betas))
    assert out["anthropic_version"] == "bedrock-2023-05-31"
    assert "model" not in out and "stream" not in out
    # Only the betas Bedrock knows: Anthropic-API-only flags would be refused ("invalid beta flag").
    assert out["anthropic_beta"] == ["interleaved-thinking-2025-05-14", "context-1m-2025-08-07"]
    for key in ("system", "thinking", "tools", "messages", "max_tokens"):
        assert out[key] == REQUEST[key]  # cache_control, thinking and tools pass as they are


def test_bedrock_body_keeps_the_clients_own_anthropic_beta():
    doc = {**REQUEST, "anthropic_beta": ["x"]}
    assert orjson.loads(bedrock.request_body(orjson.dumps(doc), "y"))["anthropic_beta"] == ["x"]
    assert "anthropic_beta" not in orjson.loads(bedrock.request_body(orjson.dumps(REQUEST), None))
    assert "anthropic_beta" not in orjson.loads(bedrock.request_body(orjson.dumps(REQUEST), "claude-code-20250219"))


def test_bedrock_path_encodes_the_model_id_into_one_segment():
    assert bedrock.invoke_path("eu.anthropic.claude-sonnet-4-5-20250929-v1:0", True) == (
        "/model/eu.anthropic.claude-sonnet-4-5-20250929-v1%3A0/invoke-with-response-stream"
    )
    arn = "arn:aws:bedrock:eu-central-1:123456789012:inference-profile/eu.anthropic.claude-x-v1:0"
    assert bedrock.invoke_path(arn, False) == (
        "/model/arn%3Aaws%3Abedrock%3Aeu-central-1%3A123456789012%3Ainference-profile%2Feu.anthropic.claude-x-v1%3A0/invoke"
    )


@pytest.mark.parametrize(
    ("status", "header", "body", "want_status", "want_type", "want_message"),
    [
        (
            429,
            "ThrottlingException:http://internal",
            b'{"message":"Too many requests"}',
            429,
            "rate_limit_error",
            "Too many requests",
        ),
        (503, "ServiceUnavailableException", b'{"message":"busy"}', 529, "overloaded_error", "busy"),
        (
            400,
            "ValidationException",
            b'{"message":"Extra inputs are not permitted"}',
            400,
            "invalid_request_error",
            "Extra inputs are not permitted",
        ),
        (403, "AccessDeniedException", b'{"Message":"no"}', 403, "permission_error", "no"),
        (500, None, b"<html>", 500, "api_error", "Bedrock answered HTTP 500"),
    ],
)
def test_bedrock_errors_become_anthropic_errors(status, header, body, want_status, want_type, want_message):
    known = bedrock.exception_class(header) if header else None
    got_status, raw = bedrock.error_answer(known[0] if known else status, header, body)
    assert got_status == want_status
    assert orjson.loads(raw) == {"type": "error", "error": {"type": want_type, "message": want_message}}


def test_bedrock_error_already_in_anthropic_shape_is_kept():
    raw = b'{"type":"error","error":{"type":"invalid_request_error","message":"invalid beta flag"}}'
    assert bedrock.error_answer(400, None, raw) == (400, raw)


def _frames(path) -> tuple[bytes, list[bytes]]:
    events = sse_events(path.read_bytes())
    rng = random.Random(7)
    return b"".join(chunk_frame(e, rng) for e in events), events


@pytest.mark.parametrize("path", recorded_streams("anthropic-messages/*.sse"), ids=lambda p: p.name)
def test_bedrock_stream_becomes_the_recorded_anthropic_events(path):
    stream, events = _frames(path)
    out = bedrock.StreamTranslator().feed(stream)
    sse = SseDecoder().feed(out)
    assert [event_data(e) for e in sse] == events  # each event's JSON byte for byte
    for raw, data in zip(sse, events, strict=True):
        assert raw.startswith(b"event: " + json.loads(data)["type"].encode() + b"\n")


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(recorded_streams("anthropic-messages/*.sse")), st.data())
def test_bedrock_stream_translation_does_not_depend_on_chunking(path, data):
    stream, _ = _frames(path)
    whole = bedrock.StreamTranslator().feed(stream)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=20)))
    translator = bedrock.StreamTranslator()
    pieces = [translator.feed(stream[a:b]) for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
    assert b"".join(pieces) + translator.finish() == whole


def test_bedrock_exception_frame_is_anthropics_error_event():
    out = bedrock.StreamTranslator().feed(exception_frame("throttlingException", "Too many tokens, please wait."))
    assert out == (
        b'event: error\ndata: {"type":"error","error":{"type":"rate_limit_error","message":"Too many tokens, please wait."}}\n\n'
    )
    unmodelled = encode_message(
        (
            Header.string(":message-type", "error"),
            Header.string(":error-code", "InternalFailure"),
            Header.string(":error-message", "oops"),
        ),
        b"",
    )
    assert b'"api_error","message":"oops"' in bedrock.StreamTranslator().feed(unmodelled)


def test_bedrock_bad_crc_and_bad_chunks_are_protocol_errors():
    frame = chunk_frame(b'{"type":"ping"}', random.Random(1))
    with pytest.raises(EgressError, match="message CRC mismatch") as caught:
        bedrock.StreamTranslator().feed(frame[:-1] + bytes([frame[-1] ^ 1]))
    assert caught.value.code is ErrorCode.UPSTREAM_PROTOCOL_ERROR
    not_base64 = encode_message(
        (Header.string(":message-type", "event"), Header.string(":event-type", "chunk")), b'{"bytes":"@@@"}'
    )
    with pytest.raises(EgressError, match="not base64"):
        bedrock.StreamTranslator().feed(not_base64)
    cut = bedrock.StreamTranslator()
    assert cut.feed(frame[:-3]) == b""
    with pytest.raises(EgressError, match="ended inside the message"):
        cut.finish()


def test_bedrock_chunk_with_metrics_keeps_them_in_the_event():
    frame = chunk_frame(b'{"type":"message_stop"}', random.Random(1), {"inputTokenCount": 1})
    out = bedrock.StreamTranslator().feed(frame)
    assert out.startswith(b"event: message_stop\n")
    assert json.loads(event_data(out))["amazon-bedrock-invocationMetrics"] == {"inputTokenCount": 1}


# --- Vertex ------------------------------------------------------------------------------------------


def test_vertex_body_and_path():
    out = orjson.loads(vertex.request_body(orjson.dumps(REQUEST)))
    assert out["anthropic_version"] == "vertex-2023-10-16"
    assert "model" not in out and out["stream"] is True
    assert out["system"] == REQUEST["system"] and out["thinking"] == REQUEST["thinking"]
    assert vertex.predict_path("claude-sonnet-4-5@20250929", True) == (
        "/publishers/anthropic/models/claude-sonnet-4-5@20250929:streamRawPredict"
    )
    assert vertex.predict_path("claude-sonnet-4-5@20250929", False).endswith(":rawPredict")


@pytest.mark.parametrize(
    ("status", "body", "want_type", "want_message"),
    [
        (
            429,
            b'{"error":{"code":429,"message":"Quota exceeded","status":"RESOURCE_EXHAUSTED"}}',
            "rate_limit_error",
            "Quota exceeded",
        ),
        (429, b'[{"error":{"code":429,"message":"Quota","status":"RESOURCE_EXHAUSTED"}}]', "rate_limit_error", "Quota"),
        (
            401,
            b'{"error":{"code":401,"message":"bad token","status":"UNAUTHENTICATED"}}',
            "authentication_error",
            "bad token",
        ),
        (503, b"upstream connect error", "overloaded_error", "Vertex AI answered HTTP 503"),
    ],
)
def test_vertex_errors_become_anthropic_errors(status, body, want_type, want_message):
    _, raw = vertex.error_answer(status, body)
    assert orjson.loads(raw) == {"type": "error", "error": {"type": want_type, "message": want_message}}


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(recorded_streams("anthropic-messages/*.sse")), st.data())
def test_vertex_event_is_dropped_under_any_chunking(path, data):
    original = path.read_bytes().rstrip(b"\n") + b"\n\n"
    cut = original.rfind(b"event: message_stop")
    stream = original[:cut] + VERTEX_EVENT + original[cut:]
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=20)))
    flt = vertex.StreamFilter()
    out = b"".join(flt.feed(stream[a:b]) for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True))
    assert out + flt.finish() == original


# --- the body edit on the bytes (egress/wire/cloud_body.py) ------------------------------------------

_json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**31), 2**31) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=10,
)


@settings(max_examples=300, deadline=None)
@given(
    model=st.text(max_size=30),
    middle=st.dictionaries(
        st.text(max_size=10).filter(lambda k: k not in ("model", "stream")), _json_values, min_size=1, max_size=4
    ),
    stream=st.sampled_from([None, True, False]),
    spaced=st.booleans(),
    drop_stream=st.booleans(),
)
def test_byte_edit_gives_the_same_document_as_parsing(model, middle, stream, spaced, drop_stream):
    doc = {"model": model, **middle, **({"stream": stream} if stream is not None else {})}
    body = json.dumps(doc, indent=1 if spaced else None, ensure_ascii=spaced).encode()
    added = {"anthropic_version": "v", "anthropic_beta": ["b"]}
    got = orjson.loads(cloud_body.mapped_body(body, added, drop_stream))
    want = {k: v for k, v in doc.items() if k != "model" and not (drop_stream and k == "stream")}
    assert got == {**want, **added}


def test_byte_edit_takes_the_fast_path_for_claude_codes_shape():
    body = b'{"model":"claude-sonnet-4-5","messages":[{"role":"user","content":"a \\"model\\": x"}],"stream":true}'
    out = cloud_body.mapped_body(body, {"anthropic_version": "v"}, drop_stream=True)
    assert out == b'{"anthropic_version":"v","messages":[{"role":"user","content":"a \\"model\\": x"}]}'
