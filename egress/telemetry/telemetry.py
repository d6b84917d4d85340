"""What the pipeline calls, twice per request: `begin` when it starts (the stage marks) and
`end` once its audit record is built (metrics, trace, access line). With everything off both
are a check of one attribute.

Invariant: telemetry never changes how a request ends. `end` runs after the audit record was
submitted; a failure in it is logged by its type and swallowed.
"""

from __future__ import annotations

import logging

from egress.core.audit_record import AuditRecord
from egress.core.endpoint import Endpoint
from egress.core.exchange import Exchange
from egress.telemetry import request
from egress.telemetry.exposition import MetricsPage, token_from_env
from egress.telemetry.logs import AccessLog
from egress.telemetry.metrics import GatewayMetrics
from egress.telemetry.request import RequestMarks
from egress.telemetry.settings import LoggingSettings, MetricsSettings, OrganisationSettings, TracingSettings
from egress.telemetry.tracing import Tracing

log = logging.getLogger("egress.telemetry")


class Telemetry:
    def __init__(
        self,
        metrics: GatewayMetrics | None = None,
        tracing: Tracing | None = None,
        access: AccessLog | None = None,
        page: MetricsPage | None = None,
        metrics_on_gateway_port: bool = False,
    ) -> None:
        self.metrics = metrics
        self.tracing = tracing
        self.access = access
        # What GET /metrics answers with; None: not on the gateway's port (off, or its own listener).
        self.page = page if metrics_on_gateway_port else None
        self.listener_page = page  # for metrics.listen (egress serve starts the listener)
        self._marks = metrics is not None or tracing is not None
        self._any = self._marks or access is not None

    @classmethod
    def configured(
        cls,
        metrics: MetricsSettings,
        tracing: TracingSettings,
        logging_settings: LoggingSettings,
        organisation: OrganisationSettings,
        endpoints: tuple[Endpoint, ...],
    ) -> Telemetry:
        gateway_metrics = None
        page = None
        if metrics.enabled:
            gateway_metrics = GatewayMetrics(
                home_jurisdictions=organisation.home_jurisdictions,
                endpoint_jurisdictions={e.name: e.jurisdiction for e in endpoints},
                team_labels=metrics.team_labels,
            )
            page = MetricsPage(gateway_metrics.registry, token_from_env(metrics.token_env))
        return cls(
            metrics=gateway_metrics,
            tracing=Tracing(tracing, endpoints) if tracing.enabled else None,
            access=AccessLog() if logging_settings.access_log else None,
            page=page,
            metrics_on_gateway_port=metrics.enabled and metrics.listen is None,
        )

    def begin(self) -> RequestMarks | None:
        """At the start of a request: its stage marks (None when nothing reads them)."""
        return request.begin() if self._marks else None

    def end(self, x: Exchange, record: object, first_byte_ns: int | None, marks: RequestMarks | None = None) -> None:
        """Once the request's audit record is built and submitted: count it, trace it, log it."""
        if not self._any:
            return
        try:
            if marks is not None:
                request.end(marks)
            if not isinstance(record, AuditRecord):
                return
            finished = x.finished_ns or x.started_ns
            if self.metrics is not None:
                decide_ns = marks.stage_ns("decide") if marks is not None else 0
                self.metrics.observe(
                    record,
                    x.findings,
                    (first_byte_ns - x.started_ns) / 1e9 if first_byte_ns else None,
                    decide_ns / 1e9 if decide_ns else None,
                )
            if self.tracing is not None:
                self.tracing.emit(record, marks, x.started_ns, finished, x.header(b"traceparent"))
            if self.access is not None:
                self.access.write(record)
        except Exception as exc:  # noqa: BLE001 - telemetry never changes how a request ends
            log.error("telemetry failed for a request: %s", type(exc).__name__)

    def close(self) -> None:
        if self.tracing is not None:
            self.tracing.close()
