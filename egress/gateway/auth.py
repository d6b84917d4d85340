"""Gateway keys: who is asking. Only the SHA-256 of a key is stored; the key is shown once.

A key is `egk_` + 43 URL-safe characters (256 bits), so a plain SHA-256 is a sufficient
one-way function (no password stretching is needed for random keys).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import time

from egress.core.errors import EgressError, ErrorCode
from egress.core.exchange import Principal
from egress.core.records import GatewayKey
from egress.store.base import Store

KEY_PREFIX = "egk_"
KEY_HEADER = b"x-egress-key"
ANONYMOUS = Principal(user="anonymous", team=None, key_id=None, method="anonymous")


def hash_key(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def new_key(user: str, team: str | None) -> tuple[str, GatewayKey]:
    secret = KEY_PREFIX + secrets.token_urlsafe(32)
    key = GatewayKey(
        key_id="key_" + secrets.token_hex(6),
        key_hash=hash_key(secret),
        user=user,
        team=team,
        created_at=time.time(),
        revoked_at=None,
    )
    return secret, key


def find_gateway_key(headers: list[tuple[bytes, bytes]]) -> tuple[str | None, bytes | None]:
    """The gateway key and the header that carried it: `x-egress-key`, or an `egk_` value in the
    client's usual credential header (`x-api-key`, `Authorization: Bearer`)."""
    fallback: tuple[str | None, bytes | None] = (None, None)
    for name, value in headers:
        if name == KEY_HEADER:
            return value.decode("latin-1").strip(), name
        if name == b"x-api-key" and value.startswith(b"egk_"):
            fallback = (value.decode("latin-1").strip(), name)
        elif name == b"authorization" and value[7:].startswith(b"egk_") and value[:7].lower() == b"bearer ":
            fallback = (value[7:].decode("latin-1").strip(), name)
    return fallback


class KeyRing:
    """Active keys, cached in memory and refreshed from the store in the background, so a lookup
    never waits on the database. A revoked key stops working within `refresh_s`."""

    def __init__(self, store: Store, refresh_s: float = 2.0) -> None:
        self._store = store
        self._refresh_s = refresh_s
        self._by_hash: dict[str, GatewayKey] = {}
        self._loaded_at = 0.0
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.refresh()
        self._task = asyncio.create_task(self._loop(), name="egress-keyring")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self._refresh_s)
            await self.refresh()

    async def refresh(self) -> None:
        async with self._lock:
            keys = await asyncio.to_thread(self._store.active_keys)
            self._by_hash = {k.key_hash: k for k in keys}
            self._loaded_at = time.monotonic()

    async def lookup(self, secret: str) -> GatewayKey | None:
        digest = hash_key(secret)
        key = self._by_hash.get(digest)
        if key is None and time.monotonic() - self._loaded_at > 0.25:
            # A key created a moment ago: look once more, at most four times a second.
            await self.refresh()
            key = self._by_hash.get(digest)
        if key is not None and hmac.compare_digest(key.key_hash, digest):
            return key
        return None


async def authenticate(
    keyring: KeyRing, headers: list[tuple[bytes, bytes]], required: bool
) -> tuple[Principal, bytes | None]:
    """The caller and the header that carried its gateway key (dropped before forwarding)."""
    secret, header = find_gateway_key(headers)
    if secret is None:
        if required:
            raise EgressError(
                ErrorCode.UNAUTHORIZED,
                "missing gateway key: send it in the x-egress-key header, or as the API key",
            )
        return ANONYMOUS, None
    key = await keyring.lookup(secret)
    if key is None:
        raise EgressError(ErrorCode.UNAUTHORIZED, "the gateway key is unknown or revoked")
    return Principal(user=key.user, team=key.team, key_id=key.key_id, method="gateway_key"), header
