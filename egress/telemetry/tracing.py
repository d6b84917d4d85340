"""OpenTelemetry traces, off by default: one span per request and one child span per stage,
exported over OTLP/HTTP (protobuf) by a batching background thread.

Spans are built when the request has ended, from its audit record and its stage timings
(telemetry/request.py), with their real start and end times: the request path keeps two
timestamps per stage and creates no span while it runs. Children are handed to the processor
before their parent, as a tracer would end them. A client that sends a W3C `traceparent`
gets the request's spans in its own trace, under its span.

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
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags

from egress.core.audit_record import AuditRecord
from egress.core.endpoint import Endpoint
from egress.telemetry.request import RequestMarks
from egress.telemetry.settings import TracingSettings

_SAMPLED = TraceFlags(TraceFlags.SAMPLED)
# telemetry.sdk.* (name, language, version), as Resource.create writes them.
_SDK_ATTRIBUTES = {k: str(v) for k, v in Resource.create({}).attributes.items() if k.startswith("telemetry.sdk.")}
_ERROR = Status(StatusCode.ERROR)
_UNSET = Status(StatusCode.UNSET)


class _Resource(Resource):
    """The SDK's Resource, its hash computed once: the exporter groups every span by resource,
    and Resource hashes itself by writing its attributes as JSON each time (a third of the cost
    of encoding a span without attributes). Nothing changes a resource once built."""

    def __init__(self, attributes: dict[str, str]) -> None:
        super().__init__(attributes)
        self._hash = super().__hash__()

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        return other is self or super().__eq__(other)


def parse_traceparent(value: bytes) -> SpanContext | None:
    """A W3C trace context `traceparent` (version 00: `00-<32 hex>-<16 hex>-<2 hex>`), as the
    remote parent of the request's span; None for anything else (ignored, never an error). Only
    the two ids are taken: they are random ids, not content."""
    if len(value) != 55 or value[:3] != b"00-" or value[35:36] != b"-" or value[52:53] != b"-":
        return None
    try:
        trace_id = int(value[3:35], 16)
        span_id = int(value[36:52], 16)
        int(value[53:55], 16)
    except ValueError:
        return None
    if not trace_id or not span_id or not value[3:52].replace(b"-", b"").isalnum():
        return None
    return SpanContext(trace_id, span_id, True, _SAMPLED)


def provider_name(endpoint: Endpoint) -> str:
    """gen_ai.provider.name: the operator, as the conventions spell well-known ones."""
    return endpoint.operator.strip().lower().replace(" ", "_")


def response_model(endpoint: Endpoint | None, model: str | None) -> str | None:
    """The model the upstream was asked for: the endpoint's mapping of the client's name, if any."""
    if endpoint is None or model is None:
        return model
    return endpoint.model_map.get(model) or endpoint.upstream_model or model


def otlp_processor(settings: TracingSettings) -> BatchSpanProcessor:
    """Finished spans queue here and leave in batches from the processor's thread over OTLP/HTTP."""
    return BatchSpanProcessor(
        OTLPSpanExporter(endpoint=settings.endpoint, timeout=settings.export_timeout_s),
        max_queue_size=settings.max_queue_size,
        max_export_batch_size=settings.max_export_batch_size,
        schedule_delay_millis=settings.schedule_delay_s * 1000,
        export_timeout_millis=settings.export_timeout_s * 1000,
    )


class Tracing:
    """Builds each request's spans as finished SDK spans (`ReadableSpan`) and hands them to the
    span processor: the request has ended, so there is no live span to keep, no context to carry
    and nothing to sample (every request is traced). Building them directly costs a fraction of
    starting and ending each through the SDK's tracer (docs/performance.md)."""

    def __init__(
        self, settings: TracingSettings, endpoints: tuple[Endpoint, ...], processor: SpanProcessor | None = None
    ) -> None:
        self.processor = processor if processor is not None else otlp_processor(settings)
        self._resource = _Resource({"service.name": settings.service_name, **_SDK_ATTRIBUTES})
        self._scope = InstrumentationScope("egress")
        self._ids = RandomIdGenerator()
        self._endpoints = {e.name: e for e in endpoints}
        # perf_counter nanoseconds + this = Unix-epoch nanoseconds (spans carry epoch times).
        self._epoch_offset = time.time_ns() - time.perf_counter_ns()

    def close(self) -> None:
        """Send what is queued, then stop the exporter (at shutdown)."""
        self.processor.shutdown()

    def emit(
        self,
        record: AuditRecord,
        marks: RequestMarks | None,
        started_ns: int,
        finished_ns: int,
        traceparent: bytes | None = None,
    ) -> None:
        """The request's spans; with a valid W3C `traceparent` from the client, in the client's trace."""
        offset = self._epoch_offset
        ids = self._ids
        caller = parse_traceparent(traceparent) if traceparent is not None else None
        trace_id = caller.trace_id if caller is not None else ids.generate_trace_id()
        root = SpanContext(trace_id, ids.generate_span_id(), False, _SAMPLED)
        endpoint = self._endpoints.get(record.endpoint) if record.endpoint is not None else None
        model = record.model
        end = self.processor.on_end
        resource, scope = self._resource, self._scope
        if marks is not None and marks.stages:
            contexts: list[SpanContext] = []
            for stage in marks.stages:
                context = SpanContext(trace_id, ids.generate_span_id(), False, _SAMPLED)
                contexts.append(context)
                end(
                    ReadableSpan(
                        f"egress.{stage.name}",
                        context,
                        root if stage.parent < 0 else contexts[stage.parent],
                        resource,
                        instrumentation_scope=scope,
                        start_time=stage.start_ns + offset,
                        end_time=(stage.end_ns or finished_ns) + offset,
                    )
                )
        end(
            ReadableSpan(
                f"chat {model}" if model else "chat",
                root,
                caller,
                resource,
                self._attributes(record, endpoint),
                kind=SpanKind.SERVER,
                instrumentation_scope=scope,
                status=_ERROR if record.error_code is not None else _UNSET,
                start_time=started_ns + offset,
                end_time=finished_ns + offset,
            )
        )

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
