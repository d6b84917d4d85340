"""Verify OIDC ID and access tokens (JWT) issued by one configured identity provider.

API::

    verifier = OidcVerifier(OidcSettings(issuer="https://idp.example", audience=("egress",)))
    await verifier.start()                    # opens its HTTP session (call on the event loop)
    token = await verifier.verify(jwt_text)   # VerifiedToken, or raises TokenError
    meta = await verifier.metadata()          # the discovery document (login endpoints)
    await verifier.aclose()

`verify(token, audience=..., nonce=...)` overrides the accepted audience (an ID token's audience
is the console's client id) and checks the nonce of a sign-in.

What is checked, in this order (the first failure is the error, with a precise `TokenProblem`):

1. shape: three base64url parts whose header is a JSON object;
2. algorithm: the header's `alg` is in the allowlist, which holds asymmetric algorithms only
   (`none` and every HS* are refused before any key is looked at, so a public key can never be
   used as an HMAC secret);
3. key: the header's `kid` names a key in the issuer's JWKS whose type fits the algorithm (a
   token without `kid` is accepted only when exactly one key fits). The JWKS is fetched with
   aiohttp, never synchronously on the event loop, and cached for `jwks_cache_s`. An unknown
   `kid` refetches it once (a rotated key), at most once per `jwks_refetch_min_s` whatever the
   number of bogus kids, and concurrent verifications share one fetch. While the issuer cannot
   be reached, keys fetched less than `2 × jwks_cache_s` ago stay in use; older ones do not;
4. signature, with the algorithm bound to that key (PyJWT);
5. `iss` equals the issuer; `aud` (a string or a list) contains an accepted audience;
6. `exp` (required), `nbf` and `iat` against the clock, with `leeway_s` of skew either way;
7. required claims are present; the nonce matches, when one is expected;
8. the user and team are read from the claims (below).

Claims to identity: the user is the `user_claim` when configured (it must be a non-empty
string), else `email`, else `sub`. The team is the `team_claim` (default `groups`): a string is
the team, a list gives its first string, anything else (or nothing) means no team.

Errors never quote the token, its claims or its header values (`TokenError.message` is safe to
log and to return to the client).
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import re
import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import aiohttp

import jwt
import orjson
from jwt.exceptions import (
    InvalidAlgorithmError,
    InvalidAudienceError,
    InvalidIssuerError,
    InvalidSignatureError,
    MissingRequiredClaimError,
    PyJWKError,
    PyJWTError,
)

from egress.core.key_scope import DIMENSIONS, UNSCOPED, KeyScope
from egress.identity.oidc_terms import KEY_TYPES, require_secure_url
from egress.identity.settings import OidcSettings

log = logging.getLogger("egress.identity")

MAX_DOCUMENT_BYTES = 1 << 20  # a discovery document or a JWKS larger than this is refused
_NAMED_ALGORITHMS = frozenset(KEY_TYPES) | {"none", "HS256", "HS384", "HS512"}


class TokenProblem(StrEnum):
    MALFORMED = "malformed"
    ALGORITHM = "algorithm_not_allowed"
    UNKNOWN_KEY = "unknown_key"
    BAD_SIGNATURE = "bad_signature"
    ISSUER = "wrong_issuer"
    AUDIENCE = "wrong_audience"
    EXPIRED = "expired"
    NOT_YET_VALID = "not_yet_valid"
    MISSING_CLAIM = "missing_claim"
    NONCE = "wrong_nonce"
    NO_USER = "no_user"
    BAD_SCOPE = "bad_scope"
    KEYS_UNAVAILABLE = "keys_unavailable"


class TokenError(Exception):
    """A token that is refused. `message` never contains the token or its claim values."""

    def __init__(self, problem: TokenProblem, message: str) -> None:
        super().__init__(message)
        self.problem = problem
        self.message = message


@dataclass(frozen=True, slots=True)
class ProviderMetadata:
    """The parts of the issuer's discovery document egress uses."""

    issuer: str
    jwks_uri: str
    authorization_endpoint: str | None
    token_endpoint: str | None


@dataclass(frozen=True, slots=True)
class VerifiedToken:
    user: str
    team: str | None
    subject: str | None
    token_id: str | None  # the `jti` claim: a public identifier, not a credential
    expires_at: float
    claims: Mapping[str, Any] = field(repr=False)
    # From `scope_claim` and `service_account_claim` when configured (egress.core.key_scope).
    scope: KeyScope = UNSCOPED
    service_account: str | None = None




# A JWS in compact form: header and payload non-empty; an empty signature is still JWT-shaped, so
# that `alg: none` is refused for its algorithm rather than for its shape.
_JWT_SHAPE = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")


def looks_like_jwt(value: str) -> bool:
    """Three dot-separated base64url parts, header and payload non-empty."""
    return _JWT_SHAPE.fullmatch(value) is not None


class _KeySet:
    """One fetched JWKS: the raw keys by kid, and PyJWK objects built on first use."""

    def __init__(self, keys: list[Mapping[str, Any]], fetched_at: float) -> None:
        self.keys = [k for k in keys if k.get("use", "sig") == "sig"]
        self.fetched_at = fetched_at
        self._built: dict[tuple[str | None, str], jwt.PyJWK] = {}

    def find(self, kid: str | None, alg: str) -> jwt.PyJWK | None:
        built = self._built.get((kid, alg))
        if built is not None:
            return built
        fitting = [k for k in self.keys if _fits(k, alg)]
        if kid is not None:
            fitting = [k for k in fitting if k.get("kid") == kid]
        if len(fitting) != 1:
            return None
        try:
            # The algorithm is bound to the key: PyJWT verifies with it and nothing else.
            key = jwt.PyJWK(dict(fitting[0]), algorithm=alg)
        except (PyJWKError, ValueError, TypeError):
            return None
        self._built[(kid, alg)] = key
        return key


def _fits(jwk: Mapping[str, Any], alg: str) -> bool:
    kty, crv = KEY_TYPES[alg]
    if jwk.get("kty") != kty or (crv is not None and jwk.get("crv") != crv):
        return False
    declared = jwk.get("alg")
    return declared is None or declared == alg


class OidcVerifier:
    def __init__(
        self, settings: OidcSettings, clock: Callable[[], float] = time.time, *, http_timeout_s: float = 5.0
    ) -> None:
        self.settings = settings
        self._clock = clock
        self._http_timeout_s = http_timeout_s  # a discovery document or JWKS fetch
        self._algorithms = frozenset(settings.algorithms)
        self._session: aiohttp.ClientSession | None = None
        self._metadata: ProviderMetadata | None = None
        self._keys: _KeySet | None = None
        self._last_fetch_attempt = float("-inf")
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        import aiohttp  # imported here: the CLI loads this module with the configuration, and fast

        ctx = ssl.create_default_context(cafile=self.settings.ca_bundle)
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=ctx, limit=4),
            timeout=aiohttp.ClientTimeout(total=self._http_timeout_s),
            cookie_jar=aiohttp.DummyCookieJar(),
        )

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    # --- verification ---------------------------------------------------------------------------

    async def verify(
        self, token: str, *, audience: tuple[str, ...] | None = None, nonce: str | None = None
    ) -> VerifiedToken:
        if not looks_like_jwt(token):
            raise TokenError(TokenProblem.MALFORMED, "the token is not a JWT (three base64url parts)")
        try:
            header = jwt.get_unverified_header(token)
        except PyJWTError:
            raise TokenError(TokenProblem.MALFORMED, "the token's header is not valid") from None
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in self._algorithms:
            shown = alg if isinstance(alg, str) and alg in _NAMED_ALGORITHMS else "?"  # never echo arbitrary input
            raise TokenError(
                TokenProblem.ALGORITHM,
                f"the token's algorithm {shown!r} is not accepted (allowed: {', '.join(self.settings.algorithms)})",
            )
        kid = header.get("kid")
        if kid is not None and not isinstance(kid, str):
            raise TokenError(TokenProblem.MALFORMED, "the token's key id is not a string")
        key = await self._key_for(kid, alg)
        claims = self._decode(token, key, alg, audience or self.settings.audience)
        now = self._clock()
        expires_at = self._check_times(claims, now)
        if nonce is not None and not (
            isinstance(claims.get("nonce"), str) and hmac.compare_digest(claims["nonce"], nonce)
        ):
            raise TokenError(TokenProblem.NONCE, "the ID token's nonce does not match this sign-in")
        return self._identity(claims, expires_at)

    def _decode(self, token: str, key: jwt.PyJWK, alg: str, audience: tuple[str, ...]) -> dict[str, Any]:
        required = ["exp", "iss", "aud", *self.settings.required_claims]
        try:
            return jwt.decode(
                token,
                key=key,
                algorithms=[alg],
                audience=list(audience),
                issuer=self.settings.issuer,
                # Times are checked below, against this verifier's clock, with the bounded leeway.
                options={"verify_exp": False, "verify_nbf": False, "verify_iat": False, "require": required},
            )
        except InvalidSignatureError:
            raise TokenError(TokenProblem.BAD_SIGNATURE, "the token's signature does not verify") from None
        except InvalidAudienceError:
            raise TokenError(
                TokenProblem.AUDIENCE, f"the token is not meant for this gateway (accepted audience: {', '.join(audience)})"
            ) from None
        except InvalidIssuerError:
            raise TokenError(TokenProblem.ISSUER, f"the token was not issued by {self.settings.issuer}") from None
        except MissingRequiredClaimError as exc:
            raise TokenError(TokenProblem.MISSING_CLAIM, f"the token lacks the required claim {exc.claim!r}") from None
        except InvalidAlgorithmError:
            raise TokenError(TokenProblem.ALGORITHM, "the token's algorithm does not fit its key") from None
        except PyJWTError:
            raise TokenError(TokenProblem.MALFORMED, "the token's claims are not valid") from None

    def _check_times(self, claims: Mapping[str, Any], now: float) -> float:
        leeway = self.settings.leeway_s
        exp = _number(claims, "exp")
        if exp is None:
            raise TokenError(TokenProblem.MALFORMED, "the token's exp is not a number")
        if now > exp + leeway:
            raise TokenError(TokenProblem.EXPIRED, "the token has expired")
        nbf = _number(claims, "nbf")
        if "nbf" in claims and nbf is None:
            raise TokenError(TokenProblem.MALFORMED, "the token's nbf is not a number")
        if nbf is not None and now + leeway < nbf:
            raise TokenError(TokenProblem.NOT_YET_VALID, "the token is not valid yet (nbf)")
        iat = _number(claims, "iat")
        if "iat" in claims and iat is None:
            raise TokenError(TokenProblem.MALFORMED, "the token's iat is not a number")
        if iat is not None and now + leeway < iat:
            raise TokenError(TokenProblem.NOT_YET_VALID, "the token was issued in the future (iat)")
        return exp

    def _identity(self, claims: Mapping[str, Any], expires_at: float) -> VerifiedToken:
        names = (self.settings.user_claim,) if self.settings.user_claim else ("email", "sub")
        user = next((claims[n] for n in names if isinstance(claims.get(n), str) and claims[n]), None)
        if user is None:
            raise TokenError(TokenProblem.NO_USER, f"the token has no user claim ({' or '.join(names)})")
        team_value = claims.get(self.settings.team_claim)
        team = team_value if isinstance(team_value, str) and team_value else None
        if isinstance(team_value, list):
            team = next((t for t in team_value if isinstance(t, str) and t), None)
        jti = claims.get("jti")
        sub = claims.get("sub")
        account_claim = self.settings.service_account_claim
        account = claims.get(account_claim) if account_claim else None
        return VerifiedToken(
            user=user,
            team=team,
            subject=sub if isinstance(sub, str) else None,
            token_id=jti[:128] if isinstance(jti, str) and jti else None,
            expires_at=expires_at,
            claims=claims,
            scope=self._scope(claims),
            service_account=account[:128] if isinstance(account, str) and account else None,
        )

    def _scope(self, claims: Mapping[str, Any]) -> KeyScope:
        """The `scope_claim`: an object of lists ({"apis": [...], "models": [...]}), or an OAuth
        style space-separated string whose `apis:X`, `models:X`, `endpoints:X` items count (other
        items, `openid email`, are not egress's). Absent: unscoped. Unreadable: refused, since a
        scope must never widen for being misspelt."""
        name = self.settings.scope_claim
        if not name or name not in claims:
            return UNSCOPED
        raw = claims[name]
        if isinstance(raw, str):
            picked: dict[str, list[str]] = {}
            for item in raw.split():
                dimension, colon, value = item.partition(":")
                if colon and value and dimension in DIMENSIONS:
                    picked.setdefault(dimension, []).append(value)
            raw = picked
        try:
            return KeyScope.from_json(raw)
        except ValueError as exc:
            raise TokenError(TokenProblem.BAD_SCOPE, f"the token's scope claim cannot be read: {exc}") from None

    # --- keys -----------------------------------------------------------------------------------

    async def prefetch(self) -> None:
        """Fetch the keys before the first token arrives (at start). A failure is logged, not
        raised: tokens are refused until the issuer answers."""
        try:
            await self._current_keys()
        except TokenError:
            pass  # already logged by _fetch_keys

    async def _key_for(self, kid: str | None, alg: str) -> jwt.PyJWK:
        keys = await self._current_keys()
        key = keys.find(kid, alg)
        if key is None:
            keys = await self._refetch_for_unknown(keys)
            key = keys.find(kid, alg)
        if key is None:
            raise TokenError(TokenProblem.UNKNOWN_KEY, "the token's signing key is not one of the issuer's keys")
        return key

    async def _current_keys(self) -> _KeySet:
        keys = self._keys
        if keys is not None and self._clock() - keys.fetched_at < self.settings.jwks_cache_s:
            return keys
        async with self._lock:
            if self._keys is not keys and self._keys is not None:
                return self._keys  # another verification fetched them while this one waited
            if not self._may_fetch():
                # A fetch failed a moment ago: do not hammer the issuer on every request.
                if keys is None:
                    raise TokenError(TokenProblem.KEYS_UNAVAILABLE, "the identity provider's keys could not be fetched")
                return self._stale_or_fail(keys)
            return await self._fetch_keys(keys)

    async def _refetch_for_unknown(self, seen: _KeySet) -> _KeySet:
        """A kid not in the keys: the issuer may have rotated. Refetch, but not more than once
        per `jwks_refetch_min_s`, however many unknown kids arrive."""
        async with self._lock:
            if self._keys is not seen and self._keys is not None:
                return self._keys
            if not self._may_fetch():
                return seen
            return await self._fetch_keys(seen)

    def _may_fetch(self) -> bool:
        return self._clock() - self._last_fetch_attempt >= self.settings.jwks_refetch_min_s

    def _stale_or_fail(self, keys: _KeySet) -> _KeySet:
        if self._clock() - keys.fetched_at < 2 * self.settings.jwks_cache_s:
            return keys
        raise TokenError(TokenProblem.KEYS_UNAVAILABLE, "the identity provider's keys could not be fetched")

    async def _fetch_keys(self, previous: _KeySet | None) -> _KeySet:
        """Called with the lock held."""
        self._last_fetch_attempt = self._clock()
        try:
            url = self.settings.jwks_url or (await self._discover()).jwks_uri
            document = await self._get_json(url)
            keys = document.get("keys")
            if not isinstance(keys, list) or not all(isinstance(k, dict) for k in keys):
                raise TokenError(TokenProblem.KEYS_UNAVAILABLE, "the issuer's JWKS has no list of keys")
        except TokenError as exc:
            log.warning("OIDC keys from %s not refreshed: %s", self.settings.issuer, exc.message)
            if previous is None:
                raise
            return self._stale_or_fail(previous)
        self._keys = _KeySet(keys, self._clock())
        return self._keys

    # --- discovery ------------------------------------------------------------------------------

    async def metadata(self) -> ProviderMetadata:
        """The issuer's discovery document (fetched once)."""
        async with self._lock:
            return await self._discover()

    async def _discover(self) -> ProviderMetadata:
        if self._metadata is not None:
            return self._metadata
        url = self.settings.issuer.rstrip("/") + "/.well-known/openid-configuration"
        doc = await self._get_json(url)
        if doc.get("issuer") != self.settings.issuer:
            raise TokenError(TokenProblem.KEYS_UNAVAILABLE, "the discovery document names another issuer")
        jwks_uri = doc.get("jwks_uri")
        if not isinstance(jwks_uri, str):
            raise TokenError(TokenProblem.KEYS_UNAVAILABLE, "the discovery document has no jwks_uri")
        try:
            require_secure_url(jwks_uri)
        except ValueError:
            raise TokenError(TokenProblem.KEYS_UNAVAILABLE, "the discovery document's jwks_uri is not https") from None
        auth, token = doc.get("authorization_endpoint"), doc.get("token_endpoint")
        self._metadata = ProviderMetadata(
            issuer=self.settings.issuer,
            jwks_uri=jwks_uri,
            authorization_endpoint=auth if isinstance(auth, str) else None,
            token_endpoint=token if isinstance(token, str) else None,
        )
        return self._metadata

    async def post_form(self, url: str, form: Mapping[str, str], headers: Mapping[str, str]) -> dict[str, Any]:
        """POST a form to the issuer (the token endpoint) and read its JSON answer, also an OAuth
        error's (400 or 401). Raises TokenError(KEYS_UNAVAILABLE)
        when the issuer cannot be reached or does not answer JSON."""
        return await self._get_json(url, form=form, headers=headers)

    async def _get_json(
        self, url: str, form: Mapping[str, str] | None = None, headers: Mapping[str, str] | None = None
    ) -> dict[str, Any]:
        if self._session is None:
            raise TokenError(TokenProblem.KEYS_UNAVAILABLE, "the OIDC verifier is not started")
        import aiohttp  # imported here: see start()

        try:
            if form is None:
                request = self._session.get(url, allow_redirects=False)
            else:
                request = self._session.post(url, data=dict(form), headers=dict(headers or {}), allow_redirects=False)
            async with request as resp:
                # A token endpoint answers an OAuth error as JSON with a 400 (or 401, invalid_client).
                if resp.status != 200 and (form is None or resp.status not in (400, 401)):
                    raise TokenError(TokenProblem.KEYS_UNAVAILABLE, f"the issuer answered HTTP {resp.status} for {url}")
                body = await resp.content.read(MAX_DOCUMENT_BYTES + 1)
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise TokenError(
                TokenProblem.KEYS_UNAVAILABLE, f"the issuer could not be reached at {url} ({type(exc).__name__})"
            ) from None
        if len(body) > MAX_DOCUMENT_BYTES:
            raise TokenError(TokenProblem.KEYS_UNAVAILABLE, f"the document at {url} is too large")
        try:
            doc = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise TokenError(TokenProblem.KEYS_UNAVAILABLE, f"the document at {url} is not JSON") from None
        if not isinstance(doc, dict):
            raise TokenError(TokenProblem.KEYS_UNAVAILABLE, f"the document at {url} is not a JSON object")
        return doc


def _number(claims: Mapping[str, Any], name: str) -> float | None:
    value = claims.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)
