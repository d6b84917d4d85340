"""The verified-token cache: by digest, until the token expires or the keys' trust ends, bounded."""

from __future__ import annotations

from egress.identity.oidc import VerifiedToken
from egress.identity.token_cache import VerifiedTokenCache, token_digest
from tests.unit.identity.conftest import Clock


def verified(user: str, expires_at: float) -> VerifiedToken:
    return VerifiedToken(user=user, team=None, subject=user, token_id=None, expires_at=expires_at, claims={})


def test_a_token_is_served_until_it_expires():
    clock = Clock(1000.0)
    cache = VerifiedTokenCache(entries=10, max_age_s=600, clock=clock)
    cache.put("tok-a", verified("a", expires_at=1100.0))
    assert cache.get("tok-a").user == "a"
    assert cache.get("tok-b") is None
    clock.now = 1099.9
    assert cache.get("tok-a") is not None
    clock.now = 1100.0
    assert cache.get("tok-a") is None and len(cache) == 0


def test_no_longer_than_the_keys_are_trusted():
    clock = Clock(1000.0)
    cache = VerifiedTokenCache(entries=10, max_age_s=60, clock=clock)
    cache.put("tok-a", verified("a", expires_at=5000.0))
    clock.now = 1059.0
    assert cache.get("tok-a") is not None
    clock.now = 1060.0
    assert cache.get("tok-a") is None


def test_bounded_least_recently_used_first():
    clock = Clock(0.0)
    cache = VerifiedTokenCache(entries=2, max_age_s=60, clock=clock)
    cache.put("tok-a", verified("a", 50))
    cache.put("tok-b", verified("b", 50))
    assert cache.get("tok-a") is not None  # a is now the most recent
    cache.put("tok-c", verified("c", 50))
    assert [cache.get(t) is not None for t in ("tok-a", "tok-b", "tok-c")] == [True, False, True]
    assert len(cache) == 2
    off = VerifiedTokenCache(entries=0, max_age_s=60, clock=clock)
    off.put("tok-a", verified("a", 50))
    assert off.get("tok-a") is None


def test_the_token_itself_is_not_kept():
    cache = VerifiedTokenCache(entries=10, max_age_s=60, clock=Clock(0.0))
    token = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"
    cache.put(token, verified("a", 50))
    assert list(cache._items) == [token_digest(token)]
