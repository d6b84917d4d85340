"""Who is asking: a gateway key, or an OIDC token from the configured issuer.

Gateway keys: only the SHA-256 of a key is stored; the key is shown once. A key is `egk_` + 43
URL-safe characters (256 bits), so a plain SHA-256 is a sufficient one-way function (no password
stretching is needed for random keys).

OIDC tokens (when `auth.oidc` is configured): a JWT in `x-egress-key`, in `x-api-key` (Anthropic
clients) or in `Authorization: Bearer` (OpenAI clients) is verified by `egress.identity.oidc`;
an `egk_` value always goes to the key ring. The principal's method is "oidc", its user and team
come from the claims, and its `key_id` is the token's `jti` (a public identifier an auditor can
match with the identity provider's logs; None without one) — never the token. Like a gateway
key, the header that carried the token is dropped before forwarding. Verified tokens are kept by
digest until they expire (`VerifiedTokenCache`), so the hot path hashes instead of verifying.

Edge checks (every request, from memory: no store read, no write):
- expiry: a key past its `expires_at` is refused (401, "expired"), also while the ring's
  snapshot still holds it; a rotated key's `expires_at` is the end of its overlap;
- scope (`in_scope`, once the model is parsed and the candidates known): the API, the model and
  the endpoints a key or token is scoped to; outside it, a 403 `out_of_scope` that names the
  dimension and what the scope allows, never the key;
- last use: noted in a dict (the latest time per key) and written to the store in one batch at
  most every `last_used_flush_s` (and when the ring stops), never once per request.

Client certificates (inbound mTLS, `server.client_ca_file`): a request without a gateway key or
token, on a connection whose certificate the handshake verified, is its service account: the
certificate's common name looked up in `auth.client_cert_accounts` (method "mtls"). A common name
not listed there is refused; a key or token, when sent as well, decides instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import secrets
import time
from collections.abc import Mapping
from urllib.parse import unquote_plus

from egress.core.endpoint import Endpoint
from egress.core.errors import EgressError, ErrorCode
from egress.core.exchange import Principal
from egress.core.health import Backoff, Check, Health
from egress.core.key_scope import UNSCOPED, CallerKind, KeyScope
from egress.core.records import GatewayKey
from egress.identity.oidc import OidcVerifier, TokenError, looks_like_jwt
from egress.identity.token_cache import VerifiedTokenCache
from egress.store.base import Store

KEY_PREFIX = "egk_"
KEY_HEADER = b"x-egress-key"
GOOG_KEY_HEADER = b"x-goog-api-key"
# Unknown keys trigger a store read at most this often (they share it).
MISS_READ_INTERVAL_S = 0.25
ANONYMOUS = Principal(user="anonymous", team=None, key_id=None, method="anonymous")
# The ring is stale, and vouches for no key, when its last successful read is older than this
# many refresh intervals: a key revoked during a key store outage stops working by then.
STALE_AFTER_REFRESHES = 3
# Last use is written at most this often (one batch for every key used meanwhile).
LAST_USED_FLUSH_S = 30.0

log = logging.getLogger("egress.auth")


def hash_key(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def new_key(
    user: str,
    team: str | None,
    *,
    expires_at: float | None = None,
    scope: KeyScope = UNSCOPED,
    service_account: str | None = None,
    rotated_from: str | None = None,
) -> tuple[str, GatewayKey]:
    secret = KEY_PREFIX + secrets.token_urlsafe(32)
    key = GatewayKey(
        key_id="key_" + secrets.token_hex(6),
        key_hash=hash_key(secret),
        user=user,
        team=team,
        created_at=time.time(),
        revoked_at=None,
        expires_at=expires_at,
        scope=scope,
        service_account=service_account,
        rotated_from=rotated_from,
    )
    return secret, key


def key_principal(key: GatewayKey) -> Principal:
    """A service account's key acts as the service account; a person's as the person."""
    if key.service_account is not None:
        return Principal(
            user=key.service_account,
            team=key.team,
            key_id=key.key_id,
            method="gateway_key",
            kind=CallerKind.SERVICE_ACCOUNT,
            scope=key.scope,
        )
    return Principal(user=key.user, team=key.team, key_id=key.key_id, method="gateway_key", scope=key.scope)


def in_scope(principal: Principal, api: str, model: str, candidates: tuple[Endpoint, ...]) -> tuple[Endpoint, ...]:
    """The candidates the caller's scope lets this request use; a 403 naming the dimension when
    the API or the model is outside the scope, or no candidate is."""
    scope = principal.scope
    if scope.unrestricted:
        return candidates
    if not scope.allows_api(api):
        raise _out_of_scope(f"the API {api} is outside this credential's scope (apis: {', '.join(scope.apis)})")
    if not scope.allows_model(model):
        raise _out_of_scope(
            f"the model {model[:100]!r} is outside this credential's scope (models: {', '.join(scope.models)})"
        )
    if not scope.endpoints:
        return candidates
    kept = tuple(e for e in candidates if e.name in scope.endpoints)
    if not kept:
        raise _out_of_scope(
            f"no endpoint serving this request is within this credential's scope (endpoints: {', '.join(scope.endpoints)})"
        )
    return kept


def _out_of_scope(message: str) -> EgressError:
    return EgressError(ErrorCode.OUT_OF_SCOPE, message, stage="authenticate")


def find_gateway_key(
    headers: list[tuple[bytes, bytes]], accept_jwt: bool = False
) -> tuple[str | None, bytes | None]:
    """The gateway credential and the header that carried it: `x-egress-key`, or an `egk_` value
    (with `accept_jwt`, also a JWT) in the client's usual credential header (`x-api-key`,
    `x-goog-api-key`, `Authorization: Bearer`)."""
    fallback: tuple[str | None, bytes | None] = (None, None)
    for name, value in headers:
        if name == KEY_HEADER:
            return value.decode("latin-1").strip(), name
        if name in _KEY_HEADERS and (value.startswith(b"egk_") or (accept_jwt and _jwt_shaped(value))):
            fallback = (value.decode("latin-1").strip(), name)
        elif (
            name == b"authorization"
            and value[:7].lower() == b"bearer "
            and (value[7:].startswith(b"egk_") or (accept_jwt and _jwt_shaped(value[7:])))
        ):
            fallback = (value[7:].decode("latin-1").strip(), name)
    return fallback


# The clients' own API-key headers: Anthropic's, and Gemini's (a `key` query parameter becomes
# this header: `query_credential`).
_KEY_HEADERS = frozenset({b"x-api-key", GOOG_KEY_HEADER})


def query_credential(query: str, headers: list[tuple[bytes, bytes]]) -> tuple[str, list[tuple[bytes, bytes]]]:
    """A `key` query parameter (Gemini's clients may send their API key so) taken out of the
    query and added as an x-goog-api-key header: from here on it is a credential header like any
    other (a gateway key is found and dropped there; a provider key is forwarded only to a
    passthrough endpoint), and the query that is kept, forwarded and logged never holds it.
    Every other parameter stays as the client encoded it."""
    if "key=" not in query and "%" not in query:  # a name may be percent-encoded (k%65y)
        return query, headers
    kept: list[str] = []
    found: list[tuple[bytes, bytes]] = []
    for pair in query.split("&"):
        name, _, value = pair.partition("=")
        if unquote_plus(name) == "key":
            found.append((GOOG_KEY_HEADER, unquote_plus(value).encode("latin-1", "replace")))
        elif pair:
            kept.append(pair)
    return "&".join(kept), [*headers, *found] if found else headers


def _jwt_shaped(value: bytes) -> bool:
    return value.count(b".") == 2 and looks_like_jwt(value.decode("latin-1").strip())


class OidcAuth:
    """OIDC tokens as gateway credentials: verified once, then served from the digest cache."""

    def __init__(self, verifier: OidcVerifier, cache: VerifiedTokenCache) -> None:
        self.verifier = verifier
        self._cache = cache
        self._prefetch: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.verifier.start()
        # The first request should not wait for the issuer's keys.
        self._prefetch = asyncio.create_task(self.verifier.prefetch(), name="egress-oidc-keys")

    async def stop(self) -> None:
        if self._prefetch is not None:
            self._prefetch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._prefetch
            self._prefetch = None
        await self.verifier.aclose()

    async def principal(self, token: str) -> Principal:
        verified = self._cache.get(token)
        if verified is None:
            try:
                verified = await self.verifier.verify(token)
            except TokenError as exc:
                # The message names the problem (expired, audience, key…), never the token.
                raise EgressError(ErrorCode.UNAUTHORIZED, f"the OIDC token is refused: {exc.message}") from None
            self._cache.put(token, verified)
        if verified.service_account is not None:
            return Principal(
                user=verified.service_account,
                team=verified.team,
                key_id=verified.token_id,
                method="oidc",
                kind=CallerKind.SERVICE_ACCOUNT,
                scope=verified.scope,
            )
        return Principal(
            user=verified.user, team=verified.team, key_id=verified.token_id, method="oidc", scope=verified.scope
        )


class KeyRing:
    """Active keys, cached in memory and refreshed from the store in the background, so a lookup
    never waits on the database. A revoked key stops working within `refresh_s`.

    During a key store outage the loop keeps trying (bounded backoff, logged once per outage) and
    the ring serves its last snapshot for at most `refresh_s` × STALE_AFTER_REFRESHES; past that
    it is stale and every lookup is refused with `auth_unavailable` (503): a key revoked during
    the outage cannot outlive the bound. A miss that cannot be checked against the store is
    refused the same way, never with a bare server error."""

    def __init__(self, store: Store, refresh_s: float, last_used_flush_s: float = LAST_USED_FLUSH_S) -> None:
        self._store = store
        self._refresh_s = refresh_s
        self._flush_s = last_used_flush_s
        # key id -> the latest use since the last flush (a dict write per request, nothing more)
        self._used: dict[str, float] = {}
        self._flushed_at = time.monotonic()
        self._by_hash: dict[str, GatewayKey] = {}
        self._loaded_at = 0.0
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self.health = Health("key ring refresh", log)

    @property
    def stale_after_s(self) -> float:
        return self._refresh_s * STALE_AFTER_REFRESHES

    @property
    def stale(self) -> bool:
        return time.monotonic() - self._loaded_at > self.stale_after_s

    def check(self) -> Check:
        age = time.monotonic() - self._loaded_at
        if self.stale:
            detail = f"the key ring is {age:.1f} s old (bound {self.stale_after_s:g} s): the key store cannot be read"
            return Check("keyring", False, detail, self.health.last_error, self.health.age())
        return Check("keyring", True, f"{len(self._by_hash)} keys, read {age:.1f} s ago", self.health.last_error, age)

    async def start(self) -> None:
        await self.refresh()
        self._task = asyncio.create_task(self._loop(), name="egress-keyring")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None
        with contextlib.suppress(Exception):  # recorded by flush_last_used; use times are not vital
            await self.flush_last_used()

    def note_use(self, key_id: str, when: float) -> None:
        self._used[key_id] = when

    async def flush_last_used(self) -> None:
        """Write the uses noted since the last flush, in one transaction. On failure they are
        kept (merged with newer ones) for the next flush."""
        self._flushed_at = time.monotonic()
        if not self._used:
            return
        batch, self._used = self._used, {}
        try:
            await asyncio.to_thread(self._store.touch_keys, batch)
        except Exception as exc:
            for key_id, when in batch.items():
                if self._used.get(key_id, 0.0) < when:
                    self._used[key_id] = when
            log.warning("last key use could not be written (%s); kept for the next flush", type(exc).__name__)
            raise

    async def _loop(self) -> None:
        backoff = Backoff(first=min(0.1, self._refresh_s), cap=self._refresh_s)
        delay = self._refresh_s
        while True:
            await asyncio.sleep(delay)
            try:
                await self.refresh()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - recorded by refresh(); keep the loop alive
                delay = backoff.next()
                continue
            backoff.reset()
            delay = self._refresh_s
            if time.monotonic() - self._flushed_at >= self._flush_s:
                with contextlib.suppress(Exception):  # logged by flush_last_used; retried next time
                    await self.flush_last_used()

    async def refresh(self, newer_than: float | None = None) -> None:
        """Read the active keys. With `newer_than`, a read that began after it already answers
        (concurrent misses share one read). A failed read leaves the snapshot as it was."""
        async with self._lock:
            if newer_than is not None and self._loaded_at >= newer_than:
                return
            began = time.monotonic()
            try:
                keys = await asyncio.wait_for(asyncio.to_thread(self._store.active_keys), self.stale_after_s)
            except Exception as exc:
                self.health.failed(exc)
                raise
            self._by_hash = {k.key_hash: k for k in keys}
            # The snapshot is as of when the read began: a key committed during it may be missing.
            self._loaded_at = began
            self.health.ok()

    async def lookup(self, secret: str) -> GatewayKey | None:
        if self.stale:
            raise EgressError(
                ErrorCode.AUTH_UNAVAILABLE, "the gateway cannot check keys now (its key store is unreachable); retry later"
            )
        digest = hash_key(secret)
        key = self._by_hash.get(digest)
        if key is None:
            # Perhaps a key created a moment ago: answer from a read that began after this
            # request asked, so a new key works at once. Misses share reads, at most one per
            # MISS_READ_INTERVAL_S; an unknown key waits that long at most for its refusal.
            asked = time.monotonic()
            wait = self._loaded_at + MISS_READ_INTERVAL_S - asked
            if wait > 0:
                await asyncio.sleep(wait)
            try:
                await self.refresh(newer_than=asked)
            except Exception:  # noqa: BLE001 - recorded by refresh(); the key cannot be checked
                raise EgressError(
                    ErrorCode.AUTH_UNAVAILABLE,
                    "the gateway cannot check this key now (its key store is unreachable); retry later",
                ) from None
            key = self._by_hash.get(digest)
        if key is not None and hmac.compare_digest(key.key_hash, digest):
            return key
        return None


async def authenticate(
    keyring: KeyRing,
    headers: list[tuple[bytes, bytes]],
    required: bool,
    oidc: OidcAuth | None = None,
    client_cn: str | None = None,
    cert_accounts: Mapping[str, str] | None = None,
) -> tuple[Principal, bytes | None]:
    """The caller and the header that carried its credential (dropped before forwarding).
    `client_cn`: the common name of a client certificate the TLS handshake verified."""
    secret, header = find_gateway_key(headers, accept_jwt=oidc is not None)
    if secret is None and client_cn is not None:
        account = (cert_accounts or {}).get(client_cn)
        if account is None:
            raise EgressError(
                ErrorCode.UNAUTHORIZED,
                "the client certificate is valid but its subject is not mapped to a service account "
                "(auth.client_cert_accounts)",
            )
        return Principal(user=account, team=None, key_id=None, method="mtls", kind=CallerKind.SERVICE_ACCOUNT), None
    if secret is None:
        if required:
            what = "gateway key or OIDC token" if oidc is not None else "gateway key"
            raise EgressError(
                ErrorCode.UNAUTHORIZED,
                f"missing {what}: send it in the x-egress-key header, or as the API key",
            )
        return ANONYMOUS, None
    if oidc is not None and not secret.startswith(KEY_PREFIX) and looks_like_jwt(secret):
        return await oidc.principal(secret), header
    key = await keyring.lookup(secret)
    if key is None:
        raise EgressError(ErrorCode.UNAUTHORIZED, "the gateway key is unknown or revoked")
    now = time.time()
    if key.expired(now):
        raise EgressError(ErrorCode.UNAUTHORIZED, "the gateway key has expired: ask for a new one")
    keyring.note_use(key.key_id, now)
    return key_principal(key), header
