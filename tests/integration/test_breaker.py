"""The breaker end to end: after three failures an endpoint's circuit opens, a request is refused
at once with a message that says so (and when the endpoint is retried), nothing is tried; after
the short cool-down one probe goes through, and its success closes the circuit."""

from __future__ import annotations

import time

import anthropic
import pytest

from tests.support.simulator import Reply

MESSAGE = {"model": "claude-sonnet-4-5", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}


def test_open_circuit_refuses_without_trying_then_a_probe_closes_it(gateway, upstream):
    client = anthropic.Anthropic(base_url=gateway.url, api_key=gateway.key, max_retries=0)
    health = gateway.gateway.app.pipeline.router.health
    for _ in range(3):
        upstream.enqueue(Reply(status=503, headers={"content-type": "application/json"}, chunks=[b'{"type":"error","error":{"type":"overloaded_error","message":"busy"}}']))
        with pytest.raises(anthropic.APIStatusError):
            client.messages.create(**MESSAGE)
    assert len(upstream.received) == 3
    assert health.circuit("sim-anthropic") == "open"

    with pytest.raises(anthropic.APIStatusError) as caught:
        client.messages.create(**MESSAGE)
    message = caught.value.body["error"]["message"]
    assert "circuit open after 3 recent failures; retried in" in message
    assert "could be reached" not in message and "could not be reached" not in message
    assert len(upstream.received) == 3  # not tried
    (*_, record) = gateway.audit(4)
    assert record["upstream_attempts"] == 0

    time.sleep(health.retry_in("sim-anthropic") + 0.1)  # the short cool-down (5 s)
    assert health.circuit("sim-anthropic") == "half_open"
    reply = client.messages.create(**MESSAGE)  # the probe: the simulator answers again
    assert reply.content and len(upstream.received) == 4
    assert health.circuit("sim-anthropic") == "closed"
    client.messages.create(**MESSAGE)
    assert len(upstream.received) == 5
