"""Protocol fidelity through a running gateway: what the client sends reaches the provider
unchanged (but for the credential swap), and what the provider answers reaches the client
unchanged, for every recorded stream."""

from __future__ import annotations

import json

import httpx
import orjson
import pytest

from tests.support.simulator import fixtures_dir, recorded_streams

ALL_FIXTURES = [str(p.relative_to(fixtures_dir())) for p in recorded_streams()]

ROUTE = {
    "anthropic-messages": (
        "/v1/messages?beta=true",
        {"model": "claude-sonnet-4-5", "max_tokens": 100, "messages": [{"role": "user", "content": "hi"}]},
    ),
    "openai-chat": ("/v1/chat/completions", {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}),
    "openai-responses": ("/v1/responses", {"model": "gpt-5-codex", "input": "hi"}),
}


def call(gateway, path, body: bytes, headers=None, stream=False):
    h = {"content-type": "application/json", "x-egress-key": gateway.key, **(headers or {})}
    return httpx.post(gateway.url + path, content=body, headers=h, timeout=20)


@pytest.mark.parametrize("fixture", ALL_FIXTURES)
def test_stream_reaches_client_byte_identical(gateway, upstream, fixture):
    path, doc = ROUTE[fixture.split("/")[0]]
    expected = (fixtures_dir() / fixture).read_bytes()
    expected = expected if expected.endswith(b"\n\n") else expected.rstrip(b"\n") + b"\n\n"
    with httpx.stream(
        "POST",
        gateway.url + path,
        json={**doc, "stream": True},
        timeout=20,
        headers={"x-egress-key": gateway.key, "x-sim-fixture": fixture},
    ) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        assert "content-length" not in r.headers
        assert r.headers["request-id"] == "req_sim"  # provider headers are forwarded
        body = b"".join(r.iter_raw())
    assert body == expected
    (record,) = gateway.audit(1)
    assert record["outcome"] == "forwarded" and record["status"] == 200 and record["bytes_out"] == len(expected)


@pytest.mark.parametrize("fixture", [f for f in ALL_FIXTURES if "incomplete" not in f])
def test_non_stream_answer_reaches_client_unchanged(gateway, upstream, fixture):
    path, doc = ROUTE[fixture.split("/")[0]]
    body = orjson.dumps(doc)
    via = call(gateway, path, body, {"x-sim-fixture": fixture})
    direct = httpx.post(
        upstream.url + path, content=body, headers={"x-sim-fixture": fixture, "content-type": "application/json"}
    )
    assert via.status_code == direct.status_code == 200
    assert via.content == direct.content
    assert via.headers["content-length"] == str(len(direct.content))


def test_request_body_and_headers_arrive_unchanged(gateway, upstream):
    body = json.dumps(
        {
            "model": "claude-opus-4-1",
            "max_tokens": 10,
            "stream": False,
            "system": [
                {"type": "text", "text": "x-anthropic-billing-header: cc_version=2.1.332.ab;"},
                {"type": "text", "text": "You are Claude Code.", "cache_control": {"type": "ephemeral"}},
            ],
            "messages": [
                {
                    "role": "user",
                    "content": [{"type": "text", "text": "hi", "cache_control": {"type": "ephemeral", "ttl": "1h"}}],
                }
            ],
            "context_management": {"edits": [{"type": "clear_tool_uses_20250919"}]},
            "some_future_field": {"nested": [1, 2.50, "x"]},
        },
        indent=1,
    ).encode()  # unusual whitespace and number formatting must survive too
    headers = {
        "anthropic-version": "2023-06-01",
        "anthropic-beta": "claude-code-20250219,some-future-beta-2027-01-01",
        "anthropic-dangerous-direct-browser-access": "true",
        "x-claude-code-session-id": "5d9f2c1e-0000-4000-8000-000000000001",
        "x-stainless-retry-count": "0",
        "user-agent": "claude-cli/2.1.332 (external, cli)",
        "x-api-key": "sk-ant-client-own-key",
        "connection": "keep-alive, x-hop",
        "x-hop": "must-not-pass",
    }
    r = call(gateway, "/v1/messages?beta=true", body, headers)
    assert r.status_code == 200
    (received,) = upstream.received
    assert received.body == body  # byte-equal: nothing masked, nothing re-serialised
    assert received.path == "/v1/messages" and received.query == "beta=true"
    for name in (
        "anthropic-version",
        "anthropic-beta",
        "anthropic-dangerous-direct-browser-access",
        "x-claude-code-session-id",
        "x-stainless-retry-count",
        "user-agent",
    ):
        assert received.header(name) == headers[name], name
    assert received.header("x-egress-key") is None  # the gateway credential never leaves
    assert received.header("x-api-key") == "sk-ant-upstream-secret-0001"  # the endpoint's credential
    assert received.header("x-hop") is None  # named in Connection: hop-by-hop
    assert received.header("accept-encoding") == "identity"
    (record,) = gateway.audit(1)
    assert record["client"] == "claude-code"
    assert record["session_id"] == headers["x-claude-code-session-id"]
    import hashlib

    assert record["upstream_body_sha256"] == hashlib.sha256(body).hexdigest()
    assert record["usage"]["input_tokens"] == 11
    # The audit holds no header value, credential or body text.
    raw = json.dumps(record)
    for secret in ("sk-ant-client-own-key", "sk-ant-upstream-secret-0001", gateway.key, "You are Claude Code."):
        assert secret not in raw


def test_gateway_key_as_bearer_token_is_consumed(gateway, upstream):
    r = httpx.post(
        gateway.url + "/v1/chat/completions",
        json={"model": "gpt-4o", "messages": []},
        headers={"authorization": f"Bearer {gateway.key}"},
    )
    assert r.status_code == 200
    (received,) = upstream.received
    assert received.header("authorization") == "Bearer sk-upstream-openai-0002"


def test_upstream_error_status_body_and_headers_are_forwarded_unmodified(gateway, upstream):
    from tests.support.simulator import Reply

    error = (
        b'{"type":"error","error":{"type":"rate_limit_error","message":"Number of request tokens has '
        b'exceeded your per-minute rate limit"},"request_id":"req_011"}'
    )
    upstream.enqueue(
        Reply(
            status=429,
            headers={
                "content-type": "application/json",
                "retry-after": "17",
                "anthropic-ratelimit-requests-remaining": "0",
            },
            chunks=[error],
        )
    )
    r = call(gateway, "/v1/messages", orjson.dumps({**ROUTE["anthropic-messages"][1], "stream": True}))
    assert r.status_code == 429
    assert r.content == error
    assert r.headers["retry-after"] == "17" and r.headers["anthropic-ratelimit-requests-remaining"] == "0"
    (record,) = gateway.audit(1)
    assert record["outcome"] == "forwarded" and record["upstream_status"] == 429 and record["status"] == 429


def test_count_tokens_compact_and_models(gateway, upstream):
    r = call(gateway, "/v1/messages/count_tokens?beta=true", orjson.dumps(ROUTE["anthropic-messages"][1]))
    assert r.status_code == 200 and "input_tokens" in r.json()
    r = call(gateway, "/v1/responses/compact", orjson.dumps({"model": "gpt-5-codex", "input": []}))
    assert r.status_code == 200 and r.json()["output"][0]["type"] == "compaction"
    assert [x.path for x in upstream.received] == ["/v1/messages/count_tokens", "/v1/responses/compact"]
    models = httpx.get(gateway.url + "/v1/models?limit=1000")
    assert models.status_code == 200 and {m["id"] for m in models.json()["data"]} == {"o4-mini"}
    hello = httpx.head(gateway.url + "/api/hello")
    assert hello.status_code == 200
    assert len(upstream.received) == 2  # answered locally
    records = gateway.audit(2)
    assert [r["api"] for r in records] == ["anthropic.count_tokens", "openai.responses_compact"]
    assert records[0]["usage"]["input_tokens"] == r.json().get("input_tokens", records[0]["usage"]["input_tokens"])


def test_health_and_readiness(gateway):
    assert httpx.get(gateway.url + "/healthz").json() == {"status": "ok"}
    ready = httpx.get(gateway.url + "/readyz").json()
    assert ready["status"] == "ready" and ready["failing"] == []
    assert set(ready["checks"]) == {"audit", "keyring", "policy", "recording", "approval_sweep", "store"}
    assert all(check["ok"] for check in ready["checks"].values())
    assert ready["audit_backlog"] >= 0 and ready["audit_uncovered"] >= 0
