"""What the pipeline calls: with everything off, nothing is kept or written; the access line only
when configured; a failure inside telemetry never reaches the request."""

from __future__ import annotations

import logging

from egress.audit.record import build_entry
from egress.core.exchange import Api, Exchange, Outcome
from egress.telemetry.request import CURRENT
from egress.telemetry.settings import LoggingSettings, MetricsSettings, OrganisationSettings, TracingSettings
from egress.telemetry.telemetry import Telemetry


def exchange() -> Exchange:
    x = Exchange(
        request_id="egr_t", method="POST", path="/v1/messages", query="", headers=[], api=Api.ANTHROPIC_MESSAGES
    )
    x.outcome = Outcome.REFUSED
    return x


def configured(access_log: bool, metrics: bool = False) -> Telemetry:
    return Telemetry.configured(
        MetricsSettings(enabled=metrics, listen="127.0.0.1:0" if metrics else None),
        TracingSettings(),
        LoggingSettings(access_log=access_log),
        OrganisationSettings(),
        (),
    )


def test_everything_off_keeps_no_marks_and_writes_nothing(caplog) -> None:
    telemetry = configured(access_log=False)
    assert telemetry.begin() is None and CURRENT.get() is None
    x = exchange()
    with caplog.at_level(logging.DEBUG):
        telemetry.end(x, build_entry(x).record, None)
    assert not caplog.records
    assert telemetry.page is None  # no /metrics on the gateway port


def test_the_access_line_only_when_configured(caplog) -> None:
    telemetry = configured(access_log=True)
    x = exchange()
    with caplog.at_level(logging.INFO, logger="egress.access"):
        telemetry.end(x, build_entry(x).record, None)
    assert [r.egress["request_id"] for r in caplog.records] == ["egr_t"]


def test_with_a_separate_listener_metrics_are_not_on_the_gateway_port() -> None:
    telemetry = configured(access_log=False, metrics=True)
    assert telemetry.metrics is not None and telemetry.page is None and telemetry.listener_page is not None


def test_a_failure_inside_telemetry_is_logged_by_type_and_swallowed(caplog) -> None:
    telemetry = configured(access_log=False, metrics=True)
    marks = telemetry.begin()
    x = exchange()
    record = build_entry(x).record
    record.latency_ms = "not a latency"  # type: ignore[assignment]  # the metrics cannot read it
    with caplog.at_level(logging.ERROR, logger="egress.telemetry"):
        telemetry.end(x, record, None, marks)
    assert CURRENT.get() is None  # the marks were ended all the same
    assert [r.getMessage() for r in caplog.records] == ["telemetry failed for a request: AttributeError"]
