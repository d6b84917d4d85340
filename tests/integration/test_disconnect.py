"""A client that goes away mid-stream: the upstream request is cancelled and the audit says so."""

from __future__ import annotations

import socket
import time

import orjson

from tests.support.simulator import Reply

EVENT = (
    b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,'
    b'"delta":{"type":"text_delta","text":"tick"}}\n\n'
)


def open_stream_request(gateway) -> socket.socket:
    """A raw connection that has sent a streaming Messages request; closing it is the disconnect."""
    body = orjson.dumps({"model": "claude-sonnet-4-5", "max_tokens": 10, "stream": True, "messages": []})
    host, port = gateway.url.removeprefix("http://").split(":")
    s = socket.create_connection((host, int(port)), timeout=10)
    s.sendall(
        b"POST /v1/messages HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\nx-egress-key: "
        + gateway.key.encode()
        + b"\r\ncontent-length: "
        + str(len(body)).encode()
        + b"\r\n\r\n"
        + body
    )
    return s


def test_client_disconnect_mid_stream_cancels_upstream(gateway, upstream):
    upstream.enqueue(Reply(headers={"content-type": "text/event-stream"}, chunks=[EVENT] * 200, delay_s=0.05))
    with open_stream_request(gateway) as s:
        received = b""
        while received.count(b"tick") < 3:
            received += s.recv(65536)
    # The socket is closed: the gateway must notice, stop relaying and cancel the upstream call.
    deadline = time.monotonic() + 5
    while not upstream.received[0].cancelled and time.monotonic() < deadline:
        time.sleep(0.02)
    assert upstream.received[0].cancelled
    (record,) = gateway.audit(1)
    assert record["outcome"] == "cancelled"
    assert record["status"] == 200 and 0 < record["bytes_out"] < 200 * len(EVENT)


def test_client_disconnect_while_upstream_is_silent(gateway, upstream):
    upstream.enqueue(Reply(headers={"content-type": "text/event-stream"}, hang_s=10, chunks=[EVENT]))
    with open_stream_request(gateway):
        deadline = time.monotonic() + 5
        while not upstream.received and time.monotonic() < deadline:
            time.sleep(0.02)
    start = time.monotonic()
    (record,) = gateway.audit(1, timeout=5)
    assert time.monotonic() - start < 4  # not after the upstream's 10 s
    assert record["outcome"] == "cancelled" and record["status"] is None
    deadline = time.monotonic() + 5
    while not upstream.received[0].cancelled and time.monotonic() < deadline:
        time.sleep(0.02)
    assert upstream.received[0].cancelled
