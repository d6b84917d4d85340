"""The provider catalog: the configured endpoints, looked up by name or by what they serve.

The upstream target of a request is only ever one of these configured endpoints; nothing in a
request can name another host (egress is not an open proxy).
"""

from __future__ import annotations

from egress.core.endpoint import Endpoint
from egress.core.exchange import Family


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

    def candidates(self, family: Family, model: str) -> tuple[Endpoint, ...]:
        """Endpoints that speak the client's wire family and serve the requested model."""
        return tuple(e for e in self.endpoints if e.api is family and e.serves(model))
