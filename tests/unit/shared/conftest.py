"""The real Redis on its standard loopback port (scripts/test.sh starts it): a test fails, never
skips, when it does not answer. Each test writes under a key prefix of its own and deletes it."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator

import pytest
import redis

from egress.shared.client import HotState
from egress.shared.settings import RedisSettings

REDIS_URL = "redis://127.0.0.1:6379/0"


def settings(prefix: str, url: str = REDIS_URL, **extra: object) -> RedisSettings:
    return RedisSettings.model_validate({"url": url, "key_prefix": prefix, **extra})


@pytest.fixture
def prefix() -> str:
    return f"egress-test-{secrets.token_hex(4)}:"


@pytest.fixture
def raw(prefix: str):
    """A plain synchronous client, to look at what egress wrote (and clean it up)."""
    client = redis.Redis.from_url(REDIS_URL, socket_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        pytest.fail(
            f"Redis does not answer at {REDIS_URL} ({type(exc).__name__}): start redis-server (scripts/test.sh does)"
        )
    yield client
    for key in client.scan_iter(match=prefix + "*"):
        client.delete(key)
    client.close()


@pytest.fixture
async def hot(prefix: str, raw) -> AsyncIterator[HotState]:
    state = HotState(settings(prefix))
    yield state
    await state.close()
