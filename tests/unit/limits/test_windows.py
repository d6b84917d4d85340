"""Window math and the admission rule, in process (LocalCounters) and in Redis (the Lua script):
both admit exactly the limit within a window, and agree on every sequence."""

from __future__ import annotations

import asyncio

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from egress.limits.counters import Charge, LocalCounters, Verdict, add_args, admit_args
from egress.limits.windows import Counter, Dim, Scope, admits, estimate_tokens, retry_after_s
from egress.shared.client import HotState


def charge(dim: Dim, limit: int, cost: int, name: str = "qa") -> Charge:
    c = Counter(Scope.TEAM, name, dim, limit)
    return Charge(c, c.key(0.0), cost)


@given(limit=st.integers(1, 500), extra=st.integers(0, 50))
def test_exactly_the_limit_is_admitted_within_a_window(limit: int, extra: int) -> None:
    local = LocalCounters()
    c = (charge(Dim.REQUESTS_PER_MINUTE, limit, 1),)
    admitted = sum(local.admit(c, now=10.0 + i * 1e-3).refused is None for i in range(limit + extra))
    assert admitted == min(limit, limit + extra)


@given(limit=st.integers(1, 100), elapsed=st.floats(0, 200))
def test_a_window_ends_one_window_after_its_first_use(limit: int, elapsed: float) -> None:
    local = LocalCounters()
    c = (charge(Dim.REQUESTS_PER_MINUTE, limit, 1),)
    for _ in range(limit):
        assert local.admit(c, now=100.0).refused is None
    verdict = local.admit(c, now=100.0 + elapsed)
    assert (verdict.refused is None) == (elapsed >= 60.0)
    if verdict.refused is not None:
        assert retry_after_s(verdict.ttl_ms, 60.0) == max(1, -(-int((60.0 - elapsed) * 1000) // 1000))


@given(costs=st.lists(st.integers(0, 300), max_size=40), limit=st.integers(1, 2000))
def test_the_rule_never_lets_a_counter_pass_its_limit_by_what_is_charged_now(costs: list[int], limit: int) -> None:
    local = LocalCounters()
    for i, cost in enumerate(costs):
        c = (charge(Dim.INPUT_TOKENS_PER_MINUTE, limit, cost),)
        before = local.value(c[0].key, now=1.0 + i * 1e-3)
        verdict = local.admit(c, now=1.0 + i * 1e-3)
        assert (verdict.refused is None) == admits(before, cost, limit)
        assert local.value(c[0].key, now=1.0 + i * 1e-3) <= limit


def test_all_or_nothing_across_counters() -> None:
    local = LocalCounters()
    roomy = charge(Dim.REQUESTS_PER_MINUTE, 100, 1, "roomy")
    tight = charge(Dim.INPUT_TOKENS_PER_MINUTE, 10, 50, "tight")
    verdict = local.admit((roomy, tight), now=0.0)
    assert verdict.refused == tight
    assert local.value(roomy.key, now=0.0) == 0  # the roomy counter was not charged either


def test_post_paid_counters_refuse_once_spent() -> None:
    local = LocalCounters()
    out = (charge(Dim.OUTPUT_TOKENS_PER_DAY, 100, 0),)
    assert local.admit(out, now=0.0).refused is None
    local.add([(out[0].key, 99, DAY)], now=0.0)
    assert local.admit(out, now=1.0).refused is None  # 99 used: one more token of room
    local.add([(out[0].key, 5, DAY)], now=1.0)
    assert local.admit(out, now=2.0).refused is not None


DAY = 86_400.0


def test_a_negative_correction_never_creates_nor_undershoots() -> None:
    local = LocalCounters()
    local.add([("k", -5, 60.0)], now=0.0)
    assert "k" not in local.cells
    local.add([("k", 3, 60.0), ("k", -10, 60.0)], now=0.0)
    assert local.value("k", now=0.0) == 0


@given(st.integers(0, 10**9))
def test_estimate_is_bytes_over_four_rounded_up(n: int) -> None:
    assert estimate_tokens(n) * 4 >= n > (estimate_tokens(n) - 1) * 4


def test_spend_counters_are_per_calendar_month() -> None:
    c = Counter(Scope.USER, "alice", Dim.SPEND_PER_MONTH, 10)
    assert c.key(1_764_547_200.0).endswith(":2025-12")  # 2025-12-01T00:00:00Z
    assert c.key(1_764_547_199.0).endswith(":2025-11")


def test_retry_after_when_the_counter_has_no_expiry() -> None:
    assert retry_after_s(-1, 60.0) == 60
    assert retry_after_s(1, 60.0) == 1
    assert retry_after_s(12_001, 60.0) == 13


# --- the same rule in Redis -----------------------------------------------------------------


async def _admit(hot: HotState, charges: tuple[Charge, ...]) -> Verdict:
    round = hot.round()
    slot = round.call(*admit_args(charges, hot.prefix))
    await round.run()
    return Verdict.of_script(charges, slot.value)


# The factory gives each example a prefix of its own: nothing is shared between examples.
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(costs=st.lists(st.tuples(st.integers(0, 2), st.integers(0, 40)), min_size=1, max_size=25))
def test_redis_and_process_agree(costs: list[tuple[int, int]], hot_factory) -> None:  # type: ignore[no-untyped-def]
    async def run() -> None:
        hot = await hot_factory()
        try:
            local = LocalCounters()
            dims = (Dim.REQUESTS_PER_MINUTE, Dim.INPUT_TOKENS_PER_MINUTE, Dim.OUTPUT_TOKENS_PER_MINUTE)
            for which, cost in costs:
                dim = dims[which]
                c = (charge(dim, 60, 1 if which == 0 else cost),)
                mine = local.admit(c, now=0.0)
                theirs = await _admit(hot, c)
                assert (mine.refused is None) == (theirs.refused is None)
                assert mine.used == theirs.used
                if which == 2 and mine.refused is None:  # output: added after the answer
                    local.add([(c[0].key, cost, 60.0)], now=0.0)
                    r = hot.round()
                    r.call(*add_args([(c[0].key, cost, 60.0)], hot.prefix))
                    await r.run()
        finally:
            await hot.close()

    asyncio.run(run())


async def test_concurrent_admissions_in_redis_admit_exactly_the_limit(hot: HotState, raw) -> None:  # type: ignore[no-untyped-def]
    c = (charge(Dim.REQUESTS_PER_MINUTE, 37, 1),)
    # 80 at once: redis-py 8 pools at most 100 connections by default (more fail at once).
    verdicts = await asyncio.gather(*(_admit(hot, c) for _ in range(80)))
    assert sum(v.refused is None for v in verdicts) == 37
    ttl = raw.pttl(hot.prefix + c[0].key)
    assert 0 < ttl <= 60_000
    refused = next(v for v in verdicts if v.refused is not None)
    assert 0 < refused.ttl_ms <= 60_000
