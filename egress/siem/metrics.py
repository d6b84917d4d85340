"""The delivery's Prometheus families, per sink (label: the sink's configured name, bounded by
the configuration), in the registry egress/telemetry serves at /metrics (or a private one when
metrics are off). Gauges combine across `--workers` processes by max: only the process holding a
sink's lease reports its lag; the others report 0."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge


class SiemMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        r = self.registry
        self.delivered = Counter(
            "egress_siem_delivered_records", "Audit records the sink acknowledged", ("sink",), registry=r
        )
        self.failed = Counter(
            "egress_siem_failed_attempts", "Sends the sink did not acknowledge (each is retried)", ("sink",),
            registry=r,
        )  # fmt: skip
        self.lag_records = Gauge(
            "egress_siem_lag_records", "Committed audit records not yet acknowledged by the sink", ("sink",),
            multiprocess_mode="max", registry=r,
        )  # fmt: skip
        self.lag_seconds = Gauge(
            "egress_siem_lag_seconds", "Age of the oldest record not yet acknowledged by the sink (0: caught up)",
            ("sink",), multiprocess_mode="max", registry=r,
        )  # fmt: skip
        self.retry_delay = Gauge(
            "egress_siem_retry_delay_seconds", "The backoff before the next attempt (0: not retrying)", ("sink",),
            multiprocess_mode="max", registry=r,
        )  # fmt: skip
