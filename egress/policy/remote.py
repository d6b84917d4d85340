"""A remote OPA server as the policy engine, over its REST data API.

POST {url}/v1/data/{path} with {"input": document} answers {"result": decision}. A missing
result (the rule is undefined), a non-2xx status, a body that is not JSON, or no answer in time
is an engine failure, which the policy service turns into a deny.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import orjson

log = logging.getLogger("egress.policy")


class RemoteOpaError(Exception):
    """The OPA server did not give a decision; the message says why (never the input)."""


class RemoteOpa:
    def __init__(self, url: str, path: str = "egress/decision", timeout_s: float = 0.5) -> None:
        self.url = url.rstrip("/") + "/v1/data/" + path.strip("/")
        # Where the server is, for the log only: host and port, never credentials or the path.
        # Client messages never name it (an internal address is not the client's business).
        self.where = _host_port(self.url)
        # The remote policy can change without egress knowing: its decisions carry the server's
        # address (credentials removed), and the service caches them only briefly.
        self.revision = "opa:" + _without_credentials(self.url)
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None

    async def evaluate(self, document: dict[str, Any]) -> Any:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self._timeout, json_serialize=lambda o: orjson.dumps(o).decode())
        try:
            async with self._session.post(
                self.url, data=orjson.dumps({"input": document}), headers={"content-type": "application/json"}
            ) as resp:
                body = await resp.read()
                if resp.status != 200:
                    log.warning("OPA at %s answered HTTP %d", self.where, resp.status)
                    raise RemoteOpaError(f"OPA answered HTTP {resp.status}")
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.warning("OPA at %s is unreachable: %s", self.where, type(exc).__name__)
            raise RemoteOpaError(f"the OPA server is unreachable ({type(exc).__name__})") from None
        try:
            answer = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise RemoteOpaError("OPA's answer is not JSON") from None
        if not isinstance(answer, dict) or "result" not in answer:
            raise RemoteOpaError("OPA has no decision for this input (the rule is undefined)")
        return answer["result"]

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()

    def close(self) -> None:
        """Synchronous close is a no-op: the session is closed by `aclose` on the event loop."""


def _host_port(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or "?"
    if ":" in host:
        host = f"[{host}]"
    return f"{host}:{parts.port}" if parts.port else host


def _without_credentials(url: str) -> str:
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    return parts._replace(netloc=_host_port(url)).geturl()
