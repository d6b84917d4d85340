"""OTLP logs sink: OTLP/HTTP with protobuf (POST …/v1/logs, `application/x-protobuf`), one
LogRecord per audit record, built with the official opentelemetry-proto types.

Each LogRecord: time = the record's time; severity INFO; body = the canonical record (a string,
verbatim); attributes egress.audit.seq (int), egress.audit.hash, egress.audit.prev_hash. The
resource carries service.name; the scope is `egress.audit`. A 200 whose partial_success rejected
any record fails the batch (sent again whole)."""

from __future__ import annotations

import time
from collections.abc import Sequence

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import SEVERITY_NUMBER_INFO, LogRecord, ResourceLogs, ScopeLogs
from opentelemetry.proto.resource.v1.resource_pb2 import Resource

from egress.core.records import StoredAudit
from egress.siem.http_client import HttpPoster
from egress.siem.settings import OtlpSink
from egress.siem.sink import SinkError

SCOPE = "egress.audit"
ATTR_SEQ = "egress.audit.seq"
ATTR_HASH = "egress.audit.hash"
ATTR_PREV = "egress.audit.prev_hash"


def log_record(stored: StoredAudit, observed_ns: int) -> LogRecord:
    return LogRecord(
        time_unix_nano=int(stored.entry.ts * 1e9),
        observed_time_unix_nano=observed_ns,
        severity_number=SEVERITY_NUMBER_INFO,
        severity_text="INFO",
        body=AnyValue(string_value=stored.entry.canonical.decode("utf-8")),
        attributes=[
            KeyValue(key=ATTR_SEQ, value=AnyValue(int_value=stored.seq)),
            KeyValue(key=ATTR_HASH, value=AnyValue(string_value=stored.hash)),
            KeyValue(key=ATTR_PREV, value=AnyValue(string_value=stored.prev_hash)),
        ],
    )


class OtlpLogsSink:
    def __init__(self, settings: OtlpSink) -> None:
        self.name = settings.name
        self._url = settings.url
        self._resource = Resource(
            attributes=[KeyValue(key="service.name", value=AnyValue(string_value=settings.service_name))]
        )
        self._poster = HttpPoster(
            settings.name,
            settings.ca_file,
            settings.delivery.timeout_s,
            settings.client_cert_file,
            settings.client_key_file,
        )

    def encode(self, batch: Sequence[StoredAudit]) -> bytes:
        observed = time.time_ns()
        request = ExportLogsServiceRequest(
            resource_logs=[
                ResourceLogs(
                    resource=self._resource,
                    scope_logs=[
                        ScopeLogs(
                            scope=InstrumentationScope(name=SCOPE),
                            log_records=[log_record(s, observed) for s in batch],
                        )
                    ],
                )
            ]
        )
        return bytes(request.SerializeToString())

    async def send(self, payload: bytes, count: int) -> None:
        status, body = await self._poster.post(self._url, payload, {"Content-Type": "application/x-protobuf"})
        if status != 200:
            raise SinkError(f"{self.name}: OTLP answered {status}")
        response = ExportLogsServiceResponse()
        try:
            response.ParseFromString(body)
        except Exception:  # noqa: BLE001 - protobuf's DecodeError (its module has no type stubs)
            raise SinkError(f"{self.name}: OTLP answer is not an ExportLogsServiceResponse") from None
        rejected = response.partial_success.rejected_log_records
        if rejected:
            message = response.partial_success.error_message
            raise SinkError(f"{self.name}: OTLP rejected {rejected} of {count} records ({message!r})")

    async def close(self) -> None:
        await self._poster.close()
