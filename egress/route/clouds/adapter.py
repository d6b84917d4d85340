"""The seam for upstreams that do not take the client's request as it is: a cloud's own API.

An endpoint kind with an adapter (`api: bedrock`, `api: vertex`) gets, per attempt:
1. `prepare`: the path, query and body the cloud takes (the model id in the path, the body
   mapped; sans-IO, egress.wire.bedrock / vertex), before the egress record is written, so the
   audit holds the bytes that leave;
2. `authorize`: its credential on the final method, URL, headers and body (a SigV4 signature,
   an OAuth2 token), last, after which nothing about the request changes;
3. `answer`: the answer turned into the client's API (status, headers, body or stream).

Kinds without one (`anthropic`, `openai`, ...) are sent as they are: `get` returns None.
"""

from __future__ import annotations

from collections.abc import Callable

from egress.core.endpoint import Endpoint, WireApi
from egress.route.clouds.base import CloudAdapter
from egress.route.clouds.bedrock import BedrockAdapter
from egress.route.clouds.vertex import VertexAdapter
from egress.route.clouds.vertex_gemini import VertexGeminiAdapter

ADAPTERS: dict[WireApi, Callable[[Endpoint], CloudAdapter]] = {
    WireApi.BEDROCK: BedrockAdapter,
    WireApi.VERTEX: VertexAdapter,
    WireApi.VERTEX_GEMINI: VertexGeminiAdapter,
}


class CloudAdapters:
    """One adapter per configured cloud endpoint, made on its first request (credential chains
    are read then, on a thread, never at import or configuration time)."""

    def __init__(self) -> None:
        self._by_name: dict[str, CloudAdapter] = {}

    def get(self, endpoint: Endpoint) -> CloudAdapter | None:
        adapter = self._by_name.get(endpoint.name)
        if adapter is None:
            make = ADAPTERS.get(endpoint.api)
            if make is None:
                return None
            adapter = self._by_name[endpoint.name] = make(endpoint)
        return adapter
