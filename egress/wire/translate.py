"""Cross-API translation: a client's API answered by an upstream that speaks another one.

Supported: Anthropic Messages (Claude Code) and OpenAI Responses (Codex CLI) clients, each
answered by a Chat Completions upstream (llama.cpp server, vLLM, Ollama). The mappings and the
choices made where the APIs differ are documented in `translate_messages` and
`translate_responses`; the stream machinery they share is in `translate_chat`.

Use, once per exchange:

    translator = translator_for(client_api, upstream_api)   # None: no translation exists
    upstream_body = translator.request_body(body, endpoint_model)   # may raise EgressError
    # non-stream:  status, body = translator.response(upstream_status, upstream_bytes)
    # stream:      s = translator.stream(); s.feed(event) for every upstream SSE event; s.finish()

A `Translator` belongs to one exchange: `request_body` records what the answer must repeat or
needs (the model, Responses tools and custom tool names), so `translator_for` returns a new one
on every call, and one must not be shared between requests.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from egress.core.exchange import Api
from egress.wire.translate_messages import MessagesTranslator
from egress.wire.translate_responses import ResponsesTranslator


class StreamTranslation(Protocol):
    def feed(self, event: bytes) -> list[bytes]:
        """One complete upstream Chat SSE event (as framed by `SseDecoder`, terminator included)
        -> zero or more complete client-API SSE events, each ending in a blank line."""
        ...

    def finish(self) -> list[bytes]:
        """The upstream ended: the final events if not yet sent; the client API's error event
        instead when the upstream never said how the answer finished."""
        ...


class Translator(Protocol):
    upstream_path: str  # "/chat/completions"

    def request_body(
        self,
        body: bytes,
        upstream_model: str | None,
        *,
        max_tokens_cap: int | None = None,
        document: dict[str, Any] | None = None,
        system_in_user: bool = False,
    ) -> bytes:
        """The client's request as the upstream's. Raises EgressError(INVALID_REQUEST) for a
        feature the upstream API cannot express. `max_tokens_cap`, when given, bounds the
        answer's length (a self-hosted server refuses prompt + max_tokens beyond its context).
        `document`, when given, is `body` already parsed (the caller's; it is only read).
        `system_in_user` moves the system text into the first user message (templates that
        drop system messages)."""
        ...

    def response(self, status: int, raw: bytes) -> tuple[int, bytes]:
        """(status, body) for the client: the answer in the client's shape, an upstream error as
        the client's native error body (same status), garbage in a 2xx as a native error with
        502. Never raises."""
        ...

    def response_body(self, status: int, raw: bytes) -> bytes:
        """`response(status, raw)`'s body only."""
        ...

    def stream(self) -> StreamTranslation: ...


_TRANSLATORS: dict[tuple[Api, Api], Callable[[], Translator]] = {
    (Api.ANTHROPIC_MESSAGES, Api.OPENAI_CHAT): MessagesTranslator,
    (Api.OPENAI_RESPONSES, Api.OPENAI_CHAT): ResponsesTranslator,
}


def translator_for(client: Api, upstream: Api) -> Translator | None:
    """A new translator for one exchange, or None when `client` cannot be served by `upstream`."""
    factory = _TRANSLATORS.get((client, upstream))
    return factory() if factory is not None else None
