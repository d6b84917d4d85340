"""OpenTelemetry traces, off by default: one span per request and one child span per stage,
exported over OTLP/HTTP (protobuf) by a batching background thread.

Spans are built when the request has ended, from its audit record and its stage timings
(telemetry/request.py), with their real start and end times: the request path keeps two
timestamps per stage and creates no span while it runs.

Attributes follow the OpenTelemetry GenAI conventions (gen_ai.operation.name, gen_ai.system and
its successor gen_ai.provider.name, gen_ai.request.model, gen_ai.response.model,
gen_ai.usage.input_tokens / output_tokens) plus egress's own (egress.*: decision, outcome,
jurisdiction, endpoint, findings and masked counts). Invariant: a span holds ids, names from the
configuration, counts and times, never a prompt, a value, a header or a query string; the model
name is the one the audit record holds.
"""

from __future__ import annotations

import time
from typing import Any

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode, set_span_in_context

from egress.core.audit_record import AuditRecord
from egress.core.endpoint import Endpoint
from egress.telemetry.request import RequestMarks
from egress.telemetry.settings import TracingSettings


def provider_name(endpoint: Endpoint) -> str:
    """gen_ai.provider.name: the operator, as the conventions spell well-known ones."""
    return endpoint.operator.strip().lower().replace(" ", "_")


def response_model(endpoint: Endpoint | None, model: str | None) -> str | None:
    """The model the upstream was asked for: the endpoint's mapping of the client's name, if any."""
    if endpoint is None or model is None:
        return model
    return endpoint.model_map.get(model) or endpoint.upstream_model or model


class Tracing:
    def __init__(
        self, settings: TracingSettings, endpoints: tuple[Endpoint, ...], provider: TracerProvider | None = None
    ) -> None:
        if provider is None:
            provider = TracerProvider(resource=Resource.create({"service.name": settings.service_name}))
            exporter = OTLPSpanExporter(endpoint=settings.endpoint, timeout=settings.export_timeout_s)
            provider.add_span_processor(
                BatchSpanProcessor(
                    exporter,
                    max_queue_size=settings.max_queue_size,
                    schedule_delay_millis=settings.schedule_delay_s * 1000,
                    export_timeout_millis=settings.export_timeout_s * 1000,
                )
            )
        self.provider = provider
        self.tracer = provider.get_tracer("egress")
        self._endpoints = {e.name: e for e in endpoints}
        # perf_counter nanoseconds + this = Unix-epoch nanoseconds (spans carry epoch times).
        self._epoch_offset = time.time_ns() - time.perf_counter_ns()

    def close(self) -> None:
        """Send what is queued, then stop the exporter (at shutdown)."""
        self.provider.shutdown()

    def emit(self, record: AuditRecord, marks: RequestMarks | None, started_ns: int, finished_ns: int) -> None:
        offset = self._epoch_offset
        endpoint = self._endpoints.get(record.endpoint) if record.endpoint is not None else None
        model = record.model
        name = f"chat {model}" if model else "chat"
        span = self.tracer.start_span(
            name, kind=SpanKind.SERVER, attributes=self._attributes(record, endpoint), start_time=started_ns + offset
        )
        if record.error_code is not None:
            span.set_status(Status(StatusCode.ERROR))
        if marks is not None and marks.stages:
            parents: list[Any] = []
            root = set_span_in_context(span)
            for stage in marks.stages:
                context = root if stage.parent < 0 else set_span_in_context(parents[stage.parent])
                child = self.tracer.start_span(
                    f"egress.{stage.name}", context=context, start_time=stage.start_ns + offset
                )
                parents.append(child)
            for child, stage in zip(parents, marks.stages, strict=True):
                child.end(end_time=(stage.end_ns or finished_ns) + offset)
        span.end(end_time=finished_ns + offset)

    @staticmethod
    def _attributes(record: AuditRecord, endpoint: Endpoint | None) -> dict[str, Any]:
        decision = record.decision
        findings = record.findings
        masked = record.masked
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": "chat",
            "egress.request_id": record.request_id,
            "egress.api": str(record.api),
            "egress.outcome": str(record.outcome),
            "egress.decision": str(decision.action) if decision is not None and decision.action else "none",
            "egress.findings.total": findings.total if findings is not None else 0,
            "egress.masked.count": masked.count if masked is not None else 0,
            "egress.upstream_attempts": record.upstream_attempts or 0,
        }
        if findings is not None:
            for kind, count in findings.kinds.items():
                attributes[f"egress.findings.{kind}"] = count
        if record.model is not None:
            attributes["gen_ai.request.model"] = record.model
        if record.stream is not None:
            attributes["gen_ai.request.stream"] = record.stream
        if endpoint is not None:
            provider = provider_name(endpoint)
            attributes["gen_ai.system"] = provider
            attributes["gen_ai.provider.name"] = provider
            attributes["egress.endpoint"] = endpoint.name
            attributes["egress.jurisdiction"] = endpoint.jurisdiction
            attributes["egress.region"] = endpoint.region
            mapped = response_model(endpoint, record.model)
            if mapped is not None and record.upstream_status is not None:
                attributes["gen_ai.response.model"] = mapped
        if record.team is not None:
            attributes["egress.team"] = record.team
        if record.status is not None:
            attributes["http.response.status_code"] = record.status
        if record.error_code is not None:
            attributes["error.type"] = record.error_code
        usage = record.usage
        if usage is not None:
            if usage.input_tokens is not None:
                attributes["gen_ai.usage.input_tokens"] = usage.input_tokens
            if usage.output_tokens is not None:
                attributes["gen_ai.usage.output_tokens"] = usage.output_tokens
        return attributes
