"""The limits' metrics, registered in the gateway's registry (egress/telemetry) when metrics are on.

Labels are bounded: the scope (key, user, team) and the limit's name; never the user's or team's name."""

from __future__ import annotations

from prometheus_client import CollectorRegistry
from prometheus_client import Counter as PromCounter

from egress.limits.windows import Counter


class LimitMetrics:
    def __init__(self, registry: CollectorRegistry | None) -> None:
        self._refusals = self._fallbacks = None
        if registry is None:
            return
        self._refusals = PromCounter(
            "egress_limit_refusals", "Requests refused by a rate limit or budget", ("scope", "limit"), registry=registry
        )
        self._fallbacks = PromCounter(
            "egress_limit_fallbacks",
            "Requests whose limits were counted in this process because Redis did not answer",
            registry=registry,
        )

    def refused(self, counter: Counter) -> None:
        if self._refusals is not None:
            self._refusals.labels(counter.scope.value, counter.dim.value).inc()

    def fell_back(self) -> None:
        if self._fallbacks is not None:
            self._fallbacks.inc()
