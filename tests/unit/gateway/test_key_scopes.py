"""The edge checks of scoped and expiring keys: expiry, each scope dimension (a 403 that names the
scope, never the key), service accounts, and last use written in batches, never per request."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from egress.core.endpoint import Endpoint
from egress.core.errors import EgressError, ErrorCode
from egress.core.key_scope import CallerKind, KeyScope
from egress.gateway.auth import KeyRing, authenticate, in_scope, key_principal, new_key
from egress.store.sqlite import SqliteStore


class CountingStore(SqliteStore):
    """The real SQLite store, counting its last-use writes."""

    touches = 0
    fail_touch = False

    def touch_keys(self, used):  # type: ignore[no-untyped-def]
        if self.fail_touch:
            raise OSError("disk gone")
        self.touches += 1
        return super().touch_keys(used)


@pytest.fixture
def store(tmp_path: Path) -> CountingStore:
    s = CountingStore(tmp_path / "egress.db")
    s.migrate()
    return s


def endpoint(name: str) -> Endpoint:
    return Endpoint.model_validate(
        {"name": name, "api": "anthropic", "base_url": "https://example.org", "models": ["*"], "credentials": {"none": True},
         "operator": "x", "jurisdiction": "US", "region": "us", "retention_days": 0, "trains_on_api_data": False, "dpa": True}
    )  # fmt: skip


def headers(secret: str) -> list[tuple[bytes, bytes]]:
    return [(b"x-egress-key", secret.encode())]


async def test_an_expired_key_is_refused_as_expired(store: CountingStore) -> None:
    secret, key = new_key("ada", None, expires_at=time.time() - 1)
    store.create_key(key)
    ring = KeyRing(store, refresh_s=60)
    await ring.refresh()
    with pytest.raises(EgressError) as caught:
        await authenticate(ring, headers(secret), required=True)
    assert caught.value.code is ErrorCode.UNAUTHORIZED and caught.value.status == 401
    assert "expired" in caught.value.message
    assert secret not in caught.value.message and key.key_id not in caught.value.message


async def test_a_key_expires_while_the_ring_still_holds_it(store: CountingStore) -> None:
    """Expiry is checked per request against the clock, not at the next refresh."""
    secret, key = new_key("ada", None, expires_at=time.time() + 0.3)
    store.create_key(key)
    ring = KeyRing(store, refresh_s=60)
    await ring.refresh()
    principal, _ = await authenticate(ring, headers(secret), required=True)
    assert principal.key_id == key.key_id
    time.sleep(0.35)
    with pytest.raises(EgressError, match="expired"):
        await authenticate(ring, headers(secret), required=True)


async def test_a_service_account_key_acts_as_the_service_account(store: CountingStore) -> None:
    scope = KeyScope(models=("claude-*",))
    secret, key = new_key("ada", "platform", scope=scope, service_account="ci-build")
    store.create_key(key)
    ring = KeyRing(store, refresh_s=60)
    await ring.refresh()
    principal, _ = await authenticate(ring, headers(secret), required=True)
    assert (principal.user, principal.team, principal.kind, principal.scope) == (
        "ci-build",
        "platform",
        CallerKind.SERVICE_ACCOUNT,
        scope,
    )
    _, person = new_key("ada", None)
    assert key_principal(person).kind is CallerKind.PERSON


CANDIDATES = (endpoint("us"), endpoint("eu"), endpoint("own"))


def principal_with(scope: KeyScope):
    _, key = new_key("ada", None, scope=scope)
    return key_principal(key)


def refused(scope: KeyScope, api: str, model: str) -> EgressError:
    with pytest.raises(EgressError) as caught:
        in_scope(principal_with(scope), api, model, CANDIDATES)
    assert caught.value.code is ErrorCode.OUT_OF_SCOPE and caught.value.status == 403
    return caught.value


def test_unscoped_passes_every_candidate() -> None:
    assert in_scope(principal_with(KeyScope()), "openai.responses", "gpt-5", CANDIDATES) == CANDIDATES


def test_api_dimension() -> None:
    scope = KeyScope(apis=("messages",))
    assert in_scope(principal_with(scope), "anthropic.messages", "claude-x", CANDIDATES) == CANDIDATES
    err = refused(scope, "openai.responses", "gpt-5")
    assert "the API openai.responses is outside this credential's scope (apis: messages)" in err.message


def test_model_dimension() -> None:
    scope = KeyScope(models=("claude-*",))
    assert in_scope(principal_with(scope), "anthropic.messages", "claude-sonnet-4-5", CANDIDATES) == CANDIDATES
    err = refused(scope, "anthropic.messages", "claude")
    assert "model 'claude' is outside this credential's scope (models: claude-*)" in err.message


def test_endpoint_dimension_narrows_then_refuses() -> None:
    scope = KeyScope(endpoints=("eu", "elsewhere"))
    kept = in_scope(principal_with(scope), "anthropic.messages", "claude-x", CANDIDATES)
    assert [e.name for e in kept] == ["eu"]
    with pytest.raises(EgressError) as caught:
        in_scope(principal_with(scope), "anthropic.messages", "claude-x", (endpoint("us"),))
    assert caught.value.code is ErrorCode.OUT_OF_SCOPE
    assert "(endpoints: eu, elsewhere)" in caught.value.message


async def test_last_use_is_written_in_one_batch_not_per_request(store: CountingStore) -> None:
    keys = [new_key(f"u{i}", None) for i in range(3)]
    store.create_keys([k for _, k in keys])
    ring = KeyRing(store, refresh_s=60, last_used_flush_s=3600)
    await ring.refresh()
    for _ in range(50):
        for secret, _ in keys:
            await authenticate(ring, headers(secret), required=True)
    assert store.touches == 0  # 150 requests, no write
    await ring.flush_last_used()
    assert store.touches == 1
    used = {k.key_id: k.last_used_at for k in store.list_keys()}
    assert all(used[k.key_id] is not None and used[k.key_id] > time.time() - 60 for _, k in keys)
    await ring.flush_last_used()
    assert store.touches == 1  # nothing new: no write


async def test_a_failed_flush_keeps_the_uses_for_the_next(store: CountingStore) -> None:
    secret, key = new_key("ada", None)
    store.create_key(key)
    ring = KeyRing(store, refresh_s=60)
    await ring.refresh()
    await authenticate(ring, headers(secret), required=True)
    store.fail_touch = True
    with pytest.raises(OSError):
        await ring.flush_last_used()
    store.fail_touch = False
    await ring.stop()  # stopping flushes what is left
    assert store.get_key(key.key_id).last_used_at is not None


async def test_the_refresh_loop_flushes_on_its_interval(store: CountingStore) -> None:
    secret, key = new_key("ada", None)
    store.create_key(key)
    ring = KeyRing(store, refresh_s=0.05, last_used_flush_s=0.1)
    await ring.start()
    try:
        await authenticate(ring, headers(secret), required=True)
        deadline = time.monotonic() + 5
        while store.get_key(key.key_id).last_used_at is None and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert store.get_key(key.key_id).last_used_at is not None
    finally:
        await ring.stop()
