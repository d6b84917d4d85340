"""Per-endpoint health: a circuit breaker, so a dead endpoint costs one fast skip, not a timeout.

States, per endpoint: closed (send), open (skip until `cooldown_s` has passed), half-open (let
one request through as a trial: success closes the circuit, failure opens it again).

Invariant: health only ever removes endpoints from the decision's allowed list; it never adds
one. When it removes all of them the request fails with `no_compliant_endpoint`, never goes to
an endpoint the policy did not allow.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum


class Circuit(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True, slots=True)
class BreakerSettings:
    failure_threshold: int = 3  # consecutive failures that open the circuit
    cooldown_s: float = 30.0  # how long an open circuit skips the endpoint before a trial


@dataclass(slots=True)
class _State:
    failures: int = 0
    opened_at: float | None = None
    trial_started_at: float | None = None  # a half-open circuit's trial request, while it runs


@dataclass
class EndpointHealth:
    settings: BreakerSettings = field(default_factory=BreakerSettings)
    clock: Callable[[], float] = time.monotonic
    _states: dict[str, _State] = field(default_factory=dict)

    def circuit(self, name: str) -> Circuit:
        state = self._states.get(name)
        if state is None or state.opened_at is None:
            return Circuit.CLOSED
        if self.clock() - state.opened_at < self.settings.cooldown_s:
            return Circuit.OPEN
        return Circuit.HALF_OPEN

    def admit(self, name: str) -> bool:
        """May a request be sent to `name` now? A half-open circuit admits one trial at a time."""
        circuit = self.circuit(name)
        if circuit is Circuit.CLOSED:
            return True
        if circuit is Circuit.OPEN:
            return False
        state = self._states[name]
        now = self.clock()
        # One trial at a time; a trial that never reported (its request was cancelled, or
        # refused before it was sent) stops blocking the endpoint after one cooldown.
        if state.trial_started_at is not None and now - state.trial_started_at < self.settings.cooldown_s:
            return False
        state.trial_started_at = now
        return True

    def succeeded(self, name: str) -> None:
        state = self._states.get(name)
        if state is not None:
            state.failures = 0
            state.opened_at = None
            state.trial_started_at = None

    def failed(self, name: str) -> None:
        state = self._states.setdefault(name, _State())
        state.failures += 1
        state.trial_started_at = None
        if state.opened_at is not None or state.failures >= self.settings.failure_threshold:
            state.opened_at = self.clock()  # a failed trial re-opens for a full cooldown

    def snapshot(self) -> dict[str, str]:
        return {name: self.circuit(name).value for name in self._states}
