"""The provider catalog: the configured endpoints, looked up by name or by what they serve.

The upstream target of a request is only ever one of these configured endpoints; nothing in a
request can name another host (egress is not an open proxy).
"""

from __future__ import annotations

from egress.core.endpoint import Endpoint
from egress.core.exchange import Api
from egress.wire.apis import upstream_api


class Catalog:
    """The configured endpoints, in configuration order (which is the default preference order)."""

    def __init__(self, endpoints: tuple[Endpoint, ...]) -> None:
        names = [e.name for e in endpoints]
        duplicates = {n for n in names if names.count(n) > 1}
        if duplicates:
            raise ValueError(f"duplicate endpoint names: {sorted(duplicates)}")
        self.endpoints = endpoints
        self._by_name = {e.name: e for e in endpoints}

    def get(self, name: str) -> Endpoint | None:
        return self._by_name.get(name)

    def candidates(self, api: Api, model: str) -> tuple[Endpoint, ...]:
        """Endpoints that serve the requested model and answer the client's API, directly or
        through translation (`egress.wire.apis.upstream_api`)."""
        return tuple(e for e in self.endpoints if e.serves(model) and upstream_api(e.api, api) is not None)
