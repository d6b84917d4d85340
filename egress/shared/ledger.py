"""The session ledger shared by every replica (egress.mask.ledger is its one-process form).

A value masked in one request of an agent session must stay masked in that session's later
requests on any replica: a compacted summary sent through replica B still names the password that
only replica A's context rule found. So each session's value -> placeholder map lives in Redis
(one hash per session, a TTL refreshed by each write), and in the store as the durable fallback
(one sealed row per session, in the vault's table), read when Redis holds nothing for the session
(a Redis restarted empty, an evicted key).

Invariants:
- Never a value in clear outside this process: each hash field is AES-256-GCM sealed under the
  vault key with a fresh nonce and the Redis key plus field as associated data (a field cannot be
  moved to another session); the field name and the hash key are HMACs (of the value; of the user
  and session), so neither a value, a user nor a session id is readable in Redis.
- Keyed by the authenticated user and the client's session id, as the in-process ledger is.
- Fail closed: a read or a write of a session's ledger that Redis does not answer raises
  HotStateDown and the request is refused (egress.gateway.session: 503), because a value the
  ledger would have masked could otherwise leave in clear; a request without a session id never
  touches Redis for the ledger.
- The write to Redis is awaited before the request is forwarded (a replica that masked a value has
  published it before the value's placeholder can come back); the store copy is written after, off
  the request path (bounded queue): it is only read when Redis has lost the session.
- An entry that does not open (tampered, another key) is absent, never guessed.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import os
import time
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Protocol

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from egress.shared.client import HotState, HotStateDown, Round, Slot

log = logging.getLogger("egress.shared")
_VERSION = b"\x01"
_MARKER = b"~"  # a field that says: this session was looked up (the store consulted), nothing sealed
_MAX_QUEUED_STORE_WRITES = 1000


class LedgerStore(Protocol):
    """The store's vault table (egress.store): sealed bytes under an opaque id, with an expiry."""

    def vault_get(self, entry_id: str) -> tuple[bytes, float] | None: ...

    def vault_put(self, entry_id: str, sealed: bytes, expires_at: float) -> None: ...


class SharedLedger:
    def __init__(
        self,
        hot: HotState,
        key: bytes,
        store: LedgerStore | None,
        *,
        ttl_s: float,
        max_values: int,
        store_timeout_s: float,
    ) -> None:
        self.hot = hot
        self.store = store
        self.ttl_s = ttl_s
        self.max_values = max_values
        self.store_timeout_s = store_timeout_s
        self._aead = AESGCM(key)
        self._id_key = hashlib.sha256(b"egress shared ledger id\x00" + key).digest()
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="egress-ledger-store")
        self._queued = 0

    def close(self) -> None:
        self._thread.shutdown(wait=True)

    # --- names: HMACs, never the user, the session or a value ---------------------------------

    def _mac(self, *parts: str) -> str:
        return hmac.new(self._id_key, "\0".join(parts).encode(), hashlib.sha256).hexdigest()

    def redis_key(self, user: str, session: str) -> str:
        return self.hot.key("ledger", self._mac("session", user, session))

    def store_id(self, user: str, session: str) -> str:
        return "ledger-" + self._mac("store", user, session)

    def _field(self, key: str, value: str) -> bytes:
        return self._mac("value", key, value)[:32].encode()

    # --- sealing --------------------------------------------------------------------------------

    def _seal(self, plain: bytes, aad: bytes) -> bytes:
        nonce = os.urandom(12)
        return _VERSION + nonce + self._aead.encrypt(nonce, plain, aad)

    def _open(self, sealed: bytes, aad: bytes) -> bytes | None:
        if not sealed.startswith(_VERSION) or len(sealed) < 29:
            return None
        try:
            return self._aead.decrypt(sealed[1:13], sealed[13:], aad)
        except InvalidTag:
            return None

    # --- the read: one HGETALL, in the request's round ----------------------------------------

    def queue_read(self, round_: Round, user: str, session: str) -> Slot:
        return round_.call("HGETALL", self.redis_key(user, session))

    async def finish_read(self, slot: Slot, user: str, session: str) -> dict[str, str]:
        """value -> placeholder from the round's answer; from the store when Redis had nothing."""
        key = self.redis_key(user, session)
        fields: dict[bytes, bytes] = slot.value or {}
        if fields:
            return self._opened(key, fields)
        # Nothing in Redis: a new session, or a Redis that lost it. The store says which.
        recovered = await self._from_store(user, session)
        await self._write(key, recovered, marker=True)
        return recovered

    async def known(self, user: str, session: str) -> dict[str, str]:
        round_ = self.hot.round()
        slot = self.queue_read(round_, user, session)
        await round_.run()
        return await self.finish_read(slot, user, session)

    def _opened(self, key: str, fields: Mapping[bytes, bytes]) -> dict[str, str]:
        entries: list[tuple[float, str, str]] = []
        for field, sealed in fields.items():
            if field == _MARKER:
                continue
            plain = self._open(sealed, key.encode() + b"\0" + field)
            if plain is None:
                log.warning("a shared ledger entry does not open under this key; ignored")
                continue
            value, placeholder, at = orjson.loads(plain)
            entries.append((float(at), str(value), str(placeholder)))
        entries.sort()
        return {value: placeholder for _, value, placeholder in entries[-self.max_values :]}

    # --- the write: awaited before the request leaves -----------------------------------------

    async def remember(
        self, user: str, session: str, placeholders: Mapping[str, str], known: Mapping[str, str]
    ) -> None:
        """Publish the values this request masked (placeholder -> value) that the session did not
        already hold under the same placeholder; then copy the whole map to the store."""
        new = {value: placeholder for placeholder, value in placeholders.items() if known.get(value) != placeholder}
        if not new:
            return
        await self._write(self.redis_key(user, session), new, marker=False)
        self._to_store(user, session, {**known, **new})

    async def _write(self, key: str, values: Mapping[str, str], *, marker: bool) -> None:
        now = time.time()
        mapping: dict[bytes, bytes] = {}
        for value, placeholder in values.items():
            field = self._field(key, value)
            mapping[field] = self._seal(orjson.dumps([value, placeholder, now]), key.encode() + b"\0" + field)
        if marker:
            mapping[_MARKER] = b""
        round_ = self.hot.round()
        round_.call("HSET", key, *[part for pair in mapping.items() for part in pair])
        round_.call("PEXPIRE", key, int(self.ttl_s * 1000))
        await round_.run()

    # --- the store: the durable copy ------------------------------------------------------------

    async def _from_store(self, user: str, session: str) -> dict[str, str]:
        """The store's copy, within `store_timeout_s`; a store that does not answer refuses the
        request (HotStateDown): an empty answer could be a lost session whose values would leave."""
        if self.store is None:
            return {}
        entry = self.store_id(user, session)
        loop = asyncio.get_running_loop()
        try:
            row = await asyncio.wait_for(
                loop.run_in_executor(self._thread, self.store.vault_get, entry), self.store_timeout_s
            )
        except Exception as exc:  # noqa: BLE001 - any store failure: refuse, never guess
            log.error("shared ledger: the store copy could not be read: %s", type(exc).__name__)
            raise HotStateDown(type(exc).__name__) from exc
        if row is None or row[1] <= time.time():
            return {}
        plain = self._open(row[0], entry.encode())
        if plain is None:
            log.warning("a stored ledger copy does not open under this key; ignored")
            return {}
        doc = orjson.loads(plain)
        return {str(k): str(v) for k, v in doc.items()} if isinstance(doc, dict) else {}

    def _to_store(self, user: str, session: str, values: Mapping[str, str]) -> None:
        if self.store is None:
            return
        if self._queued >= _MAX_QUEUED_STORE_WRITES:
            log.warning("shared ledger: the store copy is behind; a write was skipped (Redis holds it)")
            return
        entry = self.store_id(user, session)
        sealed = self._seal(orjson.dumps(dict(values)), entry.encode())
        self._queued += 1
        future = self._thread.submit(self.store.vault_put, entry, sealed, time.time() + self.ttl_s)
        future.add_done_callback(self._stored)

    def _stored(self, future: Future[None]) -> None:
        self._queued -= 1  # approximate across threads: it only bounds the queue
        exc = future.exception()
        if exc is not None:
            log.error("shared ledger: the store copy failed: %s", type(exc).__name__)
