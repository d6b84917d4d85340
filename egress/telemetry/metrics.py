"""The Prometheus metric families and how a finished request counts in them.

Invariant: every count is derived from the request's audit record (`AuditRecord`, built once by
audit/record.py and submitted to the audit writer in the same `finally`), so the metrics count
exactly what the audit holds: one observation per request record. The only figures that are not
in the record are the findings' confidence tier (from the same findings the record counts), the
time to the client's first byte and the policy's evaluation time (stage timings).

Labels are bounded: API, endpoint, jurisdiction, decision action, outcome, finding kind and tier
are the configuration's and egress's own vocabularies; a team label only when configured; never
a user, a model name, a path or a request id. Each label tuple's child is bound once and cached,
so a request costs dictionary lookups and increments, no label resolution.

Multiprocess (`egress serve --workers N`): prometheus_client keeps each value in a per-process
file under PROMETHEUS_MULTIPROC_DIR (set by `egress serve` before the workers start); counters and
histograms are summed at scrape, gauges carry their `multiprocess_mode`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from egress.core.audit_record import AuditRecord
from egress.core.exchange import Finding

# Where no value applies (refused before a destination was chosen; no decision).
NONE = "none"
# The EU member states: a home of EU covers an endpoint that names one of them.
EU_MEMBERS = frozenset("AT BE BG HR CY CZ DK EE FI FR DE GR HU IE IT LV LT LU MT NL PL PT RO SK SI ES SE".split())
# Seconds: from well under a millisecond (the gateway's own work) to minutes (long streams).
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
POLICY_BUCKETS = (0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1)


def crosses_border(jurisdiction: str, home: frozenset[str]) -> bool:
    """A destination outside the home jurisdictions (never `self`: the organisation's own machines)."""
    if not home or jurisdiction == "self" or jurisdiction in home:
        return False
    return not ("EU" in home and jurisdiction in EU_MEMBERS)


def upstream_error(record: AuditRecord) -> str | None:
    """The class of an upstream error on this record, or None: unreachable (tried, no answer),
    rate_limited (429) or server_error (5xx)."""
    status = record.upstream_status
    if status is None:
        return "unreachable" if record.upstream_attempts and record.outcome == "failed" else None
    if status == 429:
        return "rate_limited"
    return "server_error" if status >= 500 else None


class GatewayMetrics:
    """The families, registered in their own registry (no process-wide default registry)."""

    def __init__(
        self,
        *,
        home_jurisdictions: Iterable[str] = (),
        endpoint_jurisdictions: dict[str, str] | None = None,
        team_labels: bool = False,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        self.home = frozenset(home_jurisdictions)
        # A refused request's intended destination: the jurisdiction of its first candidate.
        self._jurisdictions = dict(endpoint_jurisdictions or {})
        self.team_labels = team_labels
        r = self.registry
        team = ("team",) if team_labels else ()
        self.requests = Counter(
            "egress_requests",
            "API requests, by API, endpoint, destination jurisdiction, decision and outcome",
            ("api", "endpoint", "jurisdiction", "decision", "outcome", *team),
            registry=r,
        )
        self.attempts = Counter(
            "egress_attempts",
            "Requests that tried to leave (every API request), by destination jurisdiction and whether bytes left",
            ("jurisdiction", "left", *team),
            registry=r,
        )
        self.cross_border = Counter(
            "egress_cross_border_calls",
            "Requests sent to an endpoint outside organisation.home_jurisdictions",
            ("jurisdiction", *team),
            registry=r,
        )
        self.findings = Counter(
            "egress_findings", "Findings in requests, by kind and confidence tier", ("kind", "tier"), registry=r
        )
        self.masked = Counter(
            "egress_masked_values", "Distinct values masked in requests, by kind", ("kind",), registry=r
        )
        self.blocked = Counter("egress_requests_blocked", "Requests the policy blocked", team, registry=r)
        self.held = Counter("egress_requests_held", "Requests the policy held for an approver", team, registry=r)
        self.rerouted = Counter("egress_requests_rerouted", "Requests the policy rerouted", team, registry=r)
        self.approvals_decided = Counter(
            "egress_approvals_decided",
            "Held requests whose approval ended, by its final status",
            ("status",),
            registry=r,
        )
        self.upstream_errors = Counter(
            "egress_upstream_errors", "Upstream errors, by endpoint and class", ("endpoint", "error"), registry=r
        )
        self.total = Histogram(
            "egress_request_duration_seconds", "Whole request, as the client saw it", ("api",),
            buckets=LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.gateway = Histogram(
            "egress_gateway_duration_seconds", "The gateway's own time (whole request less upstream time)", ("api",),
            buckets=LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.upstream = Histogram(
            "egress_upstream_duration_seconds", "Time waiting on or reading from the upstream", ("endpoint",),
            buckets=LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.first_byte = Histogram(
            "egress_time_to_first_byte_seconds", "From the request's arrival to the first byte sent to the client",
            ("api",), buckets=LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.policy = Histogram(
            "egress_policy_evaluation_seconds", "The decide stage: building the policy input and evaluating it",
            buckets=POLICY_BUCKETS, registry=r,
        )  # fmt: skip
        # Sampled state (telemetry/sampler.py), one value per process; combined at scrape.
        self.breaker = Gauge(
            "egress_breaker_state", "Circuit breaker per endpoint: 0 closed, 1 half-open, 2 open", ("endpoint",),
            multiprocess_mode="max", registry=r,
        )  # fmt: skip
        self.approvals_pending = Gauge(
            "egress_approvals_pending", "Approvals waiting for an approver (from the store)",
            multiprocess_mode="max", registry=r,
        )  # fmt: skip
        self.audit_queue = Gauge(
            "egress_audit_queue_depth", "Audit records submitted and not yet committed",
            multiprocess_mode="livesum", registry=r,
        )  # fmt: skip
        self.audit_lag = Gauge(
            "egress_audit_lag_seconds", "How long the audit queue has not been empty (0: caught up)",
            multiprocess_mode="max", registry=r,
        )  # fmt: skip
        self.checkpoint_age = Gauge(
            "egress_audit_checkpoint_age_seconds", "Age of the oldest committed record no signed checkpoint covers",
            multiprocess_mode="max", registry=r,
        )  # fmt: skip
        self.audit_failures = Gauge(
            "egress_audit_write_failures", "Failed audit batch writes since start",
            multiprocess_mode="livesum", registry=r,
        )  # fmt: skip
        # Bound children per label tuple (labels() resolves and locks each time).
        self._children: dict[tuple[Any, ...], Any] = {}

    def _child(self, family: Any, labels: tuple[str, ...]) -> Any:
        key = (id(family), *labels)
        child = self._children.get(key)
        if child is None:
            child = family.labels(*labels) if labels else family
            self._children[key] = child
        return child

    def destination(self, record: AuditRecord) -> str:
        """Where the request went, or, refused before routing, where it would have gone."""
        if record.jurisdiction is not None:
            return record.jurisdiction
        decision = record.decision
        if decision is not None and decision.candidates:
            return self._jurisdictions.get(decision.candidates[0], NONE)
        return NONE

    def observe(
        self, record: AuditRecord, findings: tuple[Finding, ...], first_byte_s: float | None, policy_s: float | None
    ) -> None:
        """Count one request's record (and the figures the record does not hold)."""
        child = self._child
        team = (record.team or NONE,) if self.team_labels else ()
        decision = record.decision
        action = str(decision.action) if decision is not None and decision.action is not None else NONE
        jurisdiction = self.destination(record)
        endpoint = record.endpoint or NONE
        api = str(record.api)
        child(self.requests, (api, endpoint, jurisdiction, action, str(record.outcome), *team)).inc()
        left = bool(record.upstream_attempts)
        child(self.attempts, (jurisdiction, "true" if left else "false", *team)).inc()
        if left and crosses_border(jurisdiction, self.home):
            child(self.cross_border, (jurisdiction, *team)).inc()
        for finding in findings:
            child(self.findings, (str(finding.kind), str(finding.tier))).inc()
        masked = record.masked
        if masked is not None:
            for value in masked.values:
                child(self.masked, (value.kind or NONE,)).inc()
        if action == "block":
            child(self.blocked, team).inc()
        elif action == "require_approval":
            child(self.held, team).inc()
        elif action == "reroute":
            child(self.rerouted, team).inc()
        approval = record.approval
        if approval is not None and approval.status is not None:
            child(self.approvals_decided, (str(approval.status),)).inc()
        error = upstream_error(record)
        if error is not None:
            child(self.upstream_errors, (endpoint, error)).inc()
        latency = record.latency_ms
        if latency is not None and latency.total is not None:
            child(self.total, (api,)).observe(latency.total / 1000)
            if latency.gateway is not None:
                child(self.gateway, (api,)).observe(latency.gateway / 1000)
            if left and latency.upstream is not None:
                child(self.upstream, (endpoint,)).observe(latency.upstream / 1000)
        if first_byte_s is not None:
            child(self.first_byte, (api,)).observe(first_byte_s)
        if policy_s is not None:
            self.policy.observe(policy_s)
