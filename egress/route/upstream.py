"""The one seam to the outside world: HTTP requests to a configured provider endpoint.

Transport failures become `EgressError`s here, so no aiohttp exception escapes this module.
Connections are pooled and kept alive per endpoint host.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import aiohttp
from multidict import CIMultiDict
from yarl import URL

from egress.core.endpoint import Endpoint
from egress.core.errors import EgressError, ErrorCode

# RFC 9110 §7.6.1 hop-by-hop headers, plus those the HTTP client recomputes for the new hop.
HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
        b"host",
        b"content-length",
    }
)
_CLIENT_CREDENTIALS = frozenset({b"x-api-key", b"authorization", b"api-key"})


@dataclass(frozen=True, slots=True)
class UpstreamSettings:
    connect_timeout_s: float = 10.0
    read_timeout_s: float = 600.0
    pool_size: int = 256
    keepalive_s: float = 60.0
    ca_bundle: str | None = None
    client_cert: str | None = None
    client_key: str | None = None


def upstream_headers(
    client_headers: list[tuple[bytes, bytes]],
    endpoint: Endpoint,
    drop: frozenset[bytes],
) -> CIMultiDict[str]:
    """The client's headers as an open list, minus hop-by-hop ones and `drop` (the gateway
    credential), with the endpoint's credential and static headers added.

    Every other header (`anthropic-*`, `x-stainless-*`, `session_id`, …) passes unchanged.
    """
    connection_listed = set()
    for key, value in client_headers:
        if key == b"connection":
            connection_listed.update(t.strip().lower().encode() for t in value.decode("latin-1").split(","))
    out: CIMultiDict[str] = CIMultiDict()
    creds = endpoint.credentials
    for key, value in client_headers:
        if key in HOP_BY_HOP or key in drop or key in connection_listed:
            continue
        if key in _CLIENT_CREDENTIALS and not creds.passthrough:
            continue
        if key == b"accept-encoding":
            continue
        out.add(key.decode("latin-1"), value.decode("latin-1"))
    # The stream may be rewritten (restoration): it must arrive uncompressed.
    out["accept-encoding"] = "identity"
    if creds.api_key is not None:
        header = creds.header or ("x-api-key" if endpoint.api.value == "anthropic" else "authorization")
        key = creds.api_key.get_secret_value()
        out[header] = f"Bearer {key}" if header.lower() == "authorization" else key
    for name, value in endpoint.headers.items():
        out[name] = value
    return out


class UpstreamResponse:
    """An upstream answer whose body has not been read yet. Always `release()` it."""

    __slots__ = ("status", "headers", "_resp")

    def __init__(self, resp: aiohttp.ClientResponse) -> None:
        self._resp = resp
        self.status = resp.status
        self.headers: list[tuple[bytes, bytes]] = [
            (k.lower(), v) for k, v in resp.raw_headers if k.lower() not in HOP_BY_HOP
        ]

    @property
    def content_type(self) -> str:
        return self._resp.headers.get("content-type", "")

    async def read(self) -> bytes:
        try:
            return await self._resp.read()
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise _map(exc) from None

    async def chunks(self) -> AsyncIterator[bytes]:
        """Body chunks as they arrive: nothing is buffered beyond one network read."""
        try:
            async for chunk in self._resp.content.iter_any():
                yield chunk
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise _map(exc) from None

    def release(self) -> None:
        self._resp.release()

    def abort(self) -> None:
        """Close the connection instead of returning it to the pool (the client went away)."""
        self._resp.close()


def _map(exc: BaseException) -> EgressError:
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        return EgressError(
            ErrorCode.UPSTREAM_UNAVAILABLE,
            "the provider endpoint's TLS certificate is not trusted (system store, or upstream.ca_bundle)",
        )
    if isinstance(exc, aiohttp.ClientSSLError):
        return EgressError(ErrorCode.UPSTREAM_UNAVAILABLE, "the TLS handshake with the provider endpoint failed")
    if isinstance(exc, (asyncio.TimeoutError, aiohttp.ServerTimeoutError)):
        return EgressError(ErrorCode.UPSTREAM_TIMEOUT, "the provider endpoint did not answer in time")
    if isinstance(exc, (aiohttp.ClientConnectorError, aiohttp.ServerDisconnectedError)):
        return EgressError(ErrorCode.UPSTREAM_UNAVAILABLE, "the provider endpoint could not be reached")
    return EgressError(
        ErrorCode.UPSTREAM_PROTOCOL_ERROR, f"the provider endpoint broke the exchange ({type(exc).__name__})"
    )


class UpstreamClient:
    def __init__(self, settings: UpstreamSettings) -> None:
        self._settings = settings
        self._session: aiohttp.ClientSession | None = None
        # Per endpoint, built once: its own timeouts where it sets them, else the session's.
        self._timeouts: dict[str, aiohttp.ClientTimeout | None] = {}
        # Per endpoint with its own CA bundle (tls_ca_bundle), built on its first request.
        self._tls: dict[str, ssl.SSLContext] = {}

    def _tls_context(self, cafile: str | None) -> ssl.SSLContext:
        """Verifies the endpoint with `cafile` (None: the system store); presents the client
        certificate when one is configured (mTLS)."""
        ctx = ssl.create_default_context(cafile=cafile)
        if self._settings.client_cert:
            ctx.load_cert_chain(self._settings.client_cert, self._settings.client_key)
        return ctx

    def _endpoint_tls(self, endpoint: Endpoint) -> ssl.SSLContext | None:
        if endpoint.tls_ca_bundle is None:
            return None  # the session's context
        ctx = self._tls.get(endpoint.name)
        if ctx is None:
            ctx = self._tls[endpoint.name] = self._tls_context(endpoint.tls_ca_bundle)
        return ctx

    def _endpoint_timeout(self, endpoint: Endpoint) -> aiohttp.ClientTimeout | None:
        timeout = None
        if endpoint.connect_timeout_s is not None or endpoint.read_timeout_s is not None:
            timeout = aiohttp.ClientTimeout(
                total=None,
                connect=endpoint.connect_timeout_s or self._settings.connect_timeout_s,
                sock_read=endpoint.read_timeout_s or self._settings.read_timeout_s,
            )
        self._timeouts[endpoint.name] = timeout
        return timeout

    async def start(self) -> None:
        connector = aiohttp.TCPConnector(
            limit=self._settings.pool_size,
            keepalive_timeout=self._settings.keepalive_s,
            ssl=self._tls_context(self._settings.ca_bundle),
            enable_cleanup_closed=True,
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(
                total=None,
                connect=self._settings.connect_timeout_s,
                sock_read=self._settings.read_timeout_s,
            ),
            auto_decompress=True,
            # One session serves every user: a provider's Set-Cookie must never be replayed on
            # another user's request.
            cookie_jar=aiohttp.DummyCookieJar(),
            skip_auto_headers=("User-Agent", "Content-Type"),
            raise_for_status=False,
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def send(
        self, endpoint: Endpoint, path: str, query: str, headers: CIMultiDict[str], body: bytes
    ) -> UpstreamResponse:
        if self._session is None:
            raise EgressError(ErrorCode.SHUTTING_DOWN, "the gateway is not accepting requests")
        url = endpoint.base_url + path
        params = _merge_query(query, endpoint.query)
        if params:
            url = f"{url}?{params}"
        timeout = self._timeouts[endpoint.name] if endpoint.name in self._timeouts else self._endpoint_timeout(endpoint)
        options: dict[str, Any] = {}
        if timeout is not None:  # else the session's timeouts (aiohttp reads timeout=None as "none at all")
            options["timeout"] = timeout
        tls = self._endpoint_tls(endpoint)
        if tls is not None:  # else the session's context (upstream.ca_bundle or the system store)
            options["ssl"] = tls
        try:
            resp = await self._session.post(
                URL(url, encoded=True), data=body, headers=headers, allow_redirects=False, **options
            )
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise _map(exc) from None
        return UpstreamResponse(resp)


def _merge_query(client_query: str, endpoint_query: dict[str, str]) -> str:
    extra = urlencode(endpoint_query) if endpoint_query else ""
    if client_query and extra:
        return f"{client_query}&{extra}"
    return client_query or extra
