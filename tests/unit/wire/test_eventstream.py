"""AWS event-stream framing (egress/wire/eventstream.py): encode, decode, CRC checks, chunking.

botocore's own decoder (`botocore.eventstream.EventStreamBuffer`) is the independent reference:
what egress encodes, botocore decodes to the same headers and payload.
"""

from __future__ import annotations

import base64
import struct
import zlib

import pytest
from botocore.eventstream import EventStreamBuffer
from hypothesis import given, settings
from hypothesis import strategies as st

from egress.wire.eventstream import (
    EventStreamDecoder,
    EventStreamError,
    Header,
    HeaderType,
    Message,
    decode_all,
    encode_message,
)

# The message_stop frame of docs/clouds.md (146 bytes), written out byte by byte.
STOP_PAYLOAD = b'{"bytes":"eyJ0eXBlIjoibWVzc2FnZV9zdG9wIn0=","p":"abcd"}'
STOP_HEADERS = (
    Header.string(":event-type", "chunk"),
    Header.string(":content-type", "application/json"),
    Header.string(":message-type", "event"),
)


def test_known_frame_bytes():
    frame = encode_message(STOP_HEADERS, STOP_PAYLOAD)
    assert len(frame) == 146
    assert frame[:12] == bytes.fromhex("00000092 0000004b 2fea3301")
    assert frame[-4:] == bytes.fromhex("42b72480")
    (message,) = decode_all(frame)
    assert message.header(":event-type") == "chunk"
    assert base64.b64decode(__import__("json").loads(message.payload)["bytes"]) == b'{"type":"message_stop"}'


def test_botocore_decodes_what_we_encode():
    headers = (
        *STOP_HEADERS,
        Header("flag", HeaderType.BOOL_TRUE, True),
        Header("n", HeaderType.LONG, -(2**40)),
        Header("b", HeaderType.BYTES, b"\x00\xff"),
    )
    frame = encode_message(headers, b"payload")
    buf = EventStreamBuffer()
    buf.add_data(frame)
    (theirs,) = list(buf)
    assert theirs.payload == b"payload"
    assert theirs.headers[":event-type"] == "chunk"
    assert theirs.headers["flag"] is True
    assert theirs.headers["n"] == -(2**40)
    assert theirs.headers["b"] == b"\x00\xff"


def _corrupt(frame: bytes, index: int) -> bytes:
    return frame[:index] + bytes([frame[index] ^ 0x01]) + frame[index + 1 :]


def test_bad_prelude_crc_is_refused_precisely():
    frame = encode_message(STOP_HEADERS, STOP_PAYLOAD)
    with pytest.raises(
        EventStreamError, match=r"prelude CRC mismatch in the message at byte 0: the frame says 0x2fea3300"
    ):
        decode_all(frame[:11] + bytes([frame[11] ^ 1]) + frame[12:])


def test_bad_message_crc_is_refused_precisely():
    first = encode_message(STOP_HEADERS, b"{}")
    frame = encode_message(STOP_HEADERS, STOP_PAYLOAD)
    decoder = EventStreamDecoder()
    assert len(decoder.feed(first)) == 1
    with pytest.raises(EventStreamError, match=rf"message CRC mismatch in the message at byte {len(first)}"):
        decoder.feed(_corrupt(frame, 100))  # a payload byte
    with pytest.raises(EventStreamError):  # stays failed
        decoder.feed(first)


def test_impossible_lengths_and_truncation():
    prelude = struct.pack(">II", 10, 0)
    with pytest.raises(EventStreamError, match="cannot hold"):
        decode_all(prelude + struct.pack(">I", zlib.crc32(prelude)) + b"\0" * 4)
    frame = encode_message(STOP_HEADERS, STOP_PAYLOAD)
    with pytest.raises(EventStreamError, match=r"ended inside the message at byte 0 \(145 bytes of it arrived\)"):
        decode_all(frame[:-1])


def test_unknown_header_type_is_refused():
    headers = b"\x01a\x0b"  # name "a", type 11
    prelude = struct.pack(">II", 16 + len(headers), len(headers))
    body = prelude + struct.pack(">I", zlib.crc32(prelude)) + headers
    frame = body + struct.pack(">I", zlib.crc32(body))
    with pytest.raises(EventStreamError, match="unknown header type 11"):
        decode_all(frame)


def test_encoder_refuses_values_that_do_not_fit():
    with pytest.raises(EventStreamError, match="does not fit"):
        encode_message((Header("x", HeaderType.BYTE, 300),), b"")
    with pytest.raises(EventStreamError, match="UUID is 16 bytes"):
        encode_message((Header("x", HeaderType.UUID, b"short"),), b"")


# --- properties -----------------------------------------------------------------------------------

_names = st.text(min_size=1, max_size=20).filter(lambda s: 0 < len(s.encode()) < 256)
_INT_RANGES = {
    HeaderType.BYTE: 7,
    HeaderType.SHORT: 15,
    HeaderType.INTEGER: 31,
    HeaderType.LONG: 63,
    HeaderType.TIMESTAMP: 63,
}


@st.composite
def headers(draw: st.DrawFn) -> Header:
    kind = draw(st.sampled_from(list(HeaderType)))
    name = draw(_names)
    if kind is HeaderType.BOOL_TRUE:
        return Header(name, kind, True)
    if kind is HeaderType.BOOL_FALSE:
        return Header(name, kind, False)
    if kind in _INT_RANGES:
        bits = _INT_RANGES[kind]
        return Header(name, kind, draw(st.integers(-(2**bits), 2**bits - 1)))
    if kind is HeaderType.UUID:
        return Header(name, kind, draw(st.binary(min_size=16, max_size=16)))
    if kind is HeaderType.STRING:
        return Header(name, kind, draw(st.text(max_size=50)))
    return Header(name, kind, draw(st.binary(max_size=50)))


messages = st.builds(Message, st.lists(headers(), max_size=5).map(tuple), st.binary(max_size=300))


@settings(max_examples=200, deadline=None)
@given(st.lists(messages, max_size=6), st.data())
def test_round_trip_under_arbitrary_chunking(msgs: list[Message], data: st.DataObject):
    stream = b"".join(encode_message(m.headers, m.payload) for m in msgs)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=12)))
    decoder = EventStreamDecoder()
    out: list[Message] = []
    for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True):
        out += decoder.feed(stream[a:b])
    decoder.finish()
    assert out == msgs
    assert b"".join(encode_message(m.headers, m.payload) for m in out) == stream


@settings(max_examples=200, deadline=None)
@given(messages, st.data())
def test_any_flipped_bit_is_refused_or_decodes_differently_never_silently(msg: Message, data: st.DataObject):
    frame = encode_message(msg.headers, msg.payload)
    index = data.draw(st.integers(0, len(frame) - 1))
    bit = data.draw(st.integers(0, 7))
    bad = frame[:index] + bytes([frame[index] ^ (1 << bit)]) + frame[index + 1 :]
    # CRC32 detects every single-bit error: a flipped bit is always an EventStreamError.
    with pytest.raises(EventStreamError):
        decode_all(bad)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_garbage_raises_only_event_stream_errors(garbage: bytes):
    try:
        decode_all(garbage)
    except EventStreamError:
        pass
