"""Verified tokens, remembered by digest so an agent's next request skips the signature check.

An agent sends the same token on every request until it expires; verifying it once is enough.
Invariants: the key is the SHA-256 of the token (the token itself is never held as a key); an
entry is used only while the clock is before the token's `exp` and before `max_age_s` after it
was verified (so a key removed from the issuer's JWKS stops working within that time); at most
`entries` tokens are kept, the least recently used leaving first. Only successes are cached.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from collections.abc import Callable

from egress.identity.oidc import VerifiedToken


def token_digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()


class VerifiedTokenCache:
    def __init__(self, entries: int, max_age_s: float, clock: Callable[[], float] = time.time) -> None:
        self._entries = entries
        self._max_age_s = max_age_s
        self._clock = clock
        self._items: OrderedDict[bytes, tuple[VerifiedToken, float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._items)

    def get(self, token: str) -> VerifiedToken | None:
        digest = token_digest(token)
        item = self._items.get(digest)
        if item is None:
            return None
        verified, until = item
        if self._clock() >= until:
            del self._items[digest]
            return None
        self._items.move_to_end(digest)
        return verified

    def put(self, token: str, verified: VerifiedToken) -> None:
        if self._entries <= 0:
            return
        until = min(verified.expires_at, self._clock() + self._max_age_s)
        digest = token_digest(token)
        self._items[digest] = (verified, until)
        self._items.move_to_end(digest)
        while len(self._items) > self._entries:
            self._items.popitem(last=False)
