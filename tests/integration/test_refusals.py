"""Bad input and broken upstreams: a native, precise error, an audit record, no crash, no hang."""

from __future__ import annotations

import socket
import time

import httpx
import orjson
import pytest
import yaml

from egress.gateway.auth import new_key
from tests.support.gateway import ThreadedGateway, free_port, write_config
from tests.support.simulator import Reply

MESSAGES = {"model": "claude-sonnet-4-5", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}
CHAT = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}


def post(gateway, path, content: bytes, headers=None, key=True):
    h = {"content-type": "application/json"}
    if key:
        h["x-egress-key"] = gateway.key
    h.update(headers or {})
    return httpx.post(gateway.url + path, content=content, headers=h, timeout=20)


def assert_anthropic_error(r, status: int, error_type: str, code: str):
    assert r.status_code == status
    body = r.json()
    assert body["type"] == "error"
    assert body["error"]["type"] == error_type
    assert body["error"]["details"]["error_code"] == code
    assert body["error"]["message"].startswith("egress: ")
    assert body["request_id"] == r.headers["request-id"]
    assert r.headers["x-should-retry"] == "false"


def assert_openai_error(r, status: int, code: str):
    assert r.status_code == status
    error = r.json()["error"]
    assert error["code"] == code and error["message"].startswith("egress: ") and "type" in error
    assert r.headers["x-should-retry"] == "false"


CASES = [
    # (name, body, headers, status, anthropic error type, code)
    ("malformed json", b'{"model": "claude-x", "messages": [', {}, 400, "invalid_request_error", "invalid_json"),
    ("invalid utf-8", b'{"model": "claude-\xc3\x28"}', {}, 400, "invalid_request_error", "invalid_utf8"),
    ("not an object", b'"hello"', {}, 400, "invalid_request_error", "invalid_request"),
    (
        "wrong content type",
        orjson.dumps(MESSAGES),
        {"content-type": "text/plain"},
        415,
        "invalid_request_error",
        "unsupported_media_type",
    ),
    ("unknown model", orjson.dumps({**MESSAGES, "model": "llama-3"}), {}, 400, "invalid_request_error", "no_route"),
]


@pytest.mark.parametrize(("name", "body", "headers", "status", "etype", "code"), CASES, ids=[c[0] for c in CASES])
def test_bad_requests_are_refused_natively_and_audited(gateway, upstream, name, body, headers, status, etype, code):
    r = post(gateway, "/v1/messages", body, headers)
    assert_anthropic_error(r, status, etype, code)
    assert upstream.received == []
    (record,) = gateway.audit(1)
    assert record["outcome"] == "refused" and record["error_code"] == code and record["status"] == status
    assert record["user"] == ("alice" if code not in ("unsupported_media_type",) else None)


def test_openai_shape_for_openai_endpoints(gateway, upstream):
    r = post(gateway, "/v1/chat/completions", b"{oops")
    assert_openai_error(r, 400, "invalid_json")
    r = post(gateway, "/v1/responses", orjson.dumps({"model": "claude-x", "input": "hi"}))
    assert_openai_error(r, 400, "no_route")  # an Anthropic model is not served over the OpenAI API
    assert upstream.received == []


def test_missing_unknown_and_revoked_keys(gateway, upstream):
    r = post(gateway, "/v1/messages", orjson.dumps(MESSAGES), key=False)
    assert_anthropic_error(r, 401, "authentication_error", "unauthorized")
    r = post(gateway, "/v1/messages", orjson.dumps(MESSAGES), {"x-egress-key": "egk_not-a-real-key"})
    assert_anthropic_error(r, 401, "authentication_error", "unauthorized")
    secret, key = new_key("bob", None)
    gateway.store.create_key(key)
    time.sleep(0.3)  # unknown-key lookups refresh the key cache at most four times a second
    assert post(gateway, "/v1/messages", orjson.dumps(MESSAGES), {"x-egress-key": secret}).status_code == 200
    gateway.store.revoke_key(key.key_id, 1.0)
    time.sleep(0.5)  # revocation takes effect within auth.key_refresh_s (0.2 s in tests)
    r = post(gateway, "/v1/messages", orjson.dumps(MESSAGES), {"x-egress-key": secret})
    assert_anthropic_error(r, 401, "authentication_error", "unauthorized")
    records = gateway.audit(4)
    assert [r["outcome"] for r in records] == ["refused", "refused", "forwarded", "refused"]
    assert records[2]["user"] == "bob"
    assert len(upstream.received) == 1


def test_body_over_the_limit(gateway, upstream, tmp_path):
    big = orjson.dumps({**MESSAGES, "pad": "x" * 40_000})
    gw = ThreadedGateway.from_file(write_config(tmp_path, upstream.url, server={"max_body_bytes": 32_768}))
    gw.start()
    try:
        secret, key = new_key("alice", None)
        store = gw.app.pipeline.keyring._store
        store.create_key(key)
        r = httpx.post(
            gw.url + "/v1/messages", content=big, headers={"x-egress-key": secret, "content-type": "application/json"}
        )
        assert_anthropic_error(r, 413, "request_too_large", "payload_too_large")

        def chunks():  # no Content-Length: the limit is enforced while reading
            for i in range(0, len(big), 4096):
                yield big[i : i + 4096]

        r = httpx.post(
            gw.url + "/v1/messages",
            content=chunks(),
            headers={"x-egress-key": secret, "content-type": "application/json"},
        )
        assert_anthropic_error(r, 413, "request_too_large", "payload_too_large")
    finally:
        gw.stop()
    assert upstream.received == []


def test_slow_client_body_times_out(gateway, upstream):
    host, port = gateway.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=15) as s:
        s.sendall(
            b"POST /v1/messages HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
            b"x-egress-key: " + gateway.key.encode() + b'\r\ncontent-length: 1000\r\n\r\n{"model":'
        )
        data = s.recv(65536)  # the gateway's body timeout in the test config is 5 s
    assert data.startswith(b"HTTP/1.1 408")
    assert b'"error_code":"request_timeout"' in data
    assert upstream.received == []


def test_slow_client_headers_are_cut_off(gateway, upstream):
    host, port = gateway.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=15) as s:
        s.sendall(b"POST /v1/messages HTTP/1.1\r\nhost: x\r\n")
        started = time.monotonic()
        for _ in range(20):  # one more header byte every 0.1 s: never finishing
            s.sendall(b"x")
            time.sleep(0.1)
            try:
                s.settimeout(0.01)
                if s.recv(1) == b"":
                    break
            except TimeoutError:
                continue
            except ConnectionResetError:
                break
            finally:
                s.settimeout(15)
        else:
            s.settimeout(5)
            assert s.recv(1) == b""  # closed by the gateway (test config: 2 s header deadline)
        assert time.monotonic() - started < 4.5
    assert upstream.received == []


def test_unknown_path_and_method(gateway, upstream):
    r = httpx.get(gateway.url + "/v1/messages", headers={"anthropic-version": "2023-06-01"})
    assert_anthropic_error(r, 405, "invalid_request_error", "method_not_allowed")
    r = httpx.post(gateway.url + "/v1/embeddings", json={})
    assert_openai_error(r, 404, "not_found")
    r = httpx.post(gateway.url + "/v1/../etc/passwd", json={})
    assert r.status_code == 404
    assert upstream.received == []


def test_upstream_unreachable_is_a_native_retryable_error(gateway, upstream, tmp_path):
    dead = f"http://127.0.0.1:{free_port()}"
    gw = ThreadedGateway.from_file(write_config(tmp_path, dead, auth={"required": False}))
    gw.start()
    try:
        r = httpx.post(gw.url + "/v1/messages", json=MESSAGES)
        assert r.status_code == 502
        assert r.json()["error"]["details"]["error_code"] == "upstream_unavailable"
        assert r.headers["x-should-retry"] == "true"
        r = httpx.post(gw.url + "/v1/chat/completions", json=CHAT)
        assert r.status_code == 502 and r.json()["error"]["code"] == "upstream_unavailable"
    finally:
        gw.stop()


def test_upstream_breaking_mid_stream_ends_with_in_stream_error(gateway, upstream):
    start = (
        b'event: message_start\ndata: {"type":"message_start","message":{"id":"m","type":"message",'
        b'"role":"assistant","content":[],"model":"x","usage":{"input_tokens":3,"output_tokens":1}}}\n\n'
        b'event: content_block_start\ndata: {"type":"content_block_start","index":0,'
        b'"content_block":{"type":"text","text":""}}\n\n'
    )
    upstream.enqueue(
        Reply(
            headers={"content-type": "text/event-stream", "content-length": "100000"}, chunks=[start], close_after=True
        )
    )
    r = post(gateway, "/v1/messages", orjson.dumps({**MESSAGES, "stream": True}))
    assert r.status_code == 200
    assert r.content.startswith(start)
    tail = r.content[len(start) :]
    assert tail.startswith(b"event: error\ndata: ")
    err = orjson.loads(tail.split(b"data: ", 1)[1])
    assert err["type"] == "error" and err["error"]["details"]["error_code"] == "upstream_protocol_error"
    (record,) = gateway.audit(1)
    assert record["outcome"] == "failed" and record["error_code"] == "upstream_protocol_error"
    assert record["usage"]["input_tokens"] == 3


def test_responses_stream_error_continues_sequence_numbers(gateway, upstream):
    created = (
        b'event: response.created\ndata: {"type":"response.created","sequence_number":0,"response":{"id":"r"}}\n\n'
    )
    upstream.enqueue(
        Reply(
            headers={"content-type": "text/event-stream", "content-length": "100000"},
            chunks=[created],
            close_after=True,
        )
    )
    r = post(gateway, "/v1/responses", orjson.dumps({"model": "gpt-5", "input": "hi", "stream": True}))
    events = [e for e in r.content.split(b"\n\n") if e]
    assert events[1].startswith(b"event: error")
    assert orjson.loads(events[1].split(b"data: ")[1])["sequence_number"] == 1
    failed = orjson.loads(events[2].split(b"data: ")[1])
    assert failed["type"] == "response.failed" and failed["sequence_number"] == 2
    assert failed["response"]["error"]["code"] == "upstream_protocol_error"


def test_failover_goes_only_to_another_allowed_endpoint(upstream, tmp_path):
    dead = f"http://127.0.0.1:{free_port()}"
    path = write_config(tmp_path, upstream.url, auth={"required": False})
    doc = yaml.safe_load(path.read_text())
    first = dict(doc["providers"][0], name="dead-anthropic", base_url=dead)
    doc["providers"].insert(0, first)
    path.write_text(yaml.safe_dump(doc))
    gw = ThreadedGateway.from_file(path)
    gw.start()
    try:
        r = httpx.post(gw.url + "/v1/messages", json=MESSAGES)
        assert r.status_code == 200
    finally:
        gw.stop()
    assert len(upstream.received) == 1
