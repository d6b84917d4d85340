"""Model mapping: the model id an endpoint is asked for, given the name the client asked for.

The same model has a different id on each cloud (`claude-sonnet-4-5` is
`anthropic.claude-sonnet-4-5-20250929-v1:0` on Bedrock and `claude-sonnet-4-5@20250929` on
Vertex AI), so an endpoint says how the client's names map to its own (`model_map`), or names the
one model it serves (`upstream_model`). The mapping applies on every endpoint, whether egress
translates the request or not; the client's own name is what the policy, the catalog's candidate
search and the answer the client reads all see (the relay puts it back where the API echoes it).

Invariant: the lookup is total and deterministic: an exact key wins, then the globs in the order
written, then `upstream_model`, else the client's own name, unchanged.
"""

from __future__ import annotations

import fnmatch

from egress.core.endpoint import Endpoint

_GLOB = frozenset("*?[")


def is_glob(pattern: str) -> bool:
    """Does a `model_map` key match more than its own spelling (shell-glob characters)?"""
    return not _GLOB.isdisjoint(pattern)


def upstream_model(endpoint: Endpoint, client_model: str) -> str:
    """The model id to send to `endpoint` for a request that named `client_model`."""
    mapping = endpoint.model_map
    if mapping:
        exact = mapping.get(client_model)
        if exact is not None:
            return exact
        for pattern, target in mapping.items():
            if is_glob(pattern) and fnmatch.fnmatchcase(client_model, pattern):
                return target
    if endpoint.upstream_model is not None:
        return endpoint.upstream_model
    return client_model


def maps(endpoint: Endpoint) -> bool:
    """Can this endpoint's upstream see another model id than the client's?"""
    return bool(endpoint.model_map) or endpoint.upstream_model is not None
