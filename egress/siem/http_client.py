"""One aiohttp session per HTTP sink: TLS per the sink's CA, every send bounded by its timeout."""

from __future__ import annotations

import ssl
from pathlib import Path

import aiohttp

from egress.siem.sink import SinkError
from egress.siem.tls import client_context


class HttpPoster:
    def __init__(
        self,
        sink: str,
        ca_file: Path | None,
        timeout_s: float,
        cert_file: Path | None = None,
        key_file: Path | None = None,
    ) -> None:
        self._sink = sink
        self._ssl: ssl.SSLContext = client_context(ca_file, cert_file, key_file)
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None

    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        """The response's status and body; a transport failure is a SinkError."""
        if self._session is None:
            # Created on first use, on the running loop.
            self._session = aiohttp.ClientSession(
                timeout=self._timeout, connector=aiohttp.TCPConnector(ssl=self._ssl, limit=4)
            )
        try:
            async with self._session.post(url, data=body, headers=headers) as response:
                return response.status, await response.read()
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise SinkError(f"{self._sink}: {url} unreachable ({type(exc).__name__}: {exc})") from exc

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
