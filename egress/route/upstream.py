"""The one seam to the outside world: HTTP requests to a configured provider endpoint.

Transport failures become `UpstreamFailure`s here (an `EgressError` naming the endpoint and the
cause class), so no aiohttp exception escapes this module.
Connections are pooled and kept alive per endpoint host.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import re
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from urllib.parse import urlencode

import aiohttp
from multidict import CIMultiDict
from yarl import URL

from egress.core.endpoint import Endpoint
from egress.core.errors import EgressError, ErrorCode
from egress.route.clouds.adapter import CloudAdapters
from egress.route.clouds.base import Answer
from egress.route.settings import UpstreamSettings

log = logging.getLogger("egress.upstream")

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
_CLIENT_CREDENTIALS = frozenset({b"x-api-key", b"authorization", b"api-key", b"x-goog-api-key"})
# The header an endpoint's key goes in, by its `api`, where it is not `Authorization: Bearer`.
_KEY_HEADER = {"anthropic": "x-api-key", "gemini": "x-goog-api-key"}
# An auth-free endpoint (`credentials: none`) gets none of the client's credentials of any kind:
# API keys, bearer tokens (API keys and logins alike), cookies, and account or organisation ids.
# Any header whose name has one of these parts is dropped; the protocol headers (content-type,
# accept, anthropic-version, anthropic-beta, openai-beta, user-agent, x-stainless-*) pass.
_CREDENTIAL_NAME_PARTS = (
    b"auth",
    b"key",
    b"token",
    b"cookie",
    b"secret",
    b"password",
    b"session",
    b"account",
    b"organization",
    b"project",
)
_ERRNO = re.compile(r"\[Errno (\d+)\]")


def upstream_headers(
    client_headers: list[tuple[bytes, bytes]],
    endpoint: Endpoint,
    drop: frozenset[bytes],
) -> CIMultiDict[str]:
    """The client's headers as an open list, minus hop-by-hop ones and `drop` (the gateway
    credential), with the endpoint's credential and static headers added.

    Every other header (`anthropic-*`, `x-stainless-*`, `session_id`, …) passes unchanged.
    """
    connection_listed: set[bytes] = set()
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
        if creds.none and any(part in key for part in _CREDENTIAL_NAME_PARTS):
            continue
        if key == b"accept-encoding":
            continue
        out.add(key.decode("latin-1"), value.decode("latin-1"))
    # The stream may be rewritten (restoration): it must arrive uncompressed.
    out["accept-encoding"] = "identity"
    if creds.api_key is not None:
        header = creds.header or _KEY_HEADER.get(endpoint.api.value, "authorization")
        secret = creds.api_key.get_secret_value()
        out[header] = f"Bearer {secret}" if header.lower() == "authorization" else secret
    for name, static in endpoint.headers.items():
        out[name] = static
    return out


class FailureCause(StrEnum):
    """Why an endpoint failed, as a class a person can act on (stable values, for logs and tests)."""

    DNS = "dns_resolution_failed"
    REFUSED = "connection_refused"
    TLS_CERTIFICATE = "tls_certificate_not_trusted"
    TLS_HANDSHAKE = "tls_handshake_failed"
    CONNECT_TIMEOUT = "connect_timeout"
    READ_TIMEOUT = "read_timeout"
    RESET = "connection_reset"
    CLOSED = "connection_closed"
    CONNECT_FAILED = "connect_failed"
    HTTP_STATUS = "http_status"
    PROTOCOL = "protocol_error"


@dataclass(frozen=True, slots=True)
class Target:
    """What a failure names about an endpoint: its configured name and where it connects.

    Only the name goes to clients; host and port go to the server log. Never the URL: it may
    carry userinfo, and the endpoint's query may carry a secret."""

    name: str
    host: str
    port: int
    connect_timeout_s: float
    read_timeout_s: float

    @property
    def address(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


class UpstreamFailure(EgressError):
    """An endpoint that could not be reached or broke the exchange.

    `message` (to the client) names the endpoint and the cause class; `log_detail` adds what
    only the operator should see (the underlying error's text). Neither holds a URL, a header
    or a credential."""

    def __init__(self, code: ErrorCode, target: Target, cause: FailureCause, detail: str, log_detail: str = "") -> None:
        super().__init__(
            code, f"endpoint {target.name!r} failed: {detail}", details={"endpoint": target.name, "cause": cause.value}
        )
        self.target = target
        self.cause = cause
        self.detail = detail
        self.log_detail = log_detail or detail


class UpstreamResponse:
    """An upstream answer whose body has not been read yet. Always `release()` it.

    With an `answer` (a cloud endpoint's: egress.route.clouds), status, headers, body and stream
    are already the client's API's: the relay never sees the cloud's own framing."""

    __slots__ = ("status", "headers", "content_type", "_resp", "_target", "_request_id", "_answer")

    def __init__(
        self, resp: aiohttp.ClientResponse, target: Target, request_id: str = "", answer: Answer | None = None
    ) -> None:
        self._resp = resp
        self._target = target
        self._request_id = request_id
        self._answer = answer
        self.status = resp.status
        self.headers: list[tuple[bytes, bytes]] = [
            (k.lower(), v) for k, v in resp.raw_headers if k.lower() not in HOP_BY_HOP
        ]
        self.content_type: str = resp.headers.get("content-type", "")
        if answer is not None:
            self.status, self.headers, self.content_type = answer.head(self.status, self.headers, self.content_type)

    async def read(self) -> bytes:
        try:
            raw = await self._resp.read()
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise self._failed_answering(exc) from None
        return raw if self._answer is None else self._answer.body(raw)

    async def chunks(self) -> AsyncIterator[bytes]:
        """Body chunks as they arrive: nothing is buffered beyond one network read (a cloud's
        frame cut by a read waits for the rest of the frame)."""
        answer = self._answer
        try:
            async for chunk in self._resp.content.iter_any():
                if answer is None:
                    yield chunk
                elif out := answer.feed(chunk):
                    yield out
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise self._failed_answering(exc) from None
        if answer is not None and (tail := answer.finish()):
            yield tail

    def _failed_answering(self, exc: BaseException) -> UpstreamFailure:
        """A failure after the status line: no other endpoint can take over, so it is logged here."""
        err = failure(exc, self._target, answering=True)
        target = self._target
        log.warning(
            "endpoint %s (%s) failed while answering HTTP %d: %s (request %s)",
            target.name,
            target.address,
            self.status,
            err.log_detail,
            self._request_id,
        )
        return err

    def release(self) -> None:
        self._resp.release()

    def abort(self) -> None:
        """Close the connection instead of returning it to the pool (the client went away)."""
        self._resp.close()


def _refused(exc: OSError) -> bool:
    """ECONNREFUSED, also when every address of the host refused (asyncio then raises an
    OSError without errno whose text lists each attempt's `[Errno N]`)."""
    if exc.errno is not None:
        return exc.errno == errno.ECONNREFUSED
    codes = set(_ERRNO.findall(str(exc)))
    return codes == {str(errno.ECONNREFUSED)}


def failure(exc: BaseException, target: Target, answering: bool = False) -> UpstreamFailure:
    """The failure class of an aiohttp (or asyncio) exception. `answering`: the status line had
    arrived and the body was being read. Order matters: the specific subclasses come first."""
    unavailable, timeout, broken = (
        ErrorCode.UPSTREAM_UNAVAILABLE,
        ErrorCode.UPSTREAM_TIMEOUT,
        ErrorCode.UPSTREAM_PROTOCOL_ERROR,
    )
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        detail = "DNS resolution failed for the endpoint's host"
        return UpstreamFailure(unavailable, target, FailureCause.DNS, detail, f"DNS resolution failed ({exc.os_error})")
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        verify = getattr(exc.certificate_error, "verify_message", None) or str(exc.certificate_error)
        return UpstreamFailure(
            unavailable,
            target,
            FailureCause.TLS_CERTIFICATE,
            "TLS certificate is not trusted (certificate verify failed; trust it with upstream.ca_bundle "
            "or the endpoint's tls_ca_bundle)",
            f"TLS certificate verify failed: {verify}",
        )
    if isinstance(exc, aiohttp.ServerFingerprintMismatch):
        return UpstreamFailure(
            unavailable, target, FailureCause.TLS_CERTIFICATE, "TLS certificate fingerprint mismatch"
        )
    if isinstance(exc, aiohttp.ClientSSLError) or (
        isinstance(exc, aiohttp.ClientOSError)
        and isinstance(getattr(exc, "os_error", None) or exc.__cause__, ssl.SSLError)
    ):
        return UpstreamFailure(
            unavailable, target, FailureCause.TLS_HANDSHAKE, "TLS handshake failed", f"TLS handshake failed: {exc}"
        )
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        detail = f"connect timeout: no connection within {target.connect_timeout_s:g} s"
        return UpstreamFailure(timeout, target, FailureCause.CONNECT_TIMEOUT, detail)
    if isinstance(exc, (aiohttp.SocketTimeoutError, aiohttp.ServerTimeoutError, asyncio.TimeoutError)):
        detail = f"read timeout: no data for {target.read_timeout_s:g} s"
        return UpstreamFailure(timeout, target, FailureCause.READ_TIMEOUT, detail)
    if isinstance(exc, aiohttp.ClientConnectorError):
        if _refused(exc.os_error):
            return UpstreamFailure(unavailable, target, FailureCause.REFUSED, "connection refused")
        reason = exc.os_error.strerror or type(exc.os_error).__name__
        return UpstreamFailure(unavailable, target, FailureCause.CONNECT_FAILED, f"connection failed ({reason})")
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        code = broken if answering else unavailable
        where = "before the answer was complete" if answering else "before answering"
        return UpstreamFailure(code, target, FailureCause.CLOSED, f"connection closed {where}")
    if isinstance(exc, aiohttp.ClientPayloadError):
        detail = "connection closed before the answer was complete"
        return UpstreamFailure(broken, target, FailureCause.CLOSED, detail, f"{detail} ({exc})")
    if isinstance(exc, aiohttp.ClientOSError):
        if exc.errno in (errno.ECONNRESET, errno.EPIPE):
            code = broken if answering else unavailable
            return UpstreamFailure(code, target, FailureCause.RESET, "connection reset by the endpoint")
        reason = exc.strerror or type(exc).__name__
        return UpstreamFailure(unavailable, target, FailureCause.CONNECT_FAILED, f"connection failed ({reason})")
    detail = f"the endpoint broke the exchange ({type(exc).__name__})"
    return UpstreamFailure(broken, target, FailureCause.PROTOCOL, detail, f"{detail}: {exc}")


class UpstreamClient:
    def __init__(self, settings: UpstreamSettings) -> None:
        self._settings = settings
        self._session: aiohttp.ClientSession | None = None
        # Per endpoint, built once: its own timeouts where it sets them, else the session's.
        self._timeouts: dict[str, aiohttp.ClientTimeout | None] = {}
        # Per endpoint with its own CA bundle (tls_ca_bundle), built on its first request.
        self._tls: dict[str, ssl.SSLContext] = {}
        self._targets: dict[str, Target] = {}
        # Cloud endpoints (Bedrock, Vertex): their path and body mapping, signing, answer.
        self.clouds = CloudAdapters()

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
        self, endpoint: Endpoint, path: str, query: str, headers: CIMultiDict[str], body: bytes, request_id: str = ""
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
        target = self.target(endpoint)
        cloud = self.clouds.get(endpoint)
        if cloud is not None:
            await cloud.authorize(url, headers, body)  # last: signs the bytes that leave
        try:
            resp = await self._session.post(
                URL(url, encoded=True), data=body, headers=headers, allow_redirects=False, **options
            )
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise failure(exc, target) from None
        return UpstreamResponse(resp, target, request_id, cloud.answer() if cloud is not None else None)

    def target(self, endpoint: Endpoint) -> Target:
        """The endpoint's name, host, port and effective timeouts (built once per endpoint)."""
        target = self._targets.get(endpoint.name)
        if target is None:
            url = URL(endpoint.base_url)
            target = self._targets[endpoint.name] = Target(
                name=endpoint.name,
                host=url.host or "",
                port=url.port or 0,
                connect_timeout_s=endpoint.connect_timeout_s or self._settings.connect_timeout_s,
                read_timeout_s=endpoint.read_timeout_s or self._settings.read_timeout_s,
            )
        return target


def _merge_query(client_query: str, endpoint_query: dict[str, str]) -> str:
    extra = urlencode(endpoint_query) if endpoint_query else ""
    if client_query and extra:
        return f"{client_query}&{extra}"
    return client_query or extra
