"""The provider catalog: the configured endpoints, looked up by name or by what they serve.

The upstream target of a request is only ever one of these configured endpoints; nothing in a
request can name another host (egress is not an open proxy).
"""

from __future__ import annotations

from egress.core.endpoint import Endpoint
from egress.core.exchange import Api


class Catalog:
    """The configured endpoints, in configuration order (which is the default preference order)."""

    def __init__(self, endpoints: tuple[Endpoint, ...], translatable: frozenset[Api] = frozenset()) -> None:
        names = [e.name for e in endpoints]
        duplicates = {n for n in names if names.count(n) > 1}
        if duplicates:
            raise ValueError(f"duplicate endpoint names: {sorted(duplicates)}")
        self.endpoints = endpoints
        # Client APIs that a Chat-only endpoint can answer through translation.
        self.translatable = translatable
        self._by_name = {e.name: e for e in endpoints}

    def get(self, name: str) -> Endpoint | None:
        return self._by_name.get(name)

    def candidates(self, api: Api, model: str) -> tuple[Endpoint, ...]:
        """Endpoints that serve the requested model and speak the client's API, directly or (a
        Chat Completions endpoint, for a translatable API) through translation."""
        via_chat = api in self.translatable
        return tuple(
            e
            for e in self.endpoints
            if e.serves(model) and (e.api.speaks(api) or (via_chat and e.api.speaks(Api.OPENAI_CHAT)))
        )
