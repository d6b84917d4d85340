"""The HTTP/1.1 server protocol: uvicorn's httptools protocol plus a deadline for headers.

uvicorn bounds idle keep-alive connections but not a client that starts a request and trickles
its headers one byte at a time (a slow-header attack holds a connection open indefinitely). Here
a connection must deliver a request's complete headers within `header_timeout_s` of opening, or
of the request's first byte; otherwise it is closed. The body has its own deadline in the
pipeline (`server.body_read_timeout_s`).

Inbound mTLS (`server.client_ca_file`): the handshake has verified a client certificate that was
sent (chain to the CA, validity period); its subject is put in the request's scope as the ASGI
TLS extension (`extensions.tls.client_cert_name`, and `client_cert_cn`, the common name), read
once per connection. A connection without a certificate has no such extension.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class HeaderDeadlineProtocol(HttpToolsProtocol):
    header_timeout_s: float = 10.0
    _deadline: asyncio.TimerHandle | None = None
    _tls: dict[str, Any] | None = None  # the verified client certificate's subject (mTLS)

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._tls = client_certificate(transport)
        self._arm()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._tls is not None:
            self.scope["extensions"] = {"tls": dict(self._tls)}  # type: ignore[dict-item]  # ASGI TLS extension
        if self._deadline is None:
            self._arm()

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._deadline = self.loop.call_later(self.header_timeout_s, self._too_slow)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _too_slow(self) -> None:
        self._deadline = None
        if not self.transport.is_closing():
            self.transport.close()


def client_certificate(transport: asyncio.BaseTransport) -> dict[str, Any] | None:
    """The ASGI TLS extension's client fields for a verified client certificate, else None.
    `getpeercert()` returns a certificate only once the handshake verified it."""
    ssl_object = transport.get_extra_info("ssl_object")
    if ssl_object is None:
        return None
    cert = ssl_object.getpeercert()
    if not cert:
        return None
    pairs = [(key, value) for rdn in cert.get("subject", ()) for key, value in rdn]
    short = {"commonName": "CN", "organizationName": "O", "organizationalUnitName": "OU", "countryName": "C"}
    name = ",".join(f"{short.get(key, key)}={value}" for key, value in reversed(pairs))
    cn = next((value for key, value in pairs if key == "commonName"), None)
    return {"client_cert_name": name, "client_cert_cn": cn}


def with_header_timeout(seconds: float) -> type[HeaderDeadlineProtocol]:
    """The protocol class, with the deadline set for this process (a server setting, read once).

    The class itself is returned, not a generated subclass, so that uvicorn can hand it to worker
    processes by reference; each worker sets the same value from the same configuration."""
    HeaderDeadlineProtocol.header_timeout_s = seconds
    return HeaderDeadlineProtocol
