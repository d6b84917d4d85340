"""The restore stage's seam: put masked values back into the answer before the client sees it.

The map needed is the one built while masking this same request (`MaskedRequest.placeholders`):
the model can only cite placeholders it was shown. With an empty map there is nothing to
restore and the answer is relayed untouched.
"""

from __future__ import annotations

from typing import Protocol

from egress.core.exchange import Api


class StreamRestorer(Protocol):
    def feed(self, raw_event: bytes) -> bytes:
        """Restore one whole SSE event; may hold back text that could still complete a placeholder."""
        ...

    def finish(self) -> bytes:
        """Release whatever is still held at the end of the stream."""
        ...


class Restorer:
    def stream(self, api: Api, placeholders: dict[str, str]) -> StreamRestorer | None:
        if not placeholders:
            return None
        raise ValueError("restoring placeholders requires the masking engine")

    def body(self, api: Api, placeholders: dict[str, str], body: bytes) -> bytes:
        if not placeholders:
            return body
        raise ValueError("restoring placeholders requires the masking engine")
