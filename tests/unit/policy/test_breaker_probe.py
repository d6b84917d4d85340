"""The breaker's half-open probe with the default settings, on an injected clock: a short first
cool-down, exactly one probe while the others skip, backoff on failed probes, and a refusal
message that says the circuit is open (and when it is retried), never "could not be reached"."""

from __future__ import annotations

from egress.route.health import Circuit, EndpointHealth
from egress.route.settings import BreakerSettings
from tests.support.clock import ManualClock


def opened(clock: ManualClock, settings: BreakerSettings | None = None) -> EndpointHealth:
    h = EndpointHealth(settings or BreakerSettings(), clock)
    for _ in range(h.settings.failure_threshold):
        assert h.admit("eu")
        h.failed("eu")
    return h


def test_defaults_open_after_three_failures_for_a_short_cooldown():
    clock = ManualClock()
    h = opened(clock)
    assert h.circuit("eu") is Circuit.OPEN
    assert h.retry_in("eu") == 5.0
    clock.now += 4.9
    assert not h.admit("eu")
    clock.now += 0.1
    assert h.circuit("eu") is Circuit.HALF_OPEN


def test_half_open_lets_exactly_one_probe_through_and_success_closes():
    clock = ManualClock()
    h = opened(clock)
    clock.now += 5.0
    admitted = [h.admit("eu") for _ in range(5)]
    assert admitted == [True, False, False, False, False]
    h.succeeded("eu")
    assert h.circuit("eu") is Circuit.CLOSED
    assert all(h.admit("eu") for _ in range(5))
    assert h.retry_in("eu") == 0.0


def test_failed_probes_back_off_up_to_the_maximum():
    clock = ManualClock()
    h = opened(clock, BreakerSettings(failure_threshold=3, cooldown_s=5.0, max_cooldown_s=30.0))
    waits = []
    for _ in range(5):
        wait = h.retry_in("eu")
        waits.append(wait)
        clock.now += wait - 0.01
        assert not h.admit("eu")
        clock.now += 0.01
        assert h.admit("eu")  # the probe
        h.failed("eu")
    assert waits == [5.0, 10.0, 20.0, 30.0, 30.0]
    h.succeeded("eu")  # back: the next opening starts from the short cool-down again
    for _ in range(3):
        h.failed("eu")
    assert h.retry_in("eu") == 5.0


def test_refusal_names_the_open_circuit_and_when_it_is_retried():
    clock = ManualClock()
    h = opened(clock)
    clock.now += 1.5
    why = h.why_skipped("eu")
    assert why == "circuit open after 3 recent failures; retried in 4 s"
    assert "reached" not in why
    clock.now += 3.5
    assert h.admit("eu")  # the probe is out: others are told so
    assert h.why_skipped("eu") == "circuit open after 3 recent failures; a probe request is being tried now"
