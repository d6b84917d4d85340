"""SSE framing: any split of any recorded stream yields the same events, byte for byte."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from egress.wire.sse import SseDecoder, SseEvent
from tests.support.simulator import fixtures_dir, recorded_streams

FIXTURES = recorded_streams()


def decode(chunks: list[bytes]) -> tuple[list[bytes], bytes]:
    decoder = SseDecoder()
    events: list[bytes] = []
    for chunk in chunks:
        events.extend(decoder.feed(chunk))
    return events, decoder.finish()


def split_at(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    return [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]


def test_fixtures_are_present():
    assert len(FIXTURES) >= 26, f"expected the 26 recorded streams under {fixtures_dir()}"


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_whole_fixture_frames_into_its_events(path: Path):
    data = path.read_bytes()
    events, tail = decode([data])
    assert b"".join(events) + tail == data
    # Every complete event ends with a blank line and carries a data field.
    for raw in events:
        assert raw.endswith(b"\n\n")
        assert SseEvent.parse(raw).data is not None
    # Files documented as lacking a final blank line leave their last event as the tail.
    assert tail == b"" or SseEvent.parse(tail).data is not None


@settings(max_examples=60, deadline=None)
@given(data=st.data())
@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_any_split_yields_the_same_events(path: Path, data):
    raw = path.read_bytes()
    cuts = data.draw(st.lists(st.integers(min_value=0, max_value=len(raw)), max_size=60))
    reference = decode([raw])
    assert decode(split_at(raw, cuts)) == reference


def test_one_byte_at_a_time_matches_whole():
    raw = (fixtures_dir() / "anthropic-messages/recorded_tool_runner_turn2_text.sse").read_bytes()
    assert decode([raw[i : i + 1] for i in range(len(raw))]) == decode([raw])


@settings(max_examples=300, deadline=None)
@given(
    events=st.lists(
        st.tuples(
            st.sampled_from([None, "message", "content_block_delta"]),
            st.text(alphabet=st.characters(blacklist_characters="\r\n", blacklist_categories=["Cs"]), max_size=30),
        ),
        min_size=1,
        max_size=8,
    ),
    newline=st.sampled_from([b"\n", b"\r\n", b"\r"]),
    cuts=st.lists(st.integers(min_value=0, max_value=2000), max_size=20),
)
def test_any_line_ending_and_split(events, newline, cuts):
    """LF, CRLF and CR endings, split anywhere (between CR and LF, inside UTF-8 sequences)."""
    wire = b""
    expected = []
    for name, payload in events:
        raw = b""
        if name:
            raw += b"event: " + name.encode() + newline
        raw += b"data: " + payload.encode() + newline + newline
        wire += raw
        expected.append((name, payload))
    got, tail = decode(split_at(wire, cuts))
    if newline == b"\r" and tail:
        # A stream that ends on CR cannot know whether LF follows until it ends.
        got.append(tail)
        tail = b""
    assert tail == b""
    assert b"".join(got) == wire
    assert [(SseEvent.parse(r).event, SseEvent.parse(r).data) for r in got] == expected


def test_comments_and_multiline_data():
    wire = b": keep-alive\n\nevent: x\ndata: a\ndata: b\n\n"
    events, tail = decode([wire])
    assert tail == b""
    assert [SseEvent.parse(e).comment_only for e in events] == [True, False]
    assert SseEvent.parse(events[1]).data == "a\nb"
