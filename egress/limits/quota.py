"""Admission before the policy, reconciliation after the answer: the request path's limits.

    ticket = quota.queue(x, round)      the counters this caller's request touches, queued
    await round.run()                   one pipelined Redis round trip (shared with other uses)
    view = quota.settle(ticket, down)   admitted (the usage the policy reads), or a native 429
    ...
    quota.reconcile(x, ticket)          in `finally`: the answer's usage, off the request path

Invariants:
- a refused request is refused before anything is sent upstream, with the 429 naming the limit
  and when to retry; the audit records which limit (`limit`);
- Redis down (or not answering within `redis.timeout_ms`): the request is counted in this
  process instead (`limits.fallback_share` of each limit), counted in a metric and logged once
  per outage, never refused because of it;
- a caller no limit applies to costs nothing (no Redis command, no allocation past a lookup).
"""

from __future__ import annotations

import asyncio
import calendar
import logging
import time
from dataclasses import dataclass
from typing import Any

from egress.core.errors import EgressError, ErrorCode
from egress.core.exchange import Exchange, Principal
from egress.limits.counters import Charge, LocalCounters, Verdict, add_args, admit_args
from egress.limits.metrics import LimitMetrics
from egress.limits.prices import PriceBook
from egress.limits.settings import LimitSet, LimitsSettings
from egress.limits.usage_log import UsageLog
from egress.limits.windows import MICRO, Counter, Dim, Scope, admits, estimate_tokens, retry_after_s
from egress.shared.client import HotState, HotStateDown, Round, Slot

log = logging.getLogger("egress.limits")


@dataclass(slots=True)
class Ticket:
    """One request's charges, from admission to reconciliation."""

    charges: tuple[Charge, ...]
    estimate: int  # input tokens charged before the answer
    slot: Slot | None  # the admission script's reply, once the round has run
    admitted: bool = False


def counters_of(settings: LimitsSettings, principal: Principal) -> tuple[Counter, ...]:
    """The counters that apply to this caller: its key's, its user's (or the default) and its team's."""
    found: list[Counter] = []
    sets: list[tuple[Scope, str, LimitSet]] = []
    if principal.key_id is not None and principal.key_id in settings.keys:
        sets.append((Scope.KEY, principal.key_id, settings.keys[principal.key_id]))
    own = settings.users.get(principal.user)
    sets.append((Scope.USER, principal.user, own.over(settings.default) if own is not None else settings.default))
    if principal.team is not None and principal.team in settings.teams:
        sets.append((Scope.TEAM, principal.team, settings.teams[principal.team]))
    for scope, name, limits in sets:
        for dim in Dim:
            value = getattr(limits, dim.value)
            if value is not None:
                limit = int(value * MICRO) if dim is Dim.SPEND_PER_MONTH else int(value)
                found.append(Counter(scope, name, dim, limit))
    return tuple(found)


def seconds_to_next_month(now: float) -> int:
    t = time.gmtime(now)
    year, month = (t.tm_year + 1, 1) if t.tm_mon == 12 else (t.tm_year, t.tm_mon + 1)
    return max(1, int(calendar.timegm((year, month, 1, 0, 0, 0)) - now))


class Quota:
    def __init__(
        self,
        settings: LimitsSettings,
        prices: PriceBook,
        hot: HotState | None = None,
        metrics: LimitMetrics | None = None,
        usage_log: UsageLog | None = None,
    ) -> None:
        self.settings = settings
        self.prices = prices
        self.hot = hot
        self.metrics = metrics or LimitMetrics(None)
        self.usage_log = usage_log
        self.local = LocalCounters()  # without Redis: the counters, exact for this one process
        self.fallback = LocalCounters(share=settings.fallback_share)  # while Redis is down
        self._down = False
        self._cache: dict[tuple[str | None, str, str | None], tuple[Counter, ...]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    # --- admission ----------------------------------------------------------------------------

    def counters(self, principal: Principal) -> tuple[Counter, ...]:
        ident = (principal.key_id, principal.user, principal.team)
        found = self._cache.get(ident)
        if found is None:
            found = self._cache[ident] = counters_of(self.settings, principal)
        return found

    def queue(self, x: Exchange, round: Round | None) -> Ticket | None:
        """The charges of this request, queued in `round` (Redis) when there is one; None when
        no limit applies to its caller."""
        assert x.principal is not None
        counters = self.counters(x.principal)
        if not counters:
            return None
        now = time.time()
        estimate = estimate_tokens(len(x.body))
        charges = tuple(Charge(c, c.key(now), _cost(c.dim, estimate)) for c in counters)
        slot = None
        if round is not None and self.hot is not None:
            slot = round.call(*admit_args(charges, self.hot.prefix))
        return Ticket(charges, estimate, slot)

    def settle(self, ticket: Ticket, down: bool = False) -> dict[str, Any]:
        """Admit (the usage the policy reads, input.usage) or refuse with a native 429."""
        if ticket.slot is None:
            verdict = self.local.admit(ticket.charges)
        elif down:
            self._fell_back()
            verdict = self.fallback.admit(ticket.charges)
        else:
            self._recovered()
            verdict = Verdict.of_script(ticket.charges, ticket.slot.value)
        if verdict.refused is not None:
            raise self._refusal(verdict)
        ticket.admitted = True
        return usage_view(ticket.charges, verdict.used)

    async def admit(self, x: Exchange) -> tuple[Ticket | None, dict[str, Any]]:
        """Queue, run and settle in one round of its own (when no other use shares it)."""
        round = self.hot.round() if self.hot is not None else None
        ticket = self.queue(x, round)
        if ticket is None:
            return None, {}
        down = False
        if round is not None:
            try:
                await round.run()
            except HotStateDown:
                down = True
        return ticket, self.settle(ticket, down)

    def _refusal(self, verdict: Verdict) -> EgressError:
        charge = verdict.refused
        assert charge is not None
        counter = charge.counter
        if counter.dim is Dim.SPEND_PER_MONTH:
            wait = seconds_to_next_month(time.time())
        else:
            wait = retry_after_s(verdict.ttl_ms, counter.dim.window_s)
        self.metrics.refused(counter)
        shown = f"{counter.limit / MICRO:g} USD" if counter.dim is Dim.SPEND_PER_MONTH else str(counter.limit)
        return EgressError(
            ErrorCode.RATE_LIMITED,
            f"the {counter.scope.value} limit {counter.dim.value} ({shown}) is reached; retry in {wait} s",
            stage="limits",
            details={"limit": counter.label, "retry_after_s": wait},
            retry_after_s=wait,
        )

    def _fell_back(self) -> None:
        self.metrics.fell_back()
        if not self._down:
            self._down = True
            log.warning("Redis does not answer: rate limits and budgets are counted per process until it does")

    def _recovered(self) -> None:
        if self._down:
            self._down = False
            log.info("Redis answers again: rate limits and budgets are shared by the replicas again")

    # --- reconciliation -----------------------------------------------------------------------

    def reconcile(self, x: Exchange, ticket: Ticket | None) -> None:
        """After the answer (in the pipeline's `finally`): correct the input estimate, add the
        output tokens and the spend. Never waits: Redis is written by a task of its own."""
        if ticket is None or not ticket.admitted:
            return
        usage = x.usage
        model = x.upstream_model or (x.parsed.model if x.parsed is not None else "")
        tokens_in = (usage.input_tokens or 0) + (usage.cache_write_tokens or 0)
        if usage.input_tokens is None:
            tokens_in = ticket.estimate if x.upstream_attempts else 0
        tokens_out = usage.output_tokens or 0
        spend = self.prices.spend_micro(model, usage)
        if self.usage_log is not None and x.principal is not None:
            self.usage_log.note(x.principal, model, x.started_at, tokens_in, tokens_out, spend)
        deltas: list[tuple[str, int, float]] = []
        for c in ticket.charges:
            counts = c.counter.dim.counts
            delta = (
                tokens_in - ticket.estimate
                if counts == "input"
                else tokens_out
                if counts == "output"
                else spend
                if counts == "spend"
                else 0
            )
            if delta:
                deltas.append((c.key, delta, c.counter.dim.window_s))
        if not deltas:
            return
        if ticket.slot is None:
            self.local.add(deltas)
            return
        task = asyncio.get_running_loop().create_task(self._add(deltas), name="egress-limits-reconcile")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _add(self, deltas: list[tuple[str, int, float]]) -> None:
        assert self.hot is not None
        round = self.hot.round()
        round.call(*add_args(deltas, self.hot.prefix))
        try:
            await round.run()
        except HotStateDown:
            self._fell_back()
            self.fallback.add(deltas)

    async def drain(self) -> None:
        """Wait for the reconciliations in flight (shutdown, tests)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)


def _cost(dim: Dim, estimate: int) -> int:
    counts = dim.counts
    if counts == "requests":
        return 1
    if counts == "input":
        return estimate
    return 0  # output tokens and spend: known after the answer


def usage_view(charges: tuple[Charge, ...], used: tuple[int, ...]) -> dict[str, Any]:
    """input.usage: per scope (key, user, team) and limit, the limit and the whole percent used
    (floored). Whole percents, not counts, so that the decision cache still serves a caller whose
    counts moved a little: the document is the cache's key."""
    view: dict[str, Any] = {}
    for charge, value in zip(charges, used, strict=False):
        c = charge.counter
        limit = c.limit / MICRO if c.dim is Dim.SPEND_PER_MONTH else c.limit
        percent = min(100, value * 100 // c.limit) if c.limit else 100
        view.setdefault(c.scope.value, {"name": c.name})[c.dim.value] = {"limit": limit, "used_percent": percent}
    return view


__all__ = ["Quota", "Ticket", "admits", "counters_of", "usage_view"]
