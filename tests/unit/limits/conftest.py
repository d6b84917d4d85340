"""The real Redis on its loopback port (fails, never skips, when it does not answer); each test
writes under a key prefix of its own and deletes it after."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Iterator

import pytest
import redis

from egress.shared.client import HotState
from egress.shared.settings import RedisSettings

REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture
def prefix() -> str:
    return f"egress-limits-test-{secrets.token_hex(4)}:"


@pytest.fixture
def raw(prefix: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(REDIS_URL, socket_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        pytest.fail(
            f"Redis does not answer at {REDIS_URL} ({type(exc).__name__}): start redis-server (scripts/test.sh)"
        )
    yield client
    for key in client.scan_iter(match=prefix + "*"):
        client.delete(key)
    client.close()


@pytest.fixture
async def hot(prefix: str, raw: redis.Redis) -> AsyncIterator[HotState]:
    state = HotState(RedisSettings.model_validate({"url": REDIS_URL, "key_prefix": prefix}))
    yield state
    await state.close()


@pytest.fixture
def hot_factory(raw: redis.Redis):  # type: ignore[no-untyped-def]
    """Fresh clients, each under a prefix of its own (hypothesis examples share no counters)."""
    made: list[str] = []

    async def make() -> HotState:
        p = f"egress-limits-test-{secrets.token_hex(4)}:"
        made.append(p)
        return HotState(RedisSettings.model_validate({"url": REDIS_URL, "key_prefix": p}))

    yield make
    for p in made:
        for key in raw.scan_iter(match=p + "*"):
            raw.delete(key)
