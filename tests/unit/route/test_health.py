"""The circuit breaker: open after repeated failures, one trial after the cooldown."""

from __future__ import annotations

from egress.route.health import Circuit, EndpointHealth
from egress.route.settings import BreakerSettings
from tests.support.clock import ManualClock


def health(threshold: int = 3, cooldown: float = 30.0) -> tuple[EndpointHealth, ManualClock]:
    clock = ManualClock()
    return EndpointHealth(BreakerSettings(failure_threshold=threshold, cooldown_s=cooldown), clock), clock


def test_opens_after_consecutive_failures_only():
    h, _ = health()
    h.failed("eu")
    h.failed("eu")
    h.succeeded("eu")  # a success resets the count
    h.failed("eu")
    h.failed("eu")
    assert h.admit("eu") and h.circuit("eu") is Circuit.CLOSED
    h.failed("eu")
    assert h.circuit("eu") is Circuit.OPEN and not h.admit("eu")


def test_half_open_admits_one_trial_and_closes_on_success():
    h, clock = health()
    for _ in range(3):
        h.failed("eu")
    clock.now += 30.0
    assert h.circuit("eu") is Circuit.HALF_OPEN
    assert h.admit("eu")
    assert not h.admit("eu")  # one trial at a time
    h.succeeded("eu")
    assert h.circuit("eu") is Circuit.CLOSED and h.admit("eu") and h.admit("eu")


def test_failed_probe_reopens_with_a_doubled_cooldown():
    h, clock = health()
    for _ in range(3):
        h.failed("eu")
    clock.now += 31.0
    assert h.admit("eu")
    h.failed("eu")
    assert h.circuit("eu") is Circuit.OPEN
    clock.now += 59.0
    assert not h.admit("eu")  # backed off: 60 s, not 30 s
    clock.now += 1.0
    assert h.admit("eu")


def test_endpoints_are_independent():
    h, _ = health(threshold=1)
    h.failed("us")
    assert not h.admit("us") and h.admit("eu")
    assert h.snapshot() == {"us": "open"}


def test_a_trial_that_never_reports_stops_blocking_after_a_cooldown():
    h, clock = health()
    for _ in range(3):
        h.failed("eu")
    clock.now += 30.0
    assert h.admit("eu")  # the trial's request is then cancelled: nothing is reported
    clock.now += 29.0
    assert not h.admit("eu")
    clock.now += 1.0
    assert h.admit("eu")
