"""The restore stage: put masked values back into the answer before the client sees it.

The map used is the one built while masking this same request (`MaskedRequest.placeholders`,
plus, for a stateful Responses conversation, what the session vault held): the model can only
cite placeholders it was shown. With an empty map the answer is relayed untouched.

Whole (non-streamed) answers are restored in their bytes, like stream events: everything but the
placeholders stays as the provider wrote it, and `Content-Length` is recomputed by the caller.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping

from egress.core.exchange import Api
from egress.mask import literals
from egress.mask.placeholders import json_escape
from egress.mask.streams import StreamRestorer
from egress.wire.apis import APIS
from egress.wire.stream_grammar import DEPTH2_KEYS, SKIP_KEYS

__all__ = ["RestoreMap", "Restorer", "StreamRestorer"]


class RestoreMap:
    """One answer's placeholders: built in microseconds when the answer starts (nothing is
    escaped until a placeholder is actually cited), and the hold-back test for a tail."""

    __slots__ = ("_values", "_escaped", "_sorted", "longest")

    def __init__(self, placeholders: Mapping[str, str]) -> None:
        self._values = {p.encode("ascii"): v for p, v in placeholders.items()}
        self._escaped: dict[bytes, tuple[bytes, bytes]] = {}
        self._sorted = sorted(self._values)
        self.longest = max(map(len, self._sorted), default=0)

    def get(self, placeholder: bytes) -> tuple[bytes, bytes] | None:
        escaped = self._escaped.get(placeholder)
        if escaped is None:
            value = self._values.get(placeholder)
            if value is None:
                return None
            once = json_escape(value)
            escaped = self._escaped[placeholder] = (once, json_escape(once.decode("utf-8", "surrogatepass")))
        return escaped

    def could_grow(self, tail: bytes) -> bool:
        """Is `tail` a proper prefix of an issued placeholder?"""
        i = bisect.bisect_left(self._sorted, tail)
        return i < len(self._sorted) and self._sorted[i] != tail and self._sorted[i].startswith(tail)


class Restorer:
    def stream(self, api: Api, placeholders: Mapping[str, str]) -> StreamRestorer | None:
        if not placeholders:
            return None
        return StreamRestorer(APIS[api].stream_grammar(), RestoreMap(placeholders))

    def body(self, api: Api, placeholders: Mapping[str, str], body: bytes) -> bytes:
        if not placeholders or b"EGX_" not in body:
            return body
        return literals.replace_all(body, RestoreMap(placeholders), depth2_keys=DEPTH2_KEYS, skip_keys=SKIP_KEYS)
