"""Spans from a finished request's record and stage marks (an in-memory exporter stands in for
OTLP here; tests/integration/test_tracing.py exports to a real receiver)."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from egress.core.audit_record import AuditRecord, Decision, Findings
from egress.core.endpoint import Endpoint
from egress.telemetry.request import RequestMarks
from egress.telemetry.settings import TracingSettings
from egress.telemetry.tracing import Tracing, parse_traceparent

ENDPOINT = Endpoint.model_validate(
    {
        "name": "eu",
        "api": "anthropic",
        "base_url": "https://eu.example",
        "models": ["claude-*"],
        "credentials": {"env": "K"},
        "operator": "Example Cloud",
        "jurisdiction": "EU",
        "region": "eu-west",
        "retention_days": 0,
        "trains_on_api_data": False,
        "dpa": True,
        "model_map": {"claude-sonnet-4-5": "eu.claude-sonnet-4-5-v1"},
    }
)


def test_a_request_span_with_its_stages_and_the_mapped_response_model() -> None:
    exporter = InMemorySpanExporter()
    tracing = Tracing(TracingSettings(enabled=True), (ENDPOINT,), SimpleSpanProcessor(exporter))
    marks = RequestMarks()
    marks.open("decide")
    marks.close()
    marks.open("forward")
    marks.open("restore")
    marks.close()
    # forward never closed (the request was cancelled): it ends with the request
    record = AuditRecord(
        v=3,
        request_id="egr_1",
        ts=1.0,
        outcome="cancelled",
        api="anthropic.messages",
        model="claude-sonnet-4-5",
        endpoint="eu",
        upstream_status=200,
        upstream_attempts=1,
        decision=Decision(action="allow", id="d"),
        findings=Findings(kinds={"pii": 2}, rules={"email": 2}, total=2),
    )
    tracing.emit(record, marks, marks.stages[0].start_ns - 1000, marks.stages[-1].end_ns + 1000)
    spans = {s.name: s for s in exporter.get_finished_spans()}
    root = spans["chat claude-sonnet-4-5"]
    assert root.attributes["gen_ai.response.model"] == "eu.claude-sonnet-4-5-v1"
    assert root.attributes["gen_ai.provider.name"] == "example_cloud"
    assert root.attributes["egress.findings.pii"] == 2
    assert spans["egress.decide"].parent.span_id == root.context.span_id
    assert spans["egress.restore"].parent.span_id == spans["egress.forward"].context.span_id
    assert spans["egress.forward"].end_time == root.end_time
    assert {s.context.trace_id for s in spans.values()} == {root.context.trace_id}
    assert root.resource.attributes["service.name"] == "egress"


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        (b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", True),
        (b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00", True),
        (b"00-00000000000000000000000000000000-00f067aa0ba902b7-01", False),
        (b"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", False),
        (b"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", False),
        (b"00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01", False),
        (b"00-+bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", False),
        (b"sk-ant-api03-not-a-trace-context", False),
        (b"", False),
    ],
)
def test_traceparent_is_taken_only_when_well_formed(value: bytes, ok: bool) -> None:
    context = parse_traceparent(value)
    assert (context is not None) is ok
    if context is not None:
        assert context.is_remote and format(context.trace_id, "032x") == value[3:35].decode()


def test_a_client_traceparent_puts_the_request_in_the_clients_trace() -> None:
    exporter = InMemorySpanExporter()
    tracing = Tracing(TracingSettings(enabled=True), (), SimpleSpanProcessor(exporter))
    record = AuditRecord(v=3, request_id="egr_2", ts=1.0, outcome="refused", api="openai.responses")
    tracing.emit(record, None, 1, 2, b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
    (span,) = exporter.get_finished_spans()
    assert format(span.context.trace_id, "032x") == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert span.parent is not None and format(span.parent.span_id, "016x") == "00f067aa0ba902b7"
