"""OpenTelemetry traces, exported over OTLP/HTTP to a receiver the test runs (the official
protobuf definitions decode what arrives): one server span per request with the GenAI
conventions' attributes and egress's own, one child span per stage with its real times, and no
canary (a credential in the prompt, a header value, a query value) anywhere in the bytes sent.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import anthropic
import httpx
import pytest

from tests.conftest import Running, start_gateway
from tests.support.gateway import write_config
from tests.support.otlp_receiver import OtlpReceiver, ReceivedSpan
from tests.support.simulator import UpstreamSimulator

CANARY_KEY = "AKIAQYLPMN5HHHFPZAM2"  # shaped like an AWS key: found and masked
CANARY = "canary-3f9e2d71b0c4"
# The client's own trace context (W3C): the request's span joins that trace, under that span.
TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


@pytest.fixture(scope="module")
def receiver() -> Iterator[OtlpReceiver]:
    running = OtlpReceiver().start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def traced(
    sim: UpstreamSimulator, receiver: OtlpReceiver, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Running, OtlpReceiver]]:
    tmp: Path = tmp_path_factory.mktemp("tracing")
    config = write_config(tmp, sim.url, tracing={"enabled": True, "endpoint": receiver.url, "schedule_delay_s": 0.05})
    running = start_gateway(config, user="tess", team="payments")
    sdk = anthropic.Anthropic(
        base_url=running.url,
        api_key=f"sk-ant-{CANARY}",
        default_headers={"x-egress-key": running.key, "x-canary": CANARY},
        max_retries=0,
    )
    sdk.messages.create(
        model="claude-sonnet-4-5",
        max_tokens=16,
        messages=[{"role": "user", "content": f"deploy with {CANARY_KEY} ({CANARY})"}],
        extra_query={"canary": CANARY},
    )
    with sdk.messages.stream(
        model="claude-sonnet-4-5", max_tokens=16, messages=[{"role": "user", "content": f"stream {CANARY}"}]
    ) as stream:
        stream.get_final_text()
    r = httpx.post(
        running.url + "/v1/messages",
        json={"model": CANARY},
        headers={"x-egress-key": "egk_" + CANARY, "traceparent": TRACEPARENT},
    )
    assert r.status_code == 401
    running.audit(expect=3)
    running.stop()  # shutting down sends every queued span
    yield running, receiver


def requests_of(receiver: OtlpReceiver) -> list[ReceivedSpan]:
    return [s for s in receiver.spans if s.name.startswith("chat")]


def test_one_span_per_request_with_genai_and_egress_attributes(traced) -> None:
    running, receiver = traced
    assert receiver.content_types and all(t == "application/x-protobuf" for t in receiver.content_types)
    roots = requests_of(receiver)
    assert len(roots) == 3
    records = {r["request_id"]: r for r in running.audit(expect=3)}
    first = next(s for s in roots if s.attributes.get("gen_ai.request.stream") is False)
    assert first.name == "chat claude-sonnet-4-5"
    assert first.kind == 2  # SPAN_KIND_SERVER
    assert first.resource["service.name"] == "egress"
    a = first.attributes
    record = records[a["egress.request_id"]]
    assert a["gen_ai.operation.name"] == "chat"
    assert a["gen_ai.system"] == a["gen_ai.provider.name"] == "simulated_anthropic"
    assert a["gen_ai.request.model"] == a["gen_ai.response.model"] == "claude-sonnet-4-5"
    assert a["gen_ai.usage.input_tokens"] == record["usage"]["input_tokens"] > 0
    assert a["gen_ai.usage.output_tokens"] == record["usage"]["output_tokens"] > 0
    assert a["egress.decision"] == record["decision"]["action"]
    assert a["egress.jurisdiction"] == "US" and a["egress.endpoint"] == "sim-anthropic"
    assert a["egress.findings.total"] == record["findings"]["total"] >= 1
    assert a["egress.findings.secret"] >= 1
    assert a["egress.masked.count"] == record["masked"]["count"] >= 1
    assert a["egress.outcome"] == "forwarded" and a["http.response.status_code"] == 200
    assert "user" not in " ".join(a)  # never the user
    refused = next(s for s in roots if s.attributes["egress.outcome"] == "refused")
    assert refused.attributes["error.type"] == "unauthorized"
    assert refused.status_code == 2  # STATUS_CODE_ERROR
    assert (refused.trace_id.hex(), refused.parent_span_id.hex()) == (TRACEPARENT[3:35], TRACEPARENT[36:52])
    assert all(s.parent_span_id == b"" for s in roots if s is not refused)
    assert len({s.trace_id for s in roots}) == 3


def test_child_spans_per_stage_nest_inside_their_request(traced) -> None:
    _, receiver = traced
    first = next(s for s in requests_of(receiver) if s.attributes.get("gen_ai.request.stream") is False)
    children = [s for s in receiver.spans if s.trace_id == first.trace_id and s is not first]
    names = [s.name for s in children]
    assert {"egress.inspect", "egress.decide", "egress.mask", "egress.forward", "egress.restore"} <= set(names)
    by_id = {s.span_id: s for s in [first, *children]}
    forward = next(s for s in children if s.name == "egress.forward")
    for span in children:
        parent = by_id[span.parent_span_id]
        # Restoring the answer happens inside forwarding; every other stage is the request's own.
        assert parent is (forward if span.name == "egress.restore" else first), span.name
        assert parent.start_ns <= span.start_ns <= span.end_ns <= parent.end_ns, span.name
    decide = next(s for s in children if s.name == "egress.decide")
    assert decide.end_ns <= forward.start_ns


def test_no_canary_anywhere_in_what_was_exported(traced) -> None:
    _, receiver = traced
    everything = b"".join(receiver.bodies)
    assert everything
    for canary in (CANARY, CANARY_KEY, "x-canary"):
        assert canary.encode() not in everything, canary
