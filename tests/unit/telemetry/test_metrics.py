"""The metric families counted from audit records: every request counts once, in the families
its record says, and the labels stay within their vocabularies."""

from __future__ import annotations

from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from egress.audit.record import build_entry
from egress.core.audit_record import AuditRecord, Decision, Findings, Latency, Masked, MaskedValue
from egress.core.exchange import Exchange, Finding, Tier
from egress.telemetry.metrics import GatewayMetrics, crosses_border, upstream_error
from tests.unit.core.test_audit_record import exchanges


def samples(metrics: GatewayMetrics) -> dict[str, Counter[tuple[tuple[str, str], ...]]]:
    found: dict[str, Counter[tuple[tuple[str, str], ...]]] = {}
    for family in text_string_to_metric_families(generate_latest(metrics.registry).decode()):
        for s in family.samples:
            found.setdefault(s.name, Counter())[tuple(sorted(s.labels.items()))] += s.value
    return found


def record(**fields) -> AuditRecord:
    base = dict(v=3, request_id="egr_1", ts=1.0, outcome="forwarded", api="anthropic.messages")
    return AuditRecord(**{**base, **fields})


def test_a_home_of_eu_covers_its_member_states_and_self_is_never_abroad() -> None:
    eu = frozenset({"EU"})
    assert not crosses_border("EU", eu)
    assert not crosses_border("FR", eu)
    assert not crosses_border("self", eu)
    assert crosses_border("US", eu) and crosses_border("CH", eu) and crosses_border("GB", eu)
    assert not crosses_border("US", frozenset())  # not configured: nothing is cross-border


def test_upstream_errors_are_classed() -> None:
    assert upstream_error(record(upstream_attempts=1, upstream_status=None, outcome="failed")) == "unreachable"
    assert upstream_error(record(upstream_attempts=1, upstream_status=429)) == "rate_limited"
    assert upstream_error(record(upstream_attempts=1, upstream_status=503)) == "server_error"
    assert upstream_error(record(upstream_attempts=1, upstream_status=400)) is None
    assert upstream_error(record(upstream_attempts=0, outcome="refused")) is None


def test_one_request_counts_in_each_family_its_record_names() -> None:
    metrics = GatewayMetrics(home_jurisdictions=("EU",), endpoint_jurisdictions={"us": "US"})
    findings = (
        Finding(kind="secret", rule_id="aws", segment=0, start=0, end=1, confidence=1.0, tier=Tier.CERTAIN),
        Finding(kind="secret", rule_id="generic", segment=0, start=2, end=3, confidence=0.5, tier=Tier.LIKELY),
    )
    metrics.observe(
        record(
            endpoint="us",
            jurisdiction="US",
            upstream_attempts=1,
            upstream_status=200,
            team="payments",
            user="alice",
            decision=Decision(action="reroute", id="d"),
            findings=Findings(kinds={"secret": 2}, rules={"aws": 1, "generic": 1}, total=2),
            masked=Masked(count=1, values=(MaskedValue(hash="h", kind="secret", occurrences=2, rule="aws"),)),
            latency_ms=Latency(gateway=1.0, total=101.0, upstream=100.0),
        ),
        findings,
        first_byte_s=0.05,
        policy_s=0.0002,
    )
    got = samples(metrics)
    assert got["egress_requests_total"] == Counter(
        {
            (
                ("api", "anthropic.messages"),
                ("decision", "reroute"),
                ("endpoint", "us"),
                ("jurisdiction", "US"),
                ("outcome", "forwarded"),
            ): 1
        }
    )
    assert got["egress_attempts_total"] == Counter({(("jurisdiction", "US"), ("left", "true")): 1})
    assert got["egress_cross_border_calls_total"] == Counter({(("jurisdiction", "US"),): 1})
    assert got["egress_findings_total"] == Counter(
        {(("kind", "secret"), ("tier", "certain")): 1, (("kind", "secret"), ("tier", "likely")): 1}
    )
    assert got["egress_masked_values_total"] == Counter({(("kind", "secret"),): 1})
    assert sum(got["egress_requests_rerouted_total"].values()) == 1
    assert sum(got.get("egress_requests_blocked_total", Counter()).values()) == 0
    assert got["egress_upstream_duration_seconds_sum"] == Counter({(("endpoint", "us"),): 0.1})
    assert got["egress_gateway_duration_seconds_sum"] == Counter({(("api", "anthropic.messages"),): 0.001})
    assert got["egress_policy_evaluation_seconds_count"] == Counter({(): 1})
    # No user, and no team unless asked for.
    assert all(name not in dict(labels) for c in got.values() for labels in c for name in ("user", "team"))


def test_a_refused_request_counts_where_it_would_have_gone_and_as_not_left() -> None:
    metrics = GatewayMetrics(home_jurisdictions=("EU",), endpoint_jurisdictions={"us": "US"})
    metrics.observe(
        record(outcome="refused", decision=Decision(action="block", id="d", candidates=("us",))), (), None, None
    )
    metrics.observe(record(outcome="refused"), (), None, None)  # refused before any decision
    got = samples(metrics)
    assert got["egress_attempts_total"] == Counter(
        {(("jurisdiction", "US"), ("left", "false")): 1, (("jurisdiction", "none"), ("left", "false")): 1}
    )
    assert sum(got.get("egress_cross_border_calls_total", Counter()).values()) == 0
    assert sum(got["egress_requests_blocked_total"].values()) == 1


def test_team_labels_only_when_configured_and_children_are_bound_once() -> None:
    metrics = GatewayMetrics(team_labels=True)
    r = record(team="payments", endpoint="e", jurisdiction="US", upstream_attempts=1)
    metrics.observe(r, (), None, None)
    cached = len(metrics._children)
    metrics.observe(r, (), None, None)
    assert len(metrics._children) == cached  # the second request resolved no label
    got = samples(metrics)
    assert dict(next(iter(got["egress_requests_total"])))["team"] == "payments"
    assert got["egress_requests_total"].total() == 2


@settings(max_examples=60, deadline=None)
@given(st.lists(exchanges(), min_size=1, max_size=8), st.sampled_from([(), ("EU",), ("US", "EU")]))
def test_any_requests_count_once_each_and_cross_border_as_recomputed(xs: list[Exchange], home) -> None:
    metrics = GatewayMetrics(home_jurisdictions=home)
    want_cross: Counter[str] = Counter()
    for x in xs:
        r = build_entry(x).record
        assert isinstance(r, AuditRecord)
        metrics.observe(r, x.findings, None, None)
        where = metrics.destination(r)
        if x.upstream_attempts and crosses_border(where, frozenset(home)):
            want_cross[where] += 1
    got = samples(metrics)
    assert got["egress_requests_total"].total() == len(xs)
    assert got["egress_attempts_total"].total() == len(xs)
    assert got["egress_request_duration_seconds_count"].total() == len(xs)
    cross = got.get("egress_cross_border_calls_total", Counter())
    assert {dict(k)["jurisdiction"]: v for k, v in cross.items() if v} == dict(want_cross)
    assert got.get("egress_findings_total", Counter()).total() == sum(len(x.findings) for x in xs)
