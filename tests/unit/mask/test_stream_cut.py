"""A stream cut short: what the restorer still holds at the end is dropped, never released.

For any text of placeholders, fragments and ordinary characters, split into deltas anywhere, and
any cut after a whole event: the restored deltas the client got are a prefix of the restored
text, and no part of an issued placeholder that was never completed goes out."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from egress.core.exchange import Api
from egress.mask.restore import Restorer
from egress.wire.sse import SseDecoder
from tests.support.masking import sse
from tests.unit.mask.test_stream_restore import MAP, restore_plain, split, texts


def deltas_wire(parts: list[str]) -> list[bytes]:
    start = sse("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}})
    return [start] + [
        sse("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": p}})
        for p in parts
    ]


def delta_texts(wire: bytes) -> str:
    out = []
    for raw in SseDecoder().feed(wire):
        doc = json.loads(raw.split(b"data: ", 1)[1])
        if doc["type"] == "content_block_delta":
            out.append(doc["delta"]["text"])
    return "".join(out)


@settings(max_examples=300, deadline=None)
@given(text=texts, cuts=st.lists(st.integers(0, 400), max_size=6), keep=st.integers(0, 12))
def test_a_cut_stream_releases_no_fragment(text, cuts, keep):
    events = deltas_wire(split(text, cuts))
    restorer = Restorer().stream(Api.ANTHROPIC_MESSAGES, MAP)
    sent = b"".join(restorer.feed(raw) for raw in events[: keep + 1])
    assert restorer.finish() == b""
    got = delta_texts(sent)
    assert restore_plain(text).startswith(got)
    for placeholder in MAP:
        for n in range(1, len(placeholder)):
            # a fragment may only show where the model itself wrote those characters
            if placeholder[:n] in got:
                assert placeholder[:n] in restore_plain(text)
