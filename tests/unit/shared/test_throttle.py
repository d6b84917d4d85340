"""The console's sign-in throttle across replicas, on the real Redis: failures on one replica
throttle the account on another; a success clears it; no account name or address readable in
Redis; without Redis each replica still throttles on its own count."""

from __future__ import annotations

from egress.admin.throttle import LoginThrottle, Throttle
from egress.shared.client import HotState
from egress.shared.throttle import SharedFailures
from tests.support.gateway import free_port
from tests.unit.shared.conftest import settings

KEYS = ("user:alice@example.com", "addr:10.1.2.3")


def replica(hot: HotState) -> Throttle:
    return Throttle(LoginThrottle(3, 60), SharedFailures(hot, 3, 60))


async def test_failures_on_one_replica_throttle_the_account_on_another(prefix: str, raw):
    a_hot, b_hot = HotState(settings(prefix)), HotState(settings(prefix))
    a, b = replica(a_hot), replica(b_hot)
    try:
        for _ in range(3):
            assert await b.retry_after(KEYS) is None
            await a.failed(KEYS)
        wait = await b.retry_after(KEYS)
        assert wait is not None and 55 < wait <= 60
        assert b.local.retry_after(KEYS) is None  # B's own count alone would have let it through
        assert await b.retry_after(("user:bob", "addr:10.1.2.3")) is not None  # the same address
        dumped = b"".join(k + (raw.dump(k) or b"") for k in raw.scan_iter(match=prefix + "*"))
        assert b"alice" not in dumped and b"10.1.2.3" not in dumped
        await b.succeeded(KEYS[:1])
        assert await a.retry_after(KEYS[:1]) is None
    finally:
        await a_hot.close()
        await b_hot.close()


async def test_without_redis_the_replica_throttles_on_its_own_count(prefix: str):
    hot = HotState(settings(prefix, url=f"redis://127.0.0.1:{free_port()}/0", timeout_ms=100, connect_timeout_ms=100))
    throttle = replica(hot)
    try:
        for _ in range(3):
            await throttle.failed(KEYS)
        assert await throttle.retry_after(KEYS) is not None
        assert not hot.check().ok
    finally:
        await hot.close()
