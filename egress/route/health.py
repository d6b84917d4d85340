"""Per-endpoint health: a circuit breaker, so a dead endpoint costs one fast skip, not a timeout.

States, per endpoint:
  closed    send;
  open      skip without trying, for the current cool-down (`cooldown_s` at first);
  half-open the cool-down has passed: exactly one request goes through as a probe while the
            others skip to the next allowed endpoint. The probe's success closes the circuit;
            its failure opens it again for twice the previous cool-down (up to `max_cooldown_s`).

Invariant: health only ever removes endpoints from the decision's allowed list; it never adds
one. When it removes all of them the request fails with `no_compliant_endpoint`, never goes to
an endpoint the policy did not allow.

Shared by replicas (egress/shared/breakers.py, with `redis.url`): `on_change` hears each circuit
that opens or closes here, and `force_open` / `force_close` apply another replica's, so all
replicas fail over together. Without Redis (or while it is down) each process keeps its own.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum

from egress.route.settings import BreakerSettings


class Circuit(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(slots=True)
class _State:
    failures: int = 0  # consecutive failures, probes included
    opened_at: float | None = None
    cooldown_s: float = 0.0  # the open circuit's current cool-down
    probe_started_at: float | None = None  # a half-open circuit's probe request, while it runs


@dataclass
class EndpointHealth:
    settings: BreakerSettings = field(default_factory=BreakerSettings)
    clock: Callable[[], float] = time.monotonic
    # Called on the event loop when a circuit opens (Circuit.OPEN, its cool-down, failures) or
    # closes (Circuit.CLOSED) here: the shared breakers publish it to the other replicas.
    on_change: Callable[[str, Circuit, float, int], None] | None = None
    _states: dict[str, _State] = field(default_factory=dict)

    def circuit(self, name: str) -> Circuit:
        state = self._states.get(name)
        if state is None or state.opened_at is None:
            return Circuit.CLOSED
        if self.clock() - state.opened_at < state.cooldown_s:
            return Circuit.OPEN
        return Circuit.HALF_OPEN

    def admit(self, name: str) -> bool:
        """May a request be sent to `name` now? A half-open circuit admits one probe at a time."""
        circuit = self.circuit(name)
        if circuit is Circuit.CLOSED:
            return True
        if circuit is Circuit.OPEN:
            return False
        state = self._states[name]
        now = self.clock()
        # One probe at a time; a probe that never reported (its request was cancelled, or
        # refused before it was sent) stops blocking the endpoint after one cool-down.
        if state.probe_started_at is not None and now - state.probe_started_at < state.cooldown_s:
            return False
        state.probe_started_at = now
        return True

    def succeeded(self, name: str) -> None:
        state = self._states.get(name)
        if state is not None:
            if state.opened_at is not None and self.on_change is not None:
                self.on_change(name, Circuit.CLOSED, 0.0, 0)
            state.failures = 0
            state.opened_at = None
            state.cooldown_s = 0.0
            state.probe_started_at = None

    def failed(self, name: str) -> None:
        state = self._states.setdefault(name, _State())
        state.failures += 1
        state.probe_started_at = None
        if state.opened_at is not None:
            # A failed probe (or a failure reported while open): open again, backing off.
            state.cooldown_s = min(state.cooldown_s * 2, self.settings.max_cooldown_s)
            state.opened_at = self.clock()
        elif state.failures >= self.settings.failure_threshold:
            state.cooldown_s = self.settings.cooldown_s
            state.opened_at = self.clock()
        else:
            return
        if self.on_change is not None:
            self.on_change(name, Circuit.OPEN, state.cooldown_s, state.failures)

    def force_open(self, name: str, cooldown_s: float, failures: int) -> None:
        """Another replica opened this circuit: open it here for the rest of its cool-down."""
        state = self._states.setdefault(name, _State())
        state.failures = max(state.failures, failures)
        state.cooldown_s = cooldown_s
        state.opened_at = self.clock()
        state.probe_started_at = None

    def force_close(self, name: str) -> None:
        """Another replica's probe succeeded: close it here too."""
        state = self._states.get(name)
        if state is not None:
            state.failures = 0
            state.opened_at = None
            state.cooldown_s = 0.0
            state.probe_started_at = None

    def retry_in(self, name: str) -> float:
        """Seconds until the endpoint's next probe may go (0: it may go now)."""
        state = self._states.get(name)
        if state is None or state.opened_at is None:
            return 0.0
        now = self.clock()
        due = state.opened_at + state.cooldown_s
        if state.probe_started_at is not None and now - state.probe_started_at < state.cooldown_s:
            due = max(due, state.probe_started_at + state.cooldown_s)  # a probe is out; this is when it stops blocking
        return max(due - now, 0.0)

    def why_skipped(self, name: str) -> str:
        """Why `admit` refused `name`, for the client's message: the circuit, not reachability
        (nothing was tried)."""
        state = self._states.get(name)
        failures = state.failures if state is not None else 0
        wait = math.ceil(self.retry_in(name))
        if self.circuit(name) is Circuit.HALF_OPEN:
            return f"circuit open after {failures} recent failures; a probe request is being tried now"
        return f"circuit open after {failures} recent failures; retried in {wait} s"

    def snapshot(self) -> dict[str, str]:
        return {name: self.circuit(name).value for name in self._states}
