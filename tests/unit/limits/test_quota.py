"""Admission and reconciliation (egress/limits/quota.py): which counters apply to whom, the 429
that names the limit, the answer's usage added after, input.usage, and Redis down."""

from __future__ import annotations

import logging

import pytest
from prometheus_client import CollectorRegistry

from egress.core.errors import EgressError, ErrorCode
from egress.core.exchange import Api, Exchange, Principal, Usage
from egress.limits.metrics import LimitMetrics
from egress.limits.prices import PriceBook
from egress.limits.quota import Quota, counters_of
from egress.limits.settings import LimitsSettings, ModelPrice
from egress.limits.windows import Dim, Scope
from egress.policy.decide import RequestFacts, policy_input
from egress.shared.client import HotState
from egress.shared.settings import RedisSettings

ALICE = Principal(user="alice", team="qa", key_id="key_a1", method="gateway_key")
BOB = Principal(user="bob", team="dev", key_id="key_b1", method="gateway_key")
PRICES = PriceBook({"m-1": ModelPrice(input_per_mtok=2.0, output_per_mtok=10.0)})


def limits(**raw: object) -> LimitsSettings:
    return LimitsSettings.model_validate(raw)


def exchange(who: Principal = ALICE, body: bytes = b"x" * 400) -> Exchange:
    x = Exchange(
        request_id="req_1", method="POST", path="/v1/messages", query="", headers=[], api=Api.ANTHROPIC_MESSAGES
    )
    x.principal = who
    x.body = body
    return x


def test_who_is_limited_by_what() -> None:
    s = limits(
        default={"requests_per_minute": 600},
        users={"alice": {"output_tokens_per_day": 1000}},
        teams={"qa": {"requests_per_minute": 5}},
        keys={"key_a1": {"spend_per_month_usd": 2.5}},
    )
    found = {(c.scope, c.name, c.dim): c.limit for c in counters_of(s, ALICE)}
    assert found == {
        (Scope.KEY, "key_a1", Dim.SPEND_PER_MONTH): 2_500_000,  # micro-dollars
        (Scope.USER, "alice", Dim.REQUESTS_PER_MINUTE): 600,  # the default, under her own entry
        (Scope.USER, "alice", Dim.OUTPUT_TOKENS_PER_DAY): 1000,
        (Scope.TEAM, "qa", Dim.REQUESTS_PER_MINUTE): 5,
    }
    # bob: the default only (his team and key are not listed)
    assert [(c.scope, c.dim) for c in counters_of(s, BOB)] == [(Scope.USER, Dim.REQUESTS_PER_MINUTE)]
    assert not LimitsSettings().configured and s.configured


async def test_the_team_limit_refuses_with_a_429_naming_it() -> None:
    q = Quota(limits(teams={"qa": {"requests_per_minute": 3}}), PRICES)
    for _ in range(3):
        ticket, usage = await q.admit(exchange())
        assert ticket is not None
    assert usage == {"team": {"name": "qa", "requests_per_minute": {"limit": 3, "used_percent": 100}}}
    with pytest.raises(EgressError) as refused:
        await q.admit(exchange())
    err = refused.value
    assert err.code is ErrorCode.RATE_LIMITED and err.status == 429 and err.retryable
    assert err.details["limit"] == "team qa requests_per_minute"
    assert 1 <= (err.retry_after_s or 0) <= 60
    # bob's team is not limited
    assert (await q.admit(exchange(BOB)))[0] is None


async def test_output_tokens_and_spend_are_reconciled_from_the_answers_usage() -> None:
    q = Quota(limits(users={"alice": {"output_tokens_per_minute": 100, "spend_per_month_usd": 1}}), PRICES)
    ticket, _ = await q.admit(exchange())
    x = exchange()
    x.parsed = None
    x.upstream_model = "m-1"
    x.upstream_attempts = 1
    x.usage = Usage(input_tokens=1000, output_tokens=60)
    q.reconcile(x, ticket)
    keys = {c.counter.dim: c.key for c in ticket.charges}
    assert q.local.value(keys[Dim.OUTPUT_TOKENS_PER_MINUTE]) == 60
    assert q.local.value(keys[Dim.SPEND_PER_MONTH]) == 1000 * 2 + 60 * 10  # micro-dollars
    ticket2, usage = await q.admit(exchange())  # 60 of 100: still room
    assert usage["user"]["output_tokens_per_minute"] == {"limit": 100, "used_percent": 60}
    x.usage = Usage(input_tokens=10, output_tokens=50)
    q.reconcile(x, ticket2)
    with pytest.raises(EgressError) as refused:
        await q.admit(exchange())
    assert refused.value.details["limit"] == "user alice output_tokens_per_minute"


async def test_the_input_estimate_is_corrected_by_the_usage() -> None:
    q = Quota(limits(users={"alice": {"input_tokens_per_minute": 1000}}), PRICES)
    ticket, _ = await q.admit(exchange(body=b"y" * 2000))  # estimated 500
    key = ticket.charges[0].key
    assert q.local.value(key) == 500
    x = exchange()
    x.upstream_attempts = 1
    x.usage = Usage(input_tokens=120, output_tokens=1)
    q.reconcile(x, ticket)
    assert q.local.value(key) == 120
    with pytest.raises(EgressError):  # an estimate larger than the room left is refused
        await q.admit(exchange(body=b"y" * 4000))


async def test_redis_unreachable_falls_back_per_process_with_a_metric_and_one_log_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # A closed port: nothing listens on port 1.
    hot = HotState(RedisSettings.model_validate({"url": "redis://127.0.0.1:1/0", "timeout_ms": 200}))
    registry = CollectorRegistry()
    q = Quota(limits(teams={"qa": {"requests_per_minute": 4}}), PRICES, hot, LimitMetrics(registry))
    caplog.set_level(logging.WARNING, logger="egress.limits")
    admitted = 0
    for _ in range(6):
        try:
            await q.admit(exchange())
            admitted += 1
        except EgressError as err:
            assert err.code is ErrorCode.RATE_LIMITED
    await hot.close()
    assert admitted == 4  # the whole limit, counted in this process
    assert registry.get_sample_value("egress_limit_fallbacks_total") == 6
    assert (
        registry.get_sample_value("egress_limit_refusals_total", {"scope": "team", "limit": "requests_per_minute"}) == 2
    )
    lines = [r for r in caplog.records if r.name == "egress.limits"]
    assert len(lines) == 1 and "per process" in lines[0].getMessage()


async def test_fallback_share_scales_the_limit_per_process() -> None:
    hot = HotState(RedisSettings.model_validate({"url": "redis://127.0.0.1:1/0", "timeout_ms": 200}))
    q = Quota(limits(teams={"qa": {"requests_per_minute": 9}}, fallback_share=1 / 3), PRICES, hot)
    results = []
    for _ in range(5):
        try:
            await q.admit(exchange())
            results.append(True)
        except EgressError:
            results.append(False)
    await hot.close()
    assert results == [True, True, True, False, False]


async def test_counted_in_redis_shared_by_two_quotas(hot: HotState, prefix: str) -> None:
    """Two replicas' quotas over one Redis share the counters."""
    other = HotState(RedisSettings.model_validate({"url": "redis://127.0.0.1:6379/0", "key_prefix": prefix}))
    s = limits(teams={"qa": {"requests_per_minute": 5}})
    a, b = Quota(s, PRICES, hot), Quota(s, PRICES, other)
    admitted = 0
    for i in range(10):
        try:
            await (a if i % 2 else b).admit(exchange())
            admitted += 1
        except EgressError:
            pass
    await other.close()
    assert admitted == 5


async def test_reconcile_reaches_redis(hot: HotState, raw) -> None:  # type: ignore[no-untyped-def]
    q = Quota(limits(teams={"qa": {"output_tokens_per_day": 1000}}), PRICES, hot)
    ticket, _ = await q.admit(exchange())
    x = exchange()
    x.upstream_attempts = 1
    x.usage = Usage(input_tokens=5, output_tokens=321)
    q.reconcile(x, ticket)
    await q.drain()
    key = hot.prefix + ticket.charges[0].key
    assert int(raw.get(key)) == 321
    assert 86_000_000 < raw.pttl(key) <= 86_400_000


def test_prices_match_by_longest_prefix_and_config_overrides() -> None:
    book = PriceBook.of(
        [
            {
                "model": "claude-sonnet-4",
                "input_per_mtok": 3,
                "output_per_mtok": 15,
                "source": "s",
                "as_of": "2025-11-24",
            },
            {"model": "claude-sonnet-4-5", "input_per_mtok": 4, "output_per_mtok": 16},
        ],
        {"claude-sonnet-4": ModelPrice(input_per_mtok=1, output_per_mtok=2)},
    )
    assert book.price("claude-sonnet-4-5-20250929").input_per_mtok == 4  # type: ignore[union-attr]
    assert book.price("claude-sonnet-4-20250514").input_per_mtok == 1  # type: ignore[union-attr]
    assert book.price("unknown") is None
    assert book.spend_micro("unknown", Usage(input_tokens=10**6, output_tokens=10**6)) == 0
    assert book.spend_micro("claude-sonnet-4-5", Usage(input_tokens=10**6, output_tokens=10**6)) == 20_000_000


async def test_the_policy_reads_usage_and_limits() -> None:
    """input.usage: what admission saw, per scope, in whole percents (the decision cache's key
    moves only when a percent does); empty for a caller without limits."""
    q = Quota(limits(users={"alice": {"requests_per_minute": 8}}, teams={"qa": {"spend_per_month_usd": 3}}), PRICES)
    for _ in range(2):
        _, usage = await q.admit(exchange())
    facts = RequestFacts(
        api="anthropic.messages",
        model="m",
        stream=False,
        user="alice",
        team="qa",
        client=None,
        session_id=None,
        usage=usage,
    )
    document = policy_input(facts, (), ())
    assert document["usage"] == {
        "user": {"name": "alice", "requests_per_minute": {"limit": 8, "used_percent": 25}},
        "team": {"name": "qa", "spend_per_month_usd": {"limit": 3.0, "used_percent": 0}},
    }
    plain = RequestFacts(api="a", model="m", stream=False, user="bob", team=None, client=None, session_id=None)
    assert policy_input(plain, (), ())["usage"] == {}
